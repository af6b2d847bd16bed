//! Paying: the happy path, every check that can refuse a token, replays and concurrency.

use std::str::FromStr;

use cdk::nuts::{SecretKey, Token};
use futures::future::join_all;
use merchant::cashu_402::error_body::codes;
use merchant::store::RedemptionState;

use crate::support::*;

#[tokio::test]
async fn a_paid_request_is_served_once_and_the_merchant_holds_the_ecash() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    let agent = funded_wallet(&mint, 100).await;

    let header = challenge(&app.at("/weather")).await;
    let token = pay_challenge(&agent, &header).await;
    let r = get_with(&app.at("/weather"), Some(&token)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "sunny");
    assert_eq!(app.hits(), 1);
    assert_eq!(
        app.balance(&mint).await,
        5,
        "the merchant nets the price: the agent paid the input fee on top"
    );

    // A POST body reaches the handler untouched.
    let token = pay_challenge(&agent, &challenge(&app.at("/weather")).await).await;
    let r = reqwest::Client::new()
        .post(app.at("/echo"))
        .header("X-Cashu", token)
        .body("hello merchant")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello merchant");
    assert_eq!(app.balance(&mint).await, 10);
}

#[tokio::test]
async fn tokens_failing_a_check_are_refused_with_the_matching_code() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    let agent = funded_wallet(&mint, 200).await;

    // Wrong mint: the route accepts only another mint's ecash.
    let t = token(&agent, 5, None, true).await;
    assert_refused(
        get_with(&app.at("/elsewhere"), Some(&t)).await,
        400,
        codes::MINT_NOT_ACCEPTED,
    )
    .await;

    // Wrong unit: priced in usd, paid in sat.
    assert_refused(
        get_with(&app.at("/usd"), Some(&t)).await,
        400,
        codes::UNIT_MISMATCH,
    )
    .await;

    // Too little: exactly the price, without the receiver's input fee.
    let short = token(&agent, 5, None, false).await;
    let body = assert_refused(
        get_with(&app.at("/weather"), Some(&short)).await,
        402,
        codes::AMOUNT_TOO_LOW,
    )
    .await;
    assert!(body.detail.contains("fee"), "{}", body.detail);

    // A lock is required but the token is not locked.
    assert_refused(
        get_with(&app.at("/locked"), Some(&t)).await,
        400,
        codes::LOCK_INVALID,
    )
    .await;

    // Locked to someone else's key.
    let other = SecretKey::generate().public_key();
    let elsewhere_locked = token(&agent, 5, Some(other), true).await;
    assert_refused(
        get_with(&app.at("/locked"), Some(&elsewhere_locked)).await,
        400,
        codes::LOCK_INVALID,
    )
    .await;

    // Locked to the merchant, but the DLEQ proofs were stripped.
    let locked = token(&agent, 5, Some(app.merchant.pubkey()), true).await;
    let mut stripped = Token::from_str(&locked).unwrap();
    if let Token::TokenV4(t) = &mut stripped {
        for part in &mut t.token {
            for p in &mut part.proofs {
                p.dleq = None;
            }
        }
    } else {
        panic!("cdk sends V4 tokens");
    }
    assert_refused(
        get_with(&app.at("/locked"), Some(&stripped.to_string())).await,
        400,
        codes::DLEQ_INVALID,
    )
    .await;
    assert_eq!(app.hits(), 0, "no refused request reached a handler");
    assert_eq!(app.balance(&mint).await, 0, "nothing was redeemed");

    // The refused tokens left no replay record: the good ones still pay.
    let r = get_with(&app.at("/locked"), Some(&locked)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = get_with(&app.at("/weather"), Some(&t)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.hits(), 2);
    // The locked token was served after the offline checks; the redeemer swaps it soon after.
    let held = || async {
        let b = app.merchant.balances().await.unwrap();
        b.iter().map(|b| b.held).sum::<u64>()
    };
    assert!(held().await <= 6, "at most the locked token is held");
    eventually("the held locked token redeemed", || async {
        (app.balance(&mint).await == 10 && held().await == 0).then_some(())
    })
    .await;
    assert_refused(
        get_with(&app.at("/locked"), Some(&locked)).await,
        400,
        codes::TOKEN_SPENT,
    )
    .await;
}

#[tokio::test]
async fn the_same_token_twice_is_a_replay_however_it_is_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    let agent = funded_wallet(&mint, 100).await;

    let t = pay_challenge(&agent, &challenge(&app.at("/weather")).await).await;
    assert_eq!(get_with(&app.at("/weather"), Some(&t)).await.status(), 200);
    assert_refused(
        get_with(&app.at("/weather"), Some(&t)).await,
        400,
        codes::TOKEN_SPENT,
    )
    .await;
    let v3 = Token::from_str(&t).unwrap().to_v3_string();
    assert_refused(
        get_with(&app.at("/weather"), Some(&v3)).await,
        400,
        codes::TOKEN_SPENT,
    )
    .await;
    assert_eq!(app.hits(), 1);
    assert_eq!(app.balance(&mint).await, 5);
}

#[tokio::test]
async fn fifty_concurrent_submissions_of_one_token_serve_exactly_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    let agent = funded_wallet(&mint, 100).await;
    let t = pay_challenge(&agent, &challenge(&app.at("/weather")).await).await;

    let url = app.at("/weather");
    let answers = join_all((0..50).map(|_| {
        let (url, t) = (url.clone(), t.clone());
        tokio::spawn(async move {
            let r = get_with(&url, Some(&t)).await;
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            (status, body)
        })
    }))
    .await;
    let mut ok = 0;
    for a in answers {
        let (status, body) = a.unwrap();
        match status {
            200 => ok += 1,
            400 => assert!(body.contains(&codes::TOKEN_SPENT.to_string()), "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 1, "exactly one request is served");
    assert_eq!(app.hits(), 1);
    assert_eq!(app.balance(&mint).await, 5);
    let key = merchant::verify::token_key(
        &merchant::verify::token_ys(&Token::from_str(&t).unwrap()).unwrap(),
    );
    let record = app
        .merchant
        .store()
        .redemption(&key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, RedemptionState::Redeemed);
}

#[tokio::test]
async fn fifty_concurrent_submissions_of_one_locked_token_serve_exactly_one_offline() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    let agent = funded_wallet(&mint, 100).await;
    let t = pay_challenge(&agent, &challenge(&app.at("/locked")).await).await;

    let url = app.at("/locked");
    let answers = join_all((0..50).map(|_| {
        let (url, t) = (url.clone(), t.clone());
        tokio::spawn(async move {
            let r = get_with(&url, Some(&t)).await;
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            (status, body)
        })
    }))
    .await;
    let mut ok = 0;
    for a in answers {
        let (status, body) = a.unwrap();
        match status {
            200 => ok += 1,
            400 => assert!(body.contains(&codes::TOKEN_SPENT.to_string()), "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 1, "exactly one request is served");
    assert_eq!(app.hits(), 1);
    let key = merchant::verify::token_key(
        &merchant::verify::token_ys(&Token::from_str(&t).unwrap()).unwrap(),
    );
    // Served from the held path, then redeemed in the background: once, into the wallet.
    let held = app
        .merchant
        .store()
        .held_tokens(merchant::store::HeldStatus::Redeemed)
        .await
        .unwrap();
    let pending = app
        .merchant
        .store()
        .held_tokens(merchant::store::HeldStatus::Held)
        .await
        .unwrap();
    assert_eq!(
        held.iter().chain(&pending).filter(|h| h.key == key).count(),
        1,
        "the token was held (accepted offline)"
    );
    eventually("the held token redeemed", || async {
        let state = app.merchant.store().redemption(&key).await.unwrap()?.state;
        (state == RedemptionState::Redeemed && app.balance(&mint).await == 5).then_some(())
    })
    .await;
}
