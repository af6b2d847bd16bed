//! The simplest round trip: start the binary, fund a wallet, read `/v1/info`, `/ready`,
//! `/metrics` and the log.

use cdk::nuts::PaymentMethod;
use cdk::Amount;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mint_starts_funds_a_wallet_and_labels_the_fake_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let info: serde_json::Value = http()
        .get(format!("{}/v1/info", mint.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        info["motd"].as_str().unwrap().contains("FAKE LIGHTNING"),
        "{info}"
    );
    assert!(
        info["name"].as_str().unwrap().contains("FAKE LIGHTNING"),
        "{info}"
    );
    assert_eq!(info["urls"][0], mint.url.as_str());
    let ready: serde_json::Value = http()
        .get(format!("{}/ready", mint.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["lightning_backend"], "fake");
    let health = http()
        .get(format!("{}/health", mint.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let w = wallet(&mint.url, &dir.path().join("w")).await;
    assert_eq!(u64::from(fund(&w, 1000).await), 1000);
    assert_eq!(u64::from(w.total_balance().await.unwrap()), 1000);
    mint.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_operations_and_ecash_per_keyset() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let w = wallet(&mint.url, &dir.path().join("w")).await;
    fund(&w, 1000).await;
    let token = w
        .prepare_send(Amount::from(100), Default::default())
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap();
    let r = wallet(&mint.url, &dir.path().join("r")).await;
    r.receive(&token.to_string(), Default::default())
        .await
        .unwrap();

    let text = http()
        .get(format!("{}/metrics", mint.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |needle: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no {needle} in:\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value("allowance_mint_operations_total{operation=\"mint\",outcome=\"ok\"}"),
        1.0
    );
    assert_eq!(
        value("allowance_mint_operations_total{operation=\"mint_quote\",outcome=\"ok\"}"),
        1.0
    );
    assert!(value("allowance_mint_operations_total{operation=\"swap\",outcome=\"ok\"}") >= 1.0);
    let keyset = w.active_keyset().await.unwrap().id.to_string();
    // 1000 minted, then the receiver's swap re-issued the 100 it redeemed.
    assert_eq!(
        value(&format!(
            "allowance_mint_ecash_issued_sat{{keyset=\"{keyset}\"}}"
        )),
        1100.0
    );
    assert!(
        value(&format!(
            "allowance_mint_ecash_redeemed_sat{{keyset=\"{keyset}\"}}"
        )) >= 100.0
    );
    assert!(text.contains(
        "allowance_mint_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/swap\""
    ));
    assert_eq!(
        value("allowance_mint_lightning_backend_info{backend=\"fake\"}"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_logs_name_routes_but_never_quote_ids_or_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let w = wallet(&mint.url, &dir.path().join("w")).await;
    let quote = w
        .mint_quote(PaymentMethod::BOLT11, Some(Amount::from(64)), None, None)
        .await
        .unwrap();
    let _ = w.check_mint_quote_status(&quote.id).await.unwrap();
    fund(&w, 64).await;
    let token = w
        .prepare_send(Amount::from(8), Default::default())
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string();
    let log = mint.stop_and_read_log();
    // Our request log: one line per answered request, naming the route template. (cdk's own
    // events may name a quote id, which the operator needs to follow a payment; they are not
    // request logs.)
    let request_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("finished processing request"))
        .collect();
    assert!(request_lines.len() >= 4, "{log}");
    assert!(
        request_lines
            .iter()
            .any(|l| l.contains("/v1/mint/quote/bolt11/{quote_id}")),
        "{log}"
    );
    assert!(
        request_lines.iter().all(|l| !l.contains(&quote.id)),
        "quote id in a request log line"
    );
    assert!(!log.contains(&token[..40]), "token leaked into the log");
    let seed = std::fs::read_to_string(dir.path().join("mint-data/seed.mnemonic")).unwrap();
    let first_words: String = seed
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!log.contains(&first_words), "seed leaked into the log");
}
