//! The paywall's offline path: a token P2PK-locked to the merchant's key alone (with DLEQ
//! proofs) is served while the mint is down, held, and redeemed in the background once the
//! mint is back; a copy is refused as a replay; a merchant killed before redeeming redeems on
//! restart.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use cdk::dhke::hash_to_curve;
use cdk::nuts::{PublicKey, SpendingConditions, State, Token};
use cdk::wallet::{SendOptions, Wallet};
use cdk::Amount;
use serde_json::Value;

use crate::lifecycle::mint_states;
use crate::support::*;

/// A locked price of 5 sat at `/locked` in front of a plain upstream.
async fn gateway_config(mint: &MintProcess, dir: &Path) -> (PathBuf, PathBuf, PublicKey) {
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let app = axum::Router::new().route("/locked", axum::routing::get(|| async { "locked data" }));
    tokio::spawn(async move {
        let _ = axum::serve(upstream, app).await;
    });
    let data = dir.join("gateway-data");
    let pubkey = merchant_cli(&data, &["pubkey"]);
    let pubkey: PublicKey = pubkey["pubkey"].as_str().unwrap().parse().unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nupstream = \"http://{upstream_addr}\"\ndata_dir = \"{}\"\n\
             mints = [\"{}\"]\n\n\
             [[price]]\npath_prefix = \"/locked\"\namount = 5\nunit = \"sat\"\nlock = true\n",
            data.display(),
            mint.url
        ),
    )
    .unwrap();
    (config, data, pubkey)
}

fn start_gateway(config: &Path, dir: &Path) -> ServiceProcess {
    ServiceProcess::start(
        &workspace_binary("paywall-gateway"),
        &["--config", config.to_str().unwrap()],
        dir.join("gateway.log"),
    )
}

/// A token of 5 sat plus the receiver's fee, locked to `pubkey` (with DLEQ proofs: cdk keeps
/// them on send).
async fn locked_token(agent: &Wallet, pubkey: PublicKey) -> String {
    let options = SendOptions {
        conditions: Some(SpendingConditions::new_p2pk(pubkey, None)),
        include_fee: true,
        ..Default::default()
    };
    agent
        .prepare_send(Amount::from(5), options)
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string()
}

fn value(token: &str) -> u64 {
    Token::from_str(token).unwrap().value().unwrap().into()
}

fn ys(token: &str) -> Vec<PublicKey> {
    Token::from_str(token)
        .unwrap()
        .token_secrets()
        .iter()
        .map(|s| hash_to_curve(s.as_bytes()).unwrap())
        .collect()
}

/// (spendable, held) of the merchant, summed over mints.
fn balances(data: &Path) -> (u64, u64) {
    let all = merchant_cli(data, &["balance"]);
    let sum = |k: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .map(|b: &Value| b[k].as_u64().unwrap())
            .sum()
    };
    (sum("spendable"), sum("held"))
}

async fn get(url: &str, token: &str) -> (u16, Value) {
    let r = http()
        .get(url)
        .header("X-Cashu", token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

async fn assert_states(agent: &Wallet, token: &str, want: State, what: &str) {
    let states = mint_states(agent, ys(token)).await;
    assert!(
        states.values().all(|s| *s == want),
        "{what}: {states:?}, want all {want:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_tokens_are_served_while_the_mint_is_down_and_redeemed_later() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let agent = wallet(&mint.url, &dir.path().join("agent")).await;
    fund(&agent, 100).await;
    let (config, data, pubkey) = gateway_config(&mint, dir.path()).await;
    let gw = start_gateway(&config, dir.path());
    let url = format!("{}/locked", gw.url);

    // With the mint up: served, and redeemed (the merchant learns the mint's keys here).
    let warm = locked_token(&agent, pubkey).await;
    let (status, body) = get(&url, &warm).await;
    assert_eq!(status, 200, "{body}");
    eventually("the first locked payment redeemed", || async {
        (balances(&data) == (value(&warm), 0)).then_some(())
    })
    .await;
    let mut expected = value(&warm);

    // The mint goes down; a locked token is still served, once.
    let t1 = locked_token(&agent, pubkey).await;
    let stopped = mint.stop();
    let (status, body) = get(&url, &t1).await;
    assert_eq!(status, 200, "served with the mint down: {body}");
    assert_eq!(body, Value::String("locked data".into()));
    let (status, body) = get(&url, &t1).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (400, Some(40207)),
        "{body}"
    );
    assert_eq!(
        balances(&data),
        (expected, value(&t1)),
        "held, not spendable"
    );

    // The mint comes back: the running merchant redeems the held token by itself.
    let mint = stopped.start();
    eventually(
        "the held token redeemed after the mint restarted",
        || async { (balances(&data) == (expected + value(&t1), 0)).then_some(()) },
    )
    .await;
    expected += value(&t1);
    assert_states(&agent, &t1, State::Spent, "the held token at the mint").await;
    let (status, body) = get(&url, &t1).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (400, Some(40207)),
        "{body}"
    );

    // Down again; served, and the merchant is killed before it could redeem.
    let t2 = locked_token(&agent, pubkey).await;
    let stopped = mint.stop();
    let (status, body) = get(&url, &t2).await;
    assert_eq!(status, 200, "{body}");
    gw.kill();
    let mint = stopped.start();
    assert_states(
        &agent,
        &t2,
        State::Unspent,
        "not redeemed by a dead merchant",
    )
    .await;
    assert_eq!(balances(&data), (expected, value(&t2)));

    // On restart it takes the held token up; the copy stays refused.
    let gw = start_gateway(&config, dir.path());
    eventually(
        "the held token redeemed after the merchant restarted",
        || async { (balances(&data) == (expected + value(&t2), 0)).then_some(()) },
    )
    .await;
    assert_states(&agent, &t2, State::Spent, "redeemed on restart").await;
    let (status, body) = get(&format!("{}/locked", gw.url), &t2).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (400, Some(40207)),
        "{body}"
    );
    drop(mint);
}
