//! Our paywall takes ecash from wallets we did not write: a token made by Nutshell's `cashu send`
//! and one made by cashu-ts pay for a request to the paid_api example (NUT-24 `X-Cashu`), and
//! the merchant holds exactly the price. Each is skipped without its client, except under `CI`.

use std::path::Path;

use crate::interop_cashu_ts::{cashu_ts, run_script};
use crate::interop_nutshell::{nutshell_bin, parse_token, Nutshell};
use crate::support::*;

/// The price of `GET /weather` in the paid_api example.
const WEATHER: u64 = 5;

pub fn paid_api(mint_url: &str, data_dir: &Path) -> ServiceProcess {
    ServiceProcess::start(
        &workspace_example("paid_api"),
        &[
            "--mint-url",
            mint_url,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        data_dir.with_extension("log"),
    )
}

/// Without a token the request gets a 402; with `token` in `X-Cashu` it gets the forecast, and
/// the merchant holds exactly the price afterwards.
async fn token_pays_for_weather(mint: &MintProcess, dir: &Path, token: &str) {
    let shop_dir = dir.join("shop");
    let shop = paid_api(&mint.url, &shop_dir);
    let url = format!("{}/weather", shop.url);
    let unpaid = http().get(&url).send().await.unwrap();
    assert_eq!(unpaid.status(), 402);
    assert!(
        unpaid.headers().get("x-cashu").is_some(),
        "a NUT-24 challenge"
    );
    let paid = http()
        .get(&url)
        .header("X-Cashu", token)
        .send()
        .await
        .unwrap();
    let status = paid.status();
    let body = paid.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["paid"]["amount"], WEATHER, "{body}");
    // The same token again is refused: the merchant redeemed it at our mint.
    let replay = http()
        .get(&url)
        .header("X-Cashu", token)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    shop.kill();
    assert_eq!(merchant_balance(&shop_dir), WEATHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_paywall_accepts_a_token_nutshell_made() {
    let Some(bin) = nutshell_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let mut nutshell = Nutshell::new(bin, &dir.path().join("nutshell"), &mint.url);
    let token = tokio::task::block_in_place(|| {
        nutshell.run(&["invoice", "20"]);
        let out = nutshell.run(&["send", &WEATHER.to_string()]);
        parse_token(&out).unwrap_or_else(|| panic!("no token in:\n{out}"))
    });
    token_pays_for_weather(&mint, dir.path(), &token).await;
    assert_eq!(
        tokio::task::block_in_place(|| nutshell.balance()),
        20 - WEATHER
    );
    mint.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_paywall_accepts_a_token_cashu_ts_made() {
    let Some(cashu_ts) = cashu_ts() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let steps = tokio::task::block_in_place(|| {
        run_script(&cashu_ts, &mint.url, &[], &["token", &WEATHER.to_string()])
    });
    assert_eq!(steps["token"]["amount"], WEATHER);
    let token = steps["token"]["token"].as_str().unwrap();
    token_pays_for_weather(&mint, dir.path(), token).await;
    mint.stop();
}
