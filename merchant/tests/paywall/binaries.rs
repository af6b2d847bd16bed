//! The `merchant` CLI and the `paid_api` example as an operator and an agent meet them.

use std::process::Command;

use cdk::nuts::CurrencyUnit;
use merchant::cashu_402::Challenge;

use crate::process::{example, merchant_cli, Proc};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reports_balance_pubkey_and_settlements_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let data = dir.path().join("merchant");
    let app = start_app(&mint, &data).await;
    let agent = funded_wallet(&mint, 200).await;
    let t = pay_challenge(&agent, &challenge(&app.at("/bulk")).await).await;
    assert_eq!(get_with(&app.at("/bulk"), Some(&t)).await.status(), 200);

    let balance: serde_json::Value =
        serde_json::from_str(&merchant_cli(&data, &["balance", "--json"]).await).unwrap();
    assert_eq!(balance[0]["spendable"], 100);
    assert_eq!(balance[0]["unit"], "sat");

    let pk: serde_json::Value =
        serde_json::from_str(&merchant_cli(&data, &["pubkey", "--json"]).await).unwrap();
    assert_eq!(pk["pubkey"], app.merchant.pubkey().to_string());

    let invoice = cdk_fake_wallet::create_fake_invoice(3000, String::new()).to_string();
    let settled: serde_json::Value = serde_json::from_str(
        &merchant_cli(&data, &["settle", "--invoice", &invoice, "--json"]).await,
    )
    .unwrap();
    assert_eq!(settled["outcome"], "paid");
    assert_eq!(settled["amount"], 3);
    let list: serde_json::Value =
        serde_json::from_str(&merchant_cli(&data, &["settlements", "--json"]).await).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["source"], "manual");
    let text = merchant_cli(&data, &["settlements"]).await;
    assert!(text.contains("paid"), "{text}");
    assert!(
        u64::from(
            app.merchant
                .balance(&mint.mint_url, &CurrencyUnit::Sat)
                .await
                .unwrap()
        ) < 97
    );

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_merchant"))
        .arg("--data-dir")
        .arg(&data)
        .args(["settle", "--invoice", "not-an-invoice"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());

    // A mistyped data dir is an error, not a fresh empty wallet.
    let missing = dir.path().join("typo");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_merchant"))
        .arg("--data-dir")
        .arg(&missing)
        .arg("balance")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(!missing.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_paid_api_example_charges_locked_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let mut cmd = Command::new(example("paid_api"));
    cmd.args([
        "--mint-url",
        &mint.url,
        "--listen",
        "127.0.0.1:0",
        "--lock",
        "--data-dir",
    ])
    .arg(dir.path().join("api"));
    let api = Proc::start(cmd, &dir.path().join("api.log"));
    let agent = funded_wallet(&mint, 100).await;

    assert_eq!(get_with(&api.at("/health"), None).await.status(), 200);
    let header = challenge(&api.at("/weather")).await;
    let c = Challenge::parse(&header).unwrap();
    assert!(c.lock_pubkey().is_some(), "--lock asks for a P2PK lock");
    let t = pay_challenge(&agent, &header).await;
    let r = get_with(&api.at("/weather"), Some(&t)).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["paid"]["amount"].as_u64().unwrap(),
        6,
        "5 sat plus the input fee"
    );

    let r = reqwest::Client::new()
        .post(api.at("/translate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    let header = r.headers()["x-cashu"].to_str().unwrap().to_string();
    assert_eq!(u64::from(Challenge::parse(&header).unwrap().amount), 20);
    let t = pay_challenge(&agent, &header).await;
    let r = reqwest::Client::new()
        .post(api.at("/translate"))
        .header("X-Cashu", t)
        .body("hello world")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["translation"], "olleh dlrow");
}
