//! A prepaid claim that dies between the signing and the handing out loses nothing.

use std::time::{Duration, Instant};

use cashu_402::allowance::CreatePrepaid;

use super::*;
use crate::config::Config;

async fn paid(allowances: &Allowances, quote_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while allowances.quote_state(quote_id).await.unwrap() != Some(MintQuoteState::Paid) {
        assert!(Instant::now() < deadline, "the fake backend never paid");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_prepaid_claim_that_died_after_signing_hands_out_the_same_token() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("data_dir = {:?}\n", dir.path().display().to_string());
    let config = Config::from_toml(&toml, dir.path()).unwrap();
    let app = crate::app(&config).await.unwrap();
    let allowances = &app.allowances;
    let view = allowances
        .create_prepaid(CreatePrepaid {
            amount: 100,
            memo: None,
        })
        .await
        .unwrap();
    let account = allowances.registry.get(&view.id).await.unwrap().unwrap();
    let quote_id = account.prepaid.as_ref().unwrap().quote_id.clone();
    paid(allowances, &quote_id).await;

    // A claim signs the outputs, then its process dies: the token never leaves it.
    let keyset = allowances.active_sat_keyset().unwrap();
    let long_ago = unix_time() - 10 * ISSUING_TIMEOUT_SECS;
    allowances
        .registry
        .update(&view.id, |a| {
            let p = a.prepaid.as_mut().unwrap();
            p.state = PrepaidState::Issuing { since: long_ago };
            p.keyset = Some(keyset.to_string());
            Ok(((), Effects::default()))
        })
        .await
        .unwrap();
    let (lost, lost_ys) = allowances
        .issue(&view.id, &quote_id, 100, keyset, None)
        .await
        .unwrap();
    assert_eq!(
        allowances.quote_state(&quote_id).await.unwrap(),
        Some(MintQuoteState::Issued)
    );

    // The next look at the allowance, after the claim timed out, hands out that very token.
    let shown = allowances.show(&view.id).await.unwrap();
    assert_eq!(shown.state, "delivered");
    assert_eq!(shown.token.as_deref(), Some(lost.as_str()));
    assert_eq!(shown.balance, 100, "unspent, worth its full value");
    let account = allowances.registry.get(&view.id).await.unwrap().unwrap();
    assert_eq!(account.prepaid.unwrap().ys, lost_ys);
    // And only once.
    assert_eq!(allowances.show(&view.id).await.unwrap().token, None);
}
