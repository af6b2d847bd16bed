//! The simplest round trip: start the binary, fund a wallet, read `/v1/info` and `/ready`.

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

    let w = wallet(&mint.url, &dir.path().join("w")).await;
    assert_eq!(u64::from(fund(&w, 1000).await), 1000);
    assert_eq!(u64::from(w.total_balance().await.unwrap()), 1000);
    mint.stop();
}
