//! The 402 answer and credentials that are not tokens.

use merchant::cashu_402::error_body::{codes, ErrorBody};
use merchant::cashu_402::Challenge;

use crate::support::*;

#[tokio::test]
async fn a_request_without_a_credential_gets_402_with_the_price() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;

    let r = get_with(&app.at("/weather"), None).await;
    assert_eq!(r.status(), 402);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let c = Challenge::parse(r.headers()["x-cashu"].to_str().unwrap()).unwrap();
    assert_eq!(u64::from(c.amount), 5);
    assert_eq!(c.unit.to_string(), "sat");
    assert_eq!(c.mints, vec![mint.mint_url.clone()]);
    assert!(c.lock.is_none());
    let body: ErrorBody = r.json().await.unwrap();
    assert_eq!(body.code, codes::PAYMENT_REQUIRED);

    let locked = Challenge::parse(&challenge(&app.at("/locked")).await).unwrap();
    assert_eq!(locked.lock_pubkey(), Some(app.merchant.pubkey()));
    assert_eq!(app.hits(), 0, "nothing was served");

    let free = get_with(&app.at("/free"), None).await;
    assert_eq!(free.status(), 200);
}

#[tokio::test]
async fn a_malformed_credential_is_a_400_never_a_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    for bad in [
        "hello",
        "cashuBnotbase64!!",
        "cashuA",
        "creqAo2FhBWF1Y3NhdA",
        &"cashuB".repeat(20_000),
    ] {
        let r = get_with(&app.at("/weather"), Some(bad)).await;
        assert_refused(r, 400, codes::TOKEN_MALFORMED).await;
    }
    let r = reqwest::Client::new()
        .get(app.at("/weather"))
        .header(
            "X-Cashu",
            reqwest::header::HeaderValue::from_bytes(b"cashuB\xff").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_refused(r, 400, codes::TOKEN_MALFORMED).await;
    assert_eq!(app.hits(), 0);
}
