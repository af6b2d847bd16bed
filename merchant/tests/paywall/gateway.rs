//! `paywall-gateway` in front of a plain axum upstream.

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use merchant::cashu_402::error_body::codes;
use merchant::cashu_402::Challenge;

use crate::process::Proc;
use crate::support::*;

/// An upstream that streams `/weather/today` in chunks and records the headers it got.
async fn upstream() -> (String, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new()
        .route(
            "/weather/today",
            get(move |headers: HeaderMap| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(headers);
                    let chunks = ["sunny", ", ", "21 ", "degrees"]
                        .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from_static(c.as_bytes())));
                    (
                        [
                            ("x-upstream", "yes"),
                            ("connection", "x-drop-me"),
                            ("x-drop-me", "1"),
                        ],
                        Body::from_stream(futures::stream::iter(chunks)),
                    )
                }
            }),
        )
        .route("/open", get(|| async { "open to all" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn gateway(dir: &std::path::Path, upstream: &str, mint: &TestMint, unpriced: &str) -> Proc {
    let config = dir.join(format!("gateway-{unpriced}.toml"));
    std::fs::write(
        &config,
        format!(
            "upstream = \"{upstream}\"\nmints = [\"{}\"]\nretry_after_secs = 3\n\n\
             [[price]]\nmethod = \"GET\"\npath_prefix = \"/weather\"\namount = 5\nunit = \"sat\"\n",
            mint.url
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paywall-gateway"));
    cmd.arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(dir.join(format!("merchant-{unpriced}")))
        .arg("--unpriced")
        .arg(unpriced)
        .env_remove("MERCHANT_MINT_URL")
        .env_remove("MERCHANT_DATA_DIR");
    Proc::start(cmd, &dir.join(format!("gateway-{unpriced}.log")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_charges_then_streams_the_upstream_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let (up, seen) = upstream().await;
    let gw = gateway(dir.path(), &up, &mint, "free");
    let agent = funded_wallet(&mint, 100).await;

    let r = get_with(&gw.at("/weather/today"), None).await;
    assert_eq!(r.status(), 402);
    let header = r.headers()["x-cashu"].to_str().unwrap().to_string();
    assert_eq!(u64::from(Challenge::parse(&header).unwrap().amount), 5);
    assert!(
        seen.lock().unwrap().is_empty(),
        "unpaid requests never reach the upstream"
    );

    let token = pay_challenge(&agent, &header).await;
    let r = get_with(&gw.at("/weather/today"), Some(&token)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-upstream"], "yes");
    assert!(
        r.headers().get("x-drop-me").is_none(),
        "hop-by-hop headers are stripped"
    );
    assert_eq!(r.text().await.unwrap(), "sunny, 21 degrees");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0].get("x-cashu").is_none(),
            "the credential is not forwarded"
        );
    }

    // Replays are refused at the gateway.
    let r = get_with(&gw.at("/weather/today"), Some(&token)).await;
    assert_refused(r, 400, codes::TOKEN_SPENT).await;

    // Unpriced paths pass free in this configuration; odd spellings of a priced path do not.
    let r = get_with(&gw.at("/open"), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "open to all");
    let r = get_with(&format!("{}//weather/today", gw.url), None).await;
    assert_eq!(r.status(), 400);

    let status = gw.terminate();
    assert!(status.success(), "graceful exit on SIGTERM: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpriced_paths_can_be_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let (up, seen) = upstream().await;
    let gw = gateway(dir.path(), &up, &mint, "refuse");
    let r = get_with(&gw.at("/open"), None).await;
    assert_eq!(r.status(), 404);
    let body: merchant::cashu_402::error_body::ErrorBody = r.json().await.unwrap();
    assert_eq!(body.code, codes::NOT_FOUND);
    assert_eq!(get_with(&gw.at("/weather/today"), None).await.status(), 402);
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "upstream = \"http://127.0.0.1:1\"\nmints = [\"http://m\"]\nprise = 1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_paywall-gateway"))
        .arg("--config")
        .arg(&config)
        .env_remove("MERCHANT_MINT_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("prise"), "names the unknown key: {stderr}");
}
