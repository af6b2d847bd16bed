//! The mint on PostgreSQL: money moves, and the state survives a clean stop and a crash.
//!
//! The server comes from `ALLOWANCE_MINT_TEST_POSTGRES_URL` (a libpq connection string such as
//! `host=127.0.0.1 port=5432 user=postgres dbname=postgres`; `tests/interop/start-postgres.sh`
//! starts one and prints it). Each test works in a schema of its own, which cdk-postgres creates
//! when the connection string carries `schema=NAME`. Without the variable the tests are skipped,
//! except under `CI`, where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use cdk::nuts::{MeltQuoteState, MintQuoteState, PaymentMethod};
use cdk::wallet::{ReceiveOptions, SendOptions, Wallet};
use cdk::Amount;

use crate::support::*;

const URL_VAR: &str = "ALLOWANCE_MINT_TEST_POSTGRES_URL";

/// The variable the mint reads its connection string from (`url = "env:..."`).
pub(crate) const MINT_URL_VAR: &str = "ALLOWANCE_MINT_E2E_POSTGRES_URL";

/// Each mint process holds its whole pool open from the start; at the default of 20, a dozen
/// test processes on one machine with many test threads filled the server's 300 slots and a
/// mint starting next could not connect ("too many clients").
pub(crate) const CONFIG: &str = "[database]\nengine = \"postgres\"\n\n[database.postgres]\n\
                      url = \"env:ALLOWANCE_MINT_E2E_POSTGRES_URL\"\nmax_connections = 8\n";

/// The server's connection string, or `None` (after saying so) when the test should be skipped.
pub(crate) fn postgres_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{URL_VAR} is not set and CI is set: start a server with \
                 `tests/interop/start-postgres.sh DIR PORT` and export what it prints as {URL_VAR}"
            );
            eprintln!(
                "SKIPPED postgres e2e: {URL_VAR} is not set (e.g. `export {URL_VAR}=\"$(tests/interop/start-postgres.sh /tmp/allowance-pg 5432)\"`)"
            );
            None
        }
    }
}

/// A fresh schema name, so tests and reruns never see each other's tables.
pub(crate) fn fresh_schema(test: &str) -> String {
    let nonce: u64 = rand::random();
    format!("e2e_{test}_{nonce:016x}")
}

/// Drops `schema` after a passing test when `psql` is at hand; a failing test keeps its schema
/// for a look.
pub(crate) fn drop_schema(url: &str, schema: &str) {
    let dropped = std::process::Command::new("psql")
        .arg(url)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !dropped {
        eprintln!("postgres e2e: schema {schema} was not dropped (no psql?)");
    }
}

async fn balance(w: &Wallet) -> u64 {
    u64::from(w.total_balance().await.unwrap())
}

async fn keysets(mint: &MintProcess) -> serde_json::Value {
    http()
        .get(format!("{}/v1/keysets", mint.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn quote_state(mint: &MintProcess, kind: &str, id: &str) -> String {
    let quote: serde_json::Value = http()
        .get(format!("{}/v1/{kind}/quote/bolt11/{id}", mint.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    quote["state"]
        .as_str()
        .unwrap_or_else(|| panic!("no state in {quote}"))
        .to_string()
}

async fn assert_spent(mint: &MintProcess, dir: &std::path::Path, token: &str, name: &str) {
    let thief = wallet(&mint.url, &dir.join(name)).await;
    let again = thief.receive(token, ReceiveOptions::default()).await;
    assert!(
        matches!(again, Err(cdk::Error::TokenAlreadySpent)),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_mint_keeps_balances_quotes_and_spent_proofs_across_restarts() {
    let Some(server) = postgres_url() else { return };
    let schema = fresh_schema("restart");
    let url = format!("{} schema={schema}", server.trim());
    let env = [(MINT_URL_VAR, url.as_str())];
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start_with_env(dir.path(), CONFIG, &env);
    assert!(
        mint.log().contains("postgres"),
        "the start-up log does not name postgres:\n{}",
        mint.log()
    );
    assert!(
        !mint.data_dir.join("mint.sqlite").exists(),
        "a SQLite database was created although the engine is postgres"
    );
    let keysets_before = keysets(&mint).await;

    // Alice funds 1000, pays Bob 300 (redeemed) and creates a 200 token nobody has redeemed yet.
    let alice = wallet(&mint.url, &dir.path().join("alice")).await;
    let bob = wallet(&mint.url, &dir.path().join("bob")).await;
    assert_eq!(u64::from(fund(&alice, 1000).await), 1000);
    let redeemed = alice
        .prepare_send(Amount::from(300), SendOptions::default())
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string();
    bob.receive(&redeemed, ReceiveOptions::default())
        .await
        .unwrap();
    let in_flight = alice
        .prepare_send(Amount::from(200), SendOptions::default())
        .await
        .unwrap();
    let in_flight_id = in_flight.operation_id();
    let in_flight = in_flight.confirm(None).await.unwrap().to_string();
    // A mint quote paid before the restart but only minted after it.
    let quote = alice
        .mint_quote(PaymentMethod::BOLT11, Some(Amount::from(50)), None, None)
        .await
        .unwrap();
    eventually("the mint quote to be paid", || async {
        let q = alice.check_mint_quote_status(&quote.id).await.unwrap();
        (q.state == MintQuoteState::Paid).then_some(())
    })
    .await;
    assert_eq!(balance(&alice).await, 500);
    assert_eq!(balance(&bob).await, 300);

    // Clean stop, restart on the same database.
    let mint = mint.stop().start_with_env(&env);
    assert_eq!(keysets(&mint).await, keysets_before, "keysets changed");
    assert_spent(&mint, dir.path(), &redeemed, "thief-1").await;
    assert_eq!(
        u64::from(
            bob.receive(&in_flight, ReceiveOptions::default())
                .await
                .unwrap()
        ),
        200,
        "a token signed before the restart must redeem after it"
    );
    assert!(alice.check_send_status(in_flight_id).await.unwrap());
    let minted = alice
        .mint(&quote.id, Default::default(), None)
        .await
        .unwrap();
    assert_eq!(
        u64::from(Amount::try_sum(minted.iter().map(|p| p.amount)).unwrap()),
        50
    );
    assert_eq!(quote_state(&mint, "mint", &quote.id).await, "ISSUED");
    assert_eq!(balance(&alice).await, 550);
    assert_eq!(balance(&bob).await, 500);

    // Bob melts 100 sat, then the mint is killed without warning.
    let melt_quote = bob
        .melt_quote(PaymentMethod::BOLT11, fake_invoice(100), None, None)
        .await
        .unwrap();
    let melted = bob
        .prepare_melt(&melt_quote.id, HashMap::new())
        .await
        .unwrap()
        .confirm()
        .await
        .unwrap();
    assert_eq!(melted.state(), MeltQuoteState::Paid);
    let bob_after_melt = balance(&bob).await;
    assert_eq!(
        bob_after_melt,
        500 - 100 - u64::from(melted.fee_paid()),
        "change for the unused fee reserve must come back"
    );

    let mint = mint.kill().start_with_env(&env);
    assert_eq!(keysets(&mint).await, keysets_before, "keysets changed");
    assert_eq!(quote_state(&mint, "melt", &melt_quote.id).await, "PAID");
    assert_eq!(quote_state(&mint, "mint", &quote.id).await, "ISSUED");
    assert_spent(&mint, dir.path(), &redeemed, "thief-2").await;
    assert_spent(&mint, dir.path(), &in_flight, "thief-3").await;
    // Everyone's proofs are still good: Bob pays Alice all he has left.
    let everything = bob
        .prepare_send(Amount::from(bob_after_melt), SendOptions::default())
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string();
    alice
        .receive(&everything, ReceiveOptions::default())
        .await
        .unwrap();
    assert_eq!(balance(&bob).await, 0);
    assert_eq!(balance(&alice).await, 550 + bob_after_melt);
    mint.stop();
    drop_schema(&server, &schema);
}
