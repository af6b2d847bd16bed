//! The mint's life cycle with cdk's own wallet over HTTP: a full round trip (mint, send,
//! receive, melt) and a clean restart that must keep every piece of state. (Crashes: `crash.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use cdk::amount::SplitTarget;
use cdk::nuts::nut00::ProofsMethods;
use cdk::nuts::{
    CheckStateRequest, MeltQuoteState, MintQuoteState, PaymentMethod, Proofs, PublicKey, State,
    Token,
};
use cdk::wallet::{ReceiveOptions, SendOptions, Wallet};
use cdk::Amount;

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Helpers

pub(crate) async fn balance(w: &Wallet) -> u64 {
    u64::from(w.total_balance().await.unwrap())
}

pub(crate) fn total(proofs: &Proofs) -> u64 {
    u64::from(proofs.total_amount().unwrap())
}

pub(crate) fn random_seed() -> [u8; 64] {
    bip39::Mnemonic::generate(12)
        .unwrap()
        .to_seed_normalized("")
}

/// `prepare_send` → `confirm`: the encoded token.
pub(crate) async fn send(w: &Wallet, amount: u64) -> String {
    w.prepare_send(Amount::from(amount), SendOptions::default())
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string()
}

pub(crate) async fn receive(w: &Wallet, token: &str) -> u64 {
    u64::from(w.receive(token, ReceiveOptions::default()).await.unwrap())
}

/// The proofs inside an encoded token (V4 tokens carry short keyset ids: ask the mint).
pub(crate) async fn token_proofs(w: &Wallet, token: &str) -> Proofs {
    let keysets = w.mint_connector().get_mint_keysets().await.unwrap().keysets;
    Token::from_str(token).unwrap().proofs(&keysets).unwrap()
}

/// The mint's NUT-07 view of `ys`, without touching any wallet's database.
pub(crate) async fn mint_states(w: &Wallet, ys: Vec<PublicKey>) -> HashMap<PublicKey, State> {
    let mut states = HashMap::new();
    for chunk in ys.chunks(200) {
        let response = w
            .mint_connector()
            .post_check_state(CheckStateRequest { ys: chunk.to_vec() })
            .await
            .unwrap();
        assert_eq!(response.states.len(), chunk.len(), "NUT-07 answer size");
        states.extend(response.states.into_iter().map(|s| (s.y, s.state)));
    }
    assert_eq!(states.len(), ys.len(), "NUT-07 answered for other proofs");
    states
}

/// `GET path` on the mint, which must answer 2xx with JSON.
pub(crate) async fn get_json(mint_url: &str, path: &str) -> serde_json::Value {
    let response = http()
        .get(format!("{mint_url}{path}"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "GET {path}: {status} {body}");
    serde_json::from_str(&body).unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. Round trip

const MINTED: u64 = 1000;
const SENT: u64 = 300;
const MELTED: u64 = 250;
/// The fake backend reports `total_spent = amount + 1`.
const FAKE_LN_FEE: u64 = 1;

/// The default `[lightning]` fee reserve: 2 % of the amount, at least 2 sat.
fn fee_reserve(amount: u64) -> u64 {
    (amount * 2 / 100).max(2)
}

/// What [`round_trip`] leaves behind.
struct RoundTrip {
    a: Wallet,
    b: Wallet,
    token: String,
    sent: Proofs,
    mint_quote: String,
    melt_quote: String,
}

const A_AFTER: u64 = MINTED - SENT;
const B_AFTER: u64 = SENT - MELTED - FAKE_LN_FEE;

/// Mints 1000 sat into A, sends 300 to B, and melts 250 from B to a fake invoice, checking
/// every step against the mint.
async fn round_trip(mint: &MintProcess, dir: &Path) -> RoundTrip {
    let a = wallet(&mint.url, &dir.join("a")).await;
    let b = wallet(&mint.url, &dir.join("b")).await;

    // Mint through a bolt11 quote that the fake backend pays by itself.
    let quote = a
        .mint_quote(
            PaymentMethod::BOLT11,
            Some(Amount::from(MINTED)),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(quote.amount, Some(Amount::from(MINTED)));
    assert!(quote.request.starts_with("lnbc"), "{}", quote.request);
    eventually("the mint quote to be paid", || async {
        let q = a.check_mint_quote_status(&quote.id).await.unwrap();
        (q.state == MintQuoteState::Paid).then_some(())
    })
    .await;
    let minted = a
        .mint(&quote.id, SplitTarget::default(), None)
        .await
        .unwrap();
    assert_eq!(total(&minted), MINTED);
    assert_eq!(balance(&a).await, MINTED);
    let issued = a.check_mint_quote_status(&quote.id).await.unwrap();
    assert_eq!(issued.state, MintQuoteState::Issued);

    // Send: A makes a token; its proofs stay UNSPENT until B swaps them.
    let prepared = a
        .prepare_send(Amount::from(SENT), SendOptions::default())
        .await
        .unwrap();
    let send_op = prepared.operation_id();
    let token = prepared.confirm(None).await.unwrap();
    assert_eq!(u64::from(token.value().unwrap()), SENT);
    let token = token.to_string();
    assert_eq!(balance(&a).await, A_AFTER);
    let sent = token_proofs(&a, &token).await;
    assert_eq!(total(&sent), SENT);
    let states = a.check_proofs_spent(sent.clone()).await.unwrap();
    assert!(
        states.iter().all(|s| s.state == State::Unspent),
        "{states:?}"
    );
    assert!(!a.check_send_status(send_op).await.unwrap());

    // Receive: B swaps the token; now the mint reports the sent proofs SPENT.
    assert_eq!(receive(&b, &token).await, SENT);
    assert_eq!(balance(&b).await, SENT);
    let states = a.check_proofs_spent(sent.clone()).await.unwrap();
    assert_eq!(states.len(), sent.len());
    assert!(states.iter().all(|s| s.state == State::Spent), "{states:?}");
    assert!(a.check_send_status(send_op).await.unwrap());
    assert_double_spend_refused(mint, dir, &token, "thief-1").await;

    // Melt: B pays a 250 sat invoice. Reserve 5 sat, the fake node spends 1, 4 come back.
    let melt_quote = b
        .melt_quote(PaymentMethod::BOLT11, fake_invoice(MELTED), None, None)
        .await
        .unwrap();
    assert_eq!(melt_quote.amount, Amount::from(MELTED));
    assert_eq!(u64::from(melt_quote.fee_reserve), fee_reserve(MELTED));
    assert_eq!(melt_quote.state, MeltQuoteState::Unpaid);
    let melted = b
        .prepare_melt(&melt_quote.id, HashMap::new())
        .await
        .unwrap()
        .confirm()
        .await
        .unwrap();
    assert_eq!(melted.state(), MeltQuoteState::Paid);
    assert_eq!(u64::from(melted.amount()), MELTED);
    assert_eq!(u64::from(melted.fee_paid()), FAKE_LN_FEE);
    let change = melted.change().map(total).unwrap_or(0);
    assert!(
        change >= fee_reserve(MELTED) - FAKE_LN_FEE,
        "the unused fee reserve must come back as change, got {change} sat"
    );
    assert_eq!(balance(&b).await, B_AFTER);
    let paid = b.check_melt_quote_status(&melt_quote.id).await.unwrap();
    assert_eq!(paid.state, MeltQuoteState::Paid);

    RoundTrip {
        a,
        b,
        token,
        sent,
        mint_quote: quote.id,
        melt_quote: melt_quote.id,
    }
}

/// A wallet that never saw `token` cannot redeem it again: the mint says it is spent.
pub(crate) async fn assert_double_spend_refused(
    mint: &MintProcess,
    dir: &Path,
    token: &str,
    name: &str,
) {
    let thief = wallet(&mint.url, &dir.join(name)).await;
    let again = thief.receive(token, ReceiveOptions::default()).await;
    assert!(
        matches!(again, Err(cdk::Error::TokenAlreadySpent)),
        "{again:?}"
    );
    assert_eq!(balance(&thief).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_trip_mints_sends_receives_and_melts_with_exact_fees() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let rt = round_trip(&mint, dir.path()).await;
    assert_eq!(
        balance(&rt.a).await + balance(&rt.b).await,
        A_AFTER + B_AFTER
    );
    mint.stop();
}

// ---------------------------------------------------------------------------------------------
// 2. Clean restart

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clean_restart_keeps_proofs_quotes_and_keysets() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let rt = round_trip(&mint, dir.path()).await;
    let keysets = get_json(&mint.url, "/v1/keysets").await;
    let keys = get_json(&mint.url, "/v1/keys").await;
    let (url, port) = (mint.url.clone(), mint.port);

    // `stop` sends SIGTERM and asserts a clean exit.
    let mint = mint.stop().start();
    assert_eq!((mint.url.as_str(), mint.port), (url.as_str(), port));

    assert_eq!(get_json(&mint.url, "/v1/keysets").await, keysets);
    assert_eq!(get_json(&mint.url, "/v1/keys").await, keys);

    // Balances, and the mint still knows every held proof as UNSPENT.
    assert_eq!(balance(&rt.a).await, A_AFTER);
    assert_eq!(balance(&rt.b).await, B_AFTER);
    for w in [&rt.a, &rt.b] {
        let held = w.get_unspent_proofs().await.unwrap();
        let states = mint_states(w, held.ys().unwrap()).await;
        assert!(states.values().all(|s| *s == State::Unspent), "{states:?}");
    }

    // The spent set survived: the sent proofs are SPENT, the token cannot be redeemed again.
    let states = rt.a.check_proofs_spent(rt.sent.clone()).await.unwrap();
    assert_eq!(states.len(), rt.sent.len());
    assert!(states.iter().all(|s| s.state == State::Spent), "{states:?}");
    assert_double_spend_refused(&mint, dir.path(), &rt.token, "thief-2").await;

    // Quotes survived, with their states.
    let mq = get_json(
        &mint.url,
        &format!("/v1/mint/quote/bolt11/{}", rt.mint_quote),
    )
    .await;
    assert_eq!(mq["state"], "ISSUED", "{mq}");
    assert_eq!(mq["amount"], MINTED, "{mq}");
    let melt = get_json(
        &mint.url,
        &format!("/v1/melt/quote/bolt11/{}", rt.melt_quote),
    )
    .await;
    assert_eq!(melt["state"], "PAID", "{melt}");
    assert_eq!(melt["amount"], MELTED, "{melt}");
    let q = rt.a.check_mint_quote_status(&rt.mint_quote).await.unwrap();
    assert_eq!(q.state, MintQuoteState::Issued);
    let q = rt.b.check_melt_quote_status(&rt.melt_quote).await.unwrap();
    assert_eq!(q.state, MeltQuoteState::Paid);

    // New work still goes through: a swap of everything A holds, then a send to B.
    let before = rt.a.get_unspent_proofs().await.unwrap();
    rt.a.swap(
        None,
        SplitTarget::default(),
        before.clone(),
        None,
        false,
        false,
    )
    .await
    .unwrap();
    assert_eq!(balance(&rt.a).await, A_AFTER);
    let states = mint_states(&rt.a, before.ys().unwrap()).await;
    assert!(states.values().all(|s| *s == State::Spent), "{states:?}");
    let token = send(&rt.a, 100).await;
    assert_eq!(receive(&rt.b, &token).await, 100);
    assert_eq!(balance(&rt.a).await, A_AFTER - 100);
    assert_eq!(balance(&rt.b).await, B_AFTER + 100);
    mint.stop();
}
