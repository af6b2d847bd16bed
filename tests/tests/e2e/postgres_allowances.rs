//! Allowances on PostgreSQL with two mint processes on one database (replicas behind a load
//! balancer): the registry's compare-and-swap keeps 100 concurrent draws, spread over both, to
//! exactly what the budget allows.

use std::sync::Arc;

use reqwest::Method;

use crate::allowances::{draw_body, funded_metered, post_draw};
use crate::postgres::{drop_schema, fresh_schema, postgres_url, CONFIG, MINT_URL_VAR};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_mints_on_one_postgres_never_overdraw_an_allowance() {
    let Some(server) = postgres_url() else { return };
    let schema = fresh_schema("allowance");
    let url = format!("{} schema={schema}", server.trim());
    let mnemonic = bip39::Mnemonic::generate(12).unwrap().to_string();
    let env = [
        (MINT_URL_VAR, url.as_str()),
        ("ALLOWANCE_MINT_E2E_SEED", mnemonic.as_str()),
    ];
    let config = format!("seed = \"env:ALLOWANCE_MINT_E2E_SEED\"\n{CONFIG}");
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(MintProcess::start_on_with_env(
        dir.path().join("a"),
        &config,
        0,
        &env,
    ));
    let b = Arc::new(MintProcess::start_on_with_env(
        dir.path().join("b"),
        &config,
        0,
        &env,
    ));
    let (id, key) = funded_metered(&a, 1000, 100, 100_000).await;

    let mut tasks = Vec::new();
    for i in 0..100 {
        let mint = if i % 2 == 0 { a.clone() } else { b.clone() };
        let body = draw_body(&key, &id, 100);
        tasks.push(tokio::spawn(async move { post_draw(&mint, &body).await }));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => ok += 1,
            400 => assert_eq!(body["code"], 40306, "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 10, "exactly the budget, across both processes");
    for mint in [&a, &b] {
        let (_, v) = mint
            .admin(Method::GET, &format!("/admin/v1/allowances/{id}"), None)
            .await;
        assert_eq!(v["balance"], 0, "{v}");
        assert_eq!(v["drawn_24h"], 1000);
    }
    drop(a);
    drop(b);
    drop_schema(&server, &schema);
}
