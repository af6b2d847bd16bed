//! A client hanging up while the merchant's swap is at the mint: the redemption still
//! completes (it runs on a task of its own), the record says `paid`, and the token's next
//! presentation is served, once.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, Token};
use merchant::cashu_402::error_body::codes;
use merchant::store::RedemptionState;
use merchant::PaywallOptions;
use tokio::sync::watch;

use crate::support::*;

/// A proxy in front of the mint that holds every `POST /v1/swap` until the gate opens, and
/// counts the swaps it holds.
async fn gated_proxy(mint: &TestMint) -> (String, watch::Sender<bool>, Arc<AtomicUsize>) {
    let (gate, open) = watch::channel(true);
    let held = Arc::new(AtomicUsize::new(0));
    let target = mint.url.clone();
    let counter = held.clone();
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (mut open, counter, target, client) = (
            open.clone(),
            counter.clone(),
            target.clone(),
            client.clone(),
        );
        async move {
            let (parts, body) = req.into_parts();
            if parts.uri.path() == "/v1/swap" && !*open.borrow() {
                counter.fetch_add(1, Ordering::SeqCst);
                open.wait_for(|o| *o).await.unwrap();
            }
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let r = client
                .request(parts.method, format!("{target}{}", parts.uri))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.bytes().await.unwrap())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, gate, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hanging_up_mid_redemption_is_served_once_on_its_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let (proxy, gate, held) = gated_proxy(&mint).await;
    let proxy_url = MintUrl::from_str(&proxy).unwrap();
    let app = start_app_with(
        PaywallOptions::new(vec![proxy_url.clone()]),
        &dir.path().join("merchant"),
    )
    .await;
    let agent = funded_wallet_at(&proxy_url, 100).await;
    let token = pay_challenge(&agent, &challenge(&app.at("/weather")).await).await;
    let t = Token::from_str(&token).unwrap();
    let key = merchant::verify::token_key(&merchant::verify::token_ys(&t).unwrap());

    gate.send_replace(false);
    let client = {
        let (url, token) = (app.at("/weather"), token.clone());
        tokio::spawn(async move { get_with(&url, Some(&token)).await })
    };
    eventually("the swap to reach the proxy", || async {
        (held.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    // The client hangs up while the swap is held, then the mint gets it.
    client.abort();
    assert!(client.await.unwrap_err().is_cancelled());
    gate.send_replace(true);

    let store = app.merchant.store();
    eventually("the abandoned redemption to complete", || async {
        let record = store.redemption(&key).await.unwrap();
        (record.map(|r| r.state) == Some(RedemptionState::Paid)).then_some(())
    })
    .await;
    assert_eq!(app.hits(), 0, "nothing was served to the client that left");
    let balance = || async {
        u64::from(
            app.merchant
                .balance(&proxy_url, &CurrencyUnit::Sat)
                .await
                .unwrap(),
        )
    };
    assert_eq!(balance().await, 5, "the merchant holds the redeemed token");

    // The next presentation is served, without another swap; a third is a replay.
    let r = get_with(&app.at("/weather"), Some(&token)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(app.hits(), 1);
    assert_refused(
        get_with(&app.at("/weather"), Some(&token)).await,
        400,
        codes::TOKEN_SPENT,
    )
    .await;
    assert_eq!(app.hits(), 1);
    assert_eq!(balance().await, 5);
    assert_eq!(
        store.redemption(&key).await.unwrap().unwrap().state,
        RedemptionState::Redeemed
    );
}
