//! x402 at the paywall: a `cashu` entry in `PAYMENT-REQUIRED` (v2) and in the JSON body (v1)
//! beside `X-Cashu`, and x402 credentials redeemed by the same checks as `X-Cashu`.

use merchant::cashu_402::error_body::codes;
use merchant::cashu_402::x402::{PaymentPayload, PaymentRequired, X402Version};
use merchant::cashu_402::{Challenge, Token};
use merchant::{PaywallOptions, Schemes};

use crate::support::*;

async fn get_header(url: &str, name: &str, value: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header(name, value)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_402_carries_the_cashu_entry_in_v2_header_and_v1_body_beside_x_cashu() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;

    let r = get_with(&app.at("/weather"), None).await;
    assert_eq!(r.status(), 402);
    let x_cashu = Challenge::parse(r.headers()["x-cashu"].to_str().unwrap()).unwrap();
    let v2 =
        PaymentRequired::from_header(r.headers()["payment-required"].to_str().unwrap()).unwrap();
    assert_eq!(v2.version(), Ok(X402Version::V2));
    assert_eq!(v2.accepts[0].cashu().unwrap().challenge, x_cashu);
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(exposed.contains("PAYMENT-REQUIRED"), "{exposed}");

    let body = r.bytes().await.unwrap();
    let v1 = PaymentRequired::from_body(&body).unwrap().unwrap();
    assert_eq!(v1.version(), Ok(X402Version::V1));
    assert_eq!(v1.accepts[0].max_amount_required.as_deref(), Some("5"));
    assert_eq!(v1.accepts[0].cashu().unwrap().challenge, x_cashu);
    // The same body is still our error body.
    let err: merchant::cashu_402::error_body::ErrorBody = serde_json::from_slice(&body).unwrap();
    assert_eq!(err.code, codes::PAYMENT_REQUIRED);
}

#[tokio::test]
async fn x402_credentials_v2_and_v1_are_redeemed_like_x_cashu() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    let wallet = funded_wallet(&mint, 100).await;

    let r = get_with(&app.at("/weather"), None).await;
    let v2 =
        PaymentRequired::from_header(r.headers()["payment-required"].to_str().unwrap()).unwrap();
    let entry = &v2.accepts[0];
    for (version, header) in [
        (X402Version::V2, "PAYMENT-SIGNATURE"),
        (X402Version::V1, "X-PAYMENT"),
    ] {
        let token: Token = token(&wallet, 5, None, true).await.parse().unwrap();
        let payload = PaymentPayload::cashu(version, entry, &token).to_header();
        let r = get_header(&app.at("/weather"), header, &payload).await;
        assert_eq!(r.status(), 200, "{header}: {}", r.text().await.unwrap());
        // A replay of the same payload is refused like a replayed X-Cashu token.
        let r = get_header(&app.at("/weather"), header, &payload).await;
        assert_refused(r, 400, codes::TOKEN_SPENT).await;
    }
    assert_eq!(app.hits(), 2);
    assert_eq!(app.balance(&mint).await, 10);

    let r = get_header(&app.at("/weather"), "PAYMENT-SIGNATURE", "bm90IGpzb24=").await;
    assert_refused(r, 400, codes::TOKEN_MALFORMED).await;
}

#[tokio::test]
async fn x402_is_neither_offered_nor_accepted_when_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let options = PaywallOptions::new(vec![mint.mint_url.clone()]).schemes(Schemes {
        cashu: true,
        l402: false,
        x402: false,
    });
    let app = start_app_with(options, &dir.path().join("merchant")).await;
    let wallet = funded_wallet(&mint, 100).await;
    let r = get_with(&app.at("/weather"), None).await;
    assert!(r.headers().get("payment-required").is_none());
    let body = r.bytes().await.unwrap();
    assert_eq!(PaymentRequired::from_body(&body), Ok(None));

    let challenge = Challenge::new(
        5.into(),
        cdk::nuts::CurrencyUnit::Sat,
        mint.mint_url.clone(),
    );
    let entry = merchant::cashu_402::x402::PaymentRequirements::for_cashu(
        &challenge,
        X402Version::V2,
        None,
        60,
    )
    .unwrap();
    let token: Token = token(&wallet, 5, None, true).await.parse().unwrap();
    let payload = PaymentPayload::cashu(X402Version::V2, &entry, &token).to_header();
    let r = get_header(&app.at("/weather"), "PAYMENT-SIGNATURE", &payload).await;
    assert_refused(r, 402, codes::PAYMENT_REQUIRED).await;
    assert_eq!(app.hits(), 0);
}
