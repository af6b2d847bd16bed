//! L402 at the paywall: the challenge is a mint quote at our mint plus a macaroon bound to its
//! payment hash; bad credentials get 401; the same-mint case (the payer's mint settles the
//! invoice internally and returns no preimage) is accepted only once the quote is paid.

use std::collections::HashMap;
use std::time::Duration;

use cdk::nuts::PaymentMethod;
use cdk::wallet::Wallet;
use merchant::cashu_402::error_body::codes;
use merchant::cashu_402::l402::{L402Challenge, L402Credential, Preimage};
use merchant::cashu_402::macaroon::Macaroon;
use merchant::{PaywallOptions, Schemes};

use crate::support::*;

fn options(mint: &TestMint) -> PaywallOptions {
    PaywallOptions::new(vec![mint.mint_url.clone()])
        .retry_after(Duration::from_secs(2))
        .schemes(Schemes {
            cashu: true,
            l402: true,
            x402: true,
        })
}

async fn l402_challenge(url: &str) -> L402Challenge {
    let r = get_with(url, None).await;
    assert_eq!(r.status(), 402);
    let values: Vec<&str> = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(values.len(), 1, "one L402 challenge");
    L402Challenge::parse(values[0]).unwrap()
}

async fn get_l402(url: &str, credential: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header("Authorization", credential)
        .send()
        .await
        .unwrap()
}

/// Pays `invoice` by melting at the wallet's mint; returns the preimage the mint gave, if any.
async fn melt(wallet: &Wallet, invoice: &str) -> Option<String> {
    let quote = wallet
        .melt_quote(PaymentMethod::BOLT11, invoice, None, None)
        .await
        .unwrap();
    let done = wallet
        .prepare_melt(&quote.id, HashMap::new())
        .await
        .unwrap()
        .confirm()
        .await
        .unwrap();
    done.payment_proof()
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

#[tokio::test]
async fn the_402_offers_l402_with_an_invoice_from_our_mint_and_a_macaroon_bound_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app_with(options(&mint), &dir.path().join("merchant")).await;

    let c = l402_challenge(&app.at("/weather")).await;
    assert_eq!(c.version.as_deref(), Some("0"));
    let info = c.invoice_info().unwrap();
    assert_eq!(info.amount_sat(), Some(5));
    let mac = Macaroon::from_base64(&c.token).unwrap();
    let id = mac.l402_identifier().unwrap();
    assert_eq!(id.payment_hash, info.payment_hash, "bound to the invoice");
    let caveats: Vec<(&str, &str)> = mac.caveat_pairs().collect();
    assert!(caveats.contains(&("services", "paywall:0")), "{caveats:?}");
    assert!(
        caveats.contains(&("paywall_path_prefix", "/")),
        "{caveats:?}"
    );
    assert!(caveats.contains(&("paywall_paid", "5 sat")), "{caveats:?}");

    // The root key is in the data dir, private, and is what signs the macaroon.
    let key_path = dir
        .path()
        .join("merchant")
        .join(merchant::l402::ROOT_KEY_FILE);
    let root = merchant::l402::load_or_create_root_key(&dir.path().join("merchant")).unwrap();
    assert!(mac.verify_signature(&root));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "root key readable by others: {mode:o}");

    // Each 402 is a fresh quote.
    let again = l402_challenge(&app.at("/weather")).await;
    assert_ne!(again.invoice, c.invoice);
}

#[tokio::test]
async fn bad_l402_credentials_get_401_with_fresh_challenges() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app_with(options(&mint), &dir.path().join("merchant")).await;
    let c = l402_challenge(&app.at("/weather")).await;
    let mac = Macaroon::from_base64(&c.token).unwrap();

    // Another root key: not ours.
    let mut forged = Macaroon::new(b"someone else", mac.identifier.clone(), "paywall");
    for cav in &mac.caveats {
        forged.add_caveat(cav.clone());
    }
    // Our macaroon with a widening edit: the chain breaks.
    let mut widened = mac.clone();
    widened.caveats[3] = "paywall_paid=500 sat".into();

    let cases = [
        "L402 garbage".to_string(),
        format!("L402 {}:{}", "AgE=", "00".repeat(32)),
        L402Credential::new(forged.to_base64(), Preimage::SettledByMint).encode(),
        L402Credential::new(widened.to_base64(), Preimage::SettledByMint).encode(),
        // Authentic, but the preimage is not the invoice's.
        L402Credential::new(c.token.clone(), Preimage::Known([7; 32])).encode(),
    ];
    for credential in cases {
        let r = get_l402(&app.at("/weather"), &credential).await;
        assert!(
            r.headers().get("www-authenticate").is_some(),
            "fresh L402 challenge"
        );
        assert!(
            r.headers().get("payment-required").is_some(),
            "fresh x402 offer"
        );
        assert_refused(r, 401, codes::L402_INVALID).await;
    }
    assert_eq!(app.hits(), 0);
}

#[tokio::test]
async fn same_mint_l402_is_accepted_without_a_preimage_only_once_the_quote_is_paid() {
    let dir = tempfile::tempdir().unwrap();
    let mut mint = TestMint::start(&dir.path().join("mint")).await;
    let agent = funded_wallet(&mint, 100).await;
    // From now on invoices the mint issues are not paid by the fake backend: only a melt at
    // this mint (internal settlement) pays the merchant's quote.
    mint.payment_delay = 3600;
    mint.restart().await;
    let app = start_app_with(options(&mint), &dir.path().join("merchant")).await;

    let c = l402_challenge(&app.at("/weather")).await;
    let settled = L402Credential::new(c.token.clone(), Preimage::SettledByMint).encode();
    // Unpaid: 402 with fresh challenges, nothing served.
    let r = get_l402(&app.at("/weather"), &settled).await;
    assert!(r.headers().get("www-authenticate").is_some());
    assert_refused(r, 402, codes::L402_UNPAID).await;
    assert_eq!(app.hits(), 0);

    // The agent melts the invoice at the same mint: settled inside the mint, no preimage.
    let before = u64::from(agent.total_balance().await.unwrap());
    assert_eq!(
        melt(&agent, &c.invoice).await,
        None,
        "internal settlement has no preimage"
    );
    let spent = before - u64::from(agent.total_balance().await.unwrap());
    assert!(spent >= 5, "the agent paid the price (spent {spent})");

    let r = get_l402(&app.at("/weather"), &settled).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(app.hits(), 1);
    assert_eq!(
        app.balance(&mint).await,
        5,
        "the quote was claimed into the merchant's wallet"
    );

    // Reuse within validity: served again, claimed once.
    let r = get_l402(&app.at("/weather"), &settled).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.hits(), 2);
    assert_eq!(app.balance(&mint).await, 5);

    // Not for a dearer route in the same scope.
    let r = get_l402(&app.at("/bulk"), &settled).await;
    assert_refused(r, 401, codes::L402_INVALID).await;

    // A macaroon whose quote is unpaid stays refused even though another one was paid.
    let other = l402_challenge(&app.at("/weather")).await;
    let r = get_l402(
        &app.at("/weather"),
        &L402Credential::new(other.token, Preimage::SettledByMint).encode(),
    )
    .await;
    assert_refused(r, 402, codes::L402_UNPAID).await;
    assert_eq!(app.hits(), 2);
}

#[tokio::test]
async fn l402_is_not_offered_or_accepted_when_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    let r = get_with(&app.at("/weather"), None).await;
    assert_eq!(r.status(), 402);
    assert!(r.headers().get("www-authenticate").is_none());
    let r = get_l402(&app.at("/weather"), "L402 AgE=:").await;
    assert_refused(r, 402, codes::PAYMENT_REQUIRED).await;
}
