//! The mint goes away: 503 with Retry-After, the token is not consumed, and it pays once the
//! mint is back (same port, same database).

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cdk::mint_url::MintUrl;
use cdk::nuts::Token;
use merchant::cashu_402::error_body::codes;
use merchant::store::RedemptionState;
use merchant::{Merchant, PaywallOptions};

use crate::support::*;

fn key_of(token: &str) -> String {
    let t = Token::from_str(token).unwrap();
    merchant::verify::token_key(&merchant::verify::token_ys(&t).unwrap())
}

#[tokio::test]
async fn mint_down_gives_503_and_the_same_token_pays_after_the_mint_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    let agent = funded_wallet(&mint, 100).await;

    // One payment while the mint is up warms the merchant's keyset cache, so the next
    // redemption gets as far as sending the swap.
    let first = pay_challenge(&agent, &challenge(&app.at("/weather")).await).await;
    assert_eq!(
        get_with(&app.at("/weather"), Some(&first)).await.status(),
        200
    );
    let pending = pay_challenge(&agent, &challenge(&app.at("/weather")).await).await;

    mint.stop().await;
    let r = get_with(&app.at("/weather"), Some(&pending)).await;
    assert_eq!(r.headers()["retry-after"], "2");
    assert!(
        r.headers().get("x-cashu").is_none(),
        "a 503 offers no new challenge"
    );
    let body = assert_refused(r, 503, codes::MINT_UNAVAILABLE).await;
    assert!(body.detail.contains("not consumed"), "{}", body.detail);
    assert_eq!(app.hits(), 1);

    // Still down: still 503, and the record says the redemption is in doubt.
    let r = get_with(&app.at("/weather"), Some(&pending)).await;
    assert_refused(r, 503, codes::MINT_UNAVAILABLE).await;
    let record = app
        .merchant
        .store()
        .redemption(&key_of(&pending))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, RedemptionState::InDoubt);

    mint.restart().await;
    let r = get_with(&app.at("/weather"), Some(&pending)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(app.hits(), 2);
    assert_eq!(app.balance(&mint).await, 10);
    // Served once: a third use is a replay.
    assert_refused(
        get_with(&app.at("/weather"), Some(&pending)).await,
        400,
        codes::TOKEN_SPENT,
    )
    .await;
}

#[tokio::test]
async fn a_token_checked_while_the_mint_is_down_is_not_recorded_and_pays_later() {
    let dir = tempfile::tempdir().unwrap();
    let mut mint = TestMint::start(&dir.path().join("mint")).await;
    let agent = funded_wallet(&mint, 100).await;
    // A merchant that has never talked to the mint: with the mint down it cannot even load
    // the keysets, so nothing is sent and nothing is recorded.
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    let t = token(&agent, 5, None, true).await;
    mint.stop().await;
    assert_refused(
        get_with(&app.at("/weather"), Some(&t)).await,
        503,
        codes::MINT_UNAVAILABLE,
    )
    .await;
    assert!(app
        .merchant
        .store()
        .redemption(&key_of(&t))
        .await
        .unwrap()
        .is_none());
    mint.restart().await;
    assert_eq!(get_with(&app.at("/weather"), Some(&t)).await.status(), 200);
}

#[tokio::test]
async fn an_in_doubt_redemption_is_claimed_by_recovery_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut mint = TestMint::start(&dir.path().join("mint")).await;
    let data = dir.path().join("merchant");
    let app = start_app(&mint, &data).await;
    let agent = funded_wallet(&mint, 100).await;
    let first = pay_challenge(&agent, &challenge(&app.at("/weather")).await).await;
    assert_eq!(
        get_with(&app.at("/weather"), Some(&first)).await.status(),
        200
    );
    let pending = pay_challenge(&agent, &challenge(&app.at("/weather")).await).await;
    mint.stop().await;
    assert_refused(
        get_with(&app.at("/weather"), Some(&pending)).await,
        503,
        codes::MINT_UNAVAILABLE,
    )
    .await;
    mint.restart().await;

    // A second merchant process on the same data dir (the first one "crashed"): start-up
    // recovery finishes the swap and marks the payment as paid but not yet served.
    let restarted = Merchant::open(&data).await.unwrap();
    let summary = restarted.recover().await.unwrap();
    assert_eq!(summary.paid, 1, "{summary:?}");
    let record = restarted
        .store()
        .redemption(&key_of(&pending))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, RedemptionState::Paid);
    assert_eq!(
        u64::from(
            restarted
                .balance(&mint.mint_url, &cdk::nuts::CurrencyUnit::Sat)
                .await
                .unwrap()
        ),
        10
    );
    // The agent's retry is served, once.
    assert_eq!(
        get_with(&app.at("/weather"), Some(&pending)).await.status(),
        200
    );
    assert_refused(
        get_with(&app.at("/weather"), Some(&pending)).await,
        400,
        codes::TOKEN_SPENT,
    )
    .await;
    assert_eq!(app.hits(), 2);
}

/// A proxy in front of the mint that can hold `POST /v1/swap` requests forever (a mint that
/// accepts the connection and never answers).
async fn hanging_proxy(mint: &TestMint) -> (String, Arc<AtomicBool>) {
    let hang = Arc::new(AtomicBool::new(false));
    let target = mint.url.clone();
    let flag = hang.clone();
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (flag, target, client) = (flag.clone(), target.clone(), client.clone());
        async move {
            let (parts, body) = req.into_parts();
            if parts.uri.path() == "/v1/swap" && flag.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
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
    (url, hang)
}

#[tokio::test]
async fn a_mint_that_never_answers_times_out_into_a_503_and_the_token_pays_later() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let (proxy, hang) = hanging_proxy(&mint).await;
    let proxy_url = MintUrl::from_str(&proxy).unwrap();
    let app = start_app_with(
        PaywallOptions::new(vec![proxy_url.clone()]).redeem_timeout(Duration::from_secs(1)),
        &dir.path().join("merchant"),
    )
    .await;
    let agent = funded_wallet_at(&proxy_url, 100).await;
    let first = pay_challenge(&agent, &challenge(&app.at("/weather")).await).await;
    assert_eq!(
        get_with(&app.at("/weather"), Some(&first)).await.status(),
        200
    );
    let pending = pay_challenge(&agent, &challenge(&app.at("/weather")).await).await;

    hang.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let r = get_with(&app.at("/weather"), Some(&pending)).await;
    assert_refused(r, 503, codes::MINT_UNAVAILABLE).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the redemption timed out"
    );
    let record = app
        .merchant
        .store()
        .redemption(&key_of(&pending))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, RedemptionState::InDoubt);
    assert!(
        !record.outputs.is_empty(),
        "the swap's outputs were noted for recovery"
    );

    hang.store(false, Ordering::SeqCst);
    let r = get_with(&app.at("/weather"), Some(&pending)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(app.hits(), 2);
    assert_eq!(
        app.balance(&mint).await,
        0,
        "the balance lives under the proxy's URL"
    );
    assert_eq!(
        u64::from(
            app.merchant
                .balance(&proxy_url, &cdk::nuts::CurrencyUnit::Sat)
                .await
                .unwrap()
        ),
        10
    );
}
