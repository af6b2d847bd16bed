//! One test per NUT that `/v1/info` advertises, against the real binary and the fake backend.
//!
//! [`ADVERTISED`] lists the NUTs tested here; `info_advertises_exactly_the_tested_nuts` fails
//! when the mint starts advertising a NUT that has no test in this file. Wallet-side NUT-13
//! (deterministic secrets) is not advertised but is tested together with NUT-09.

// Test code: a failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use cdk::amount::{FeeAndAmounts, SplitTarget};
use cdk::dhke::construct_proofs;
use cdk::nuts::{
    CurrencyUnit, Id, KeySetInfo, KeysResponse, MeltOptions, MeltQuoteState, MeltRequest,
    MintQuoteState, MintRequest, PaymentMethod, PreMintSecrets, Proofs, SecretKey,
    SpendingConditions, State, SwapRequest, SwapResponse, Token,
};
use cdk::types::FinalizedMelt;
use cdk::wallet::{MeltQuote, MintQuote, ReceiveOptions, SendOptions, Wallet};
use cdk::Amount;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// The NUTs `/v1/info` may advertise: each has a test below.
const ADVERTISED: &[&str] = &[
    "4", "5", "7", "8", "9", "10", "11", "12", "14", "15", "17", "19", "20",
];

// ---------------------------------------------------------------------------------------------
// Helpers: raw HTTP and blinded outputs built by hand, for the requests a wallet would not send.

/// Any serializable request as JSON.
macro_rules! to_json {
    ($v:expr) => {
        serde_json::to_value(&$v).unwrap()
    };
}

/// GETs `path` on the mint, expecting success.
async fn get(mint: &MintProcess, path: &str) -> Value {
    let resp = http()
        .get(format!("{}{path}", mint.url))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
    resp.json().await.unwrap()
}

/// POSTs `body` to `path` on the mint; returns the status and the JSON answer.
async fn post(mint: &MintProcess, path: &str, body: &Value) -> (u16, Value) {
    let url = format!("{}{path}", mint.url);
    let resp = http().post(url).json(body).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
    (status, value)
}

/// The error code of a NUT-00 error answer, failing if the request succeeded.
fn error_code((status, body): (u16, Value)) -> u64 {
    assert!(status >= 400, "expected an error, got {status}: {body}");
    let code = body["code"].as_u64();
    code.unwrap_or_else(|| panic!("no code: {body}"))
}

async fn info(mint: &MintProcess) -> Value {
    get(mint, "/v1/info").await
}

async fn keysets(mint: &MintProcess) -> Vec<KeySetInfo> {
    serde_json::from_value(get(mint, "/v1/keysets").await["keysets"].clone()).unwrap()
}

async fn active_keyset(mint: &MintProcess) -> Id {
    let all = keysets(mint).await.into_iter();
    all.filter(|k| k.active && k.unit == CurrencyUnit::Sat)
        .map(|k| k.id)
        .next()
        .expect("an active sat keyset")
}

async fn keys(mint: &MintProcess, id: Id) -> cdk::nuts::Keys {
    let resp: KeysResponse = serde_json::from_value(get(mint, &format!("/v1/keys/{id}")).await)
        .expect("a NUT-01 keys answer");
    resp.keysets.into_iter().next().unwrap().keys
}

/// Fresh random outputs for `amount` in keyset `id`, split into powers of two.
fn outputs(id: Id, amount: u64) -> PreMintSecrets {
    let denominations: FeeAndAmounts = (0, (0..32).map(|i| 1u64 << i).collect()).into();
    PreMintSecrets::random(id, Amount::from(amount), &SplitTarget::None, &denominations).unwrap()
}

/// A swap of `proofs` into fresh outputs of the same total.
fn swap_request(id: Id, proofs: Proofs) -> Value {
    let premint = outputs(id, total(&proofs));
    to_json!(SwapRequest::new(proofs, premint.blinded_messages()))
}

fn total(proofs: &Proofs) -> u64 {
    proofs.iter().map(|p| u64::from(p.amount)).sum()
}

/// Sum of the amounts in a JSON array of blind signatures.
fn signed_total(signatures: &Value) -> u64 {
    let all = signatures
        .as_array()
        .unwrap_or_else(|| panic!("{signatures}"));
    all.iter().map(|s| s["amount"].as_u64().unwrap()).sum()
}

/// A bolt11 mint quote for `amount`, waited on until the fake backend has paid it.
async fn paid_quote(wallet: &Wallet, amount: u64) -> MintQuote {
    let amount = Some(Amount::from(amount));
    let quote = wallet
        .mint_quote(PaymentMethod::BOLT11, amount, None, None)
        .await
        .unwrap();
    let id = quote.id.clone();
    eventually("mint quote paid", || async {
        let q = wallet.check_mint_quote_status(&id).await.unwrap();
        (q.state == MintQuoteState::Paid).then_some(())
    })
    .await;
    quote
}

/// A token of `amount` from `wallet`, locked by `lock`.
async fn send_locked(wallet: &Wallet, amount: u64, lock: SpendingConditions) -> String {
    let opts = SendOptions {
        conditions: Some(lock),
        ..Default::default()
    };
    let prepared = wallet.prepare_send(Amount::from(amount), opts).await;
    prepared.unwrap().confirm(None).await.unwrap().to_string()
}

/// A bolt11 melt quote, for part of the invoice (`mpp_sat`, NUT-15) or all of it.
async fn melt_quote(wallet: &Wallet, invoice: &str, mpp_sat: Option<u64>) -> MeltQuote {
    let options = mpp_sat.map(|sat| MeltOptions::new_mpp(sat * 1000));
    let quote = wallet.melt_quote(PaymentMethod::BOLT11, invoice, options, None);
    quote.await.unwrap()
}

/// Pays the melt quote `id` with the wallet's ecash.
async fn melt(wallet: &Wallet, id: &str) -> Result<FinalizedMelt, cdk::Error> {
    let prepared = wallet.prepare_melt(id, HashMap::new()).await?;
    prepared.confirm().await
}

async fn assert_already_paid(wallet: &Wallet, id: &str) {
    let refused = melt(wallet, id).await;
    let already_paid = matches!(refused, Err(cdk::Error::RequestAlreadyPaid));
    assert!(already_paid, "{refused:?}");
}

async fn balance(wallet: &Wallet) -> u64 {
    u64::from(wallet.total_balance().await.unwrap())
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_advertises_exactly_the_tested_nuts() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let info = info(&mint).await;
    let nuts = info["nuts"].as_object().unwrap();
    let advertised: BTreeSet<&str> = nuts.keys().map(String::as_str).collect();
    let tested: BTreeSet<&str> = ADVERTISED.iter().copied().collect();
    assert_eq!(
        advertised, tested,
        "every advertised NUT needs a test in tests/e2e/nuts.rs"
    );
    // Optional NUTs advertised as a flag must say they are supported.
    for nut in ["7", "8", "9", "10", "11", "12", "14", "20"] {
        assert_eq!(nuts[nut]["supported"], true, "NUT-{nut}: {info}");
    }
    mint.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nut04_mint_quote_is_paid_minted_and_then_issued() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let nut04 = &info(&mint).await["nuts"]["4"];
    assert_eq!(nut04["disabled"], false);
    assert_eq!(nut04["methods"][0]["method"], "bolt11");
    assert_eq!(nut04["methods"][0]["unit"], "sat");
    let max = nut04["methods"][0]["max_amount"].as_u64().unwrap();

    let w = wallet(&mint.url, &dir.path().join("w")).await;
    let quote = paid_quote(&w, 1000).await;
    let path = format!("/v1/mint/quote/bolt11/{}", quote.id);
    let before = get(&mint, &path).await;
    assert_eq!(before["state"], "PAID", "{before}");
    assert_eq!(before["amount"], 1000);
    assert_eq!(before["request"], quote.request.as_str());

    let minted = w.mint(&quote.id, SplitTarget::default(), None).await;
    assert_eq!(total(&minted.unwrap()), 1000);
    assert_eq!(balance(&w).await, 1000);
    let after = get(&mint, &path).await;
    assert_eq!(after["state"], "ISSUED", "{after}");

    // Minting the same quote twice is refused, and so is a quote above the advertised maximum.
    let again = w.mint(&quote.id, SplitTarget::default(), None).await;
    assert!(again.is_err());
    let too_big = json!({ "amount": max + 1, "unit": "sat" });
    let refused = post(&mint, "/v1/mint/quote/bolt11", &too_big).await;
    assert_eq!(error_code(refused), 11006, "amount out of range");
    mint.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nut05_melt_pays_an_invoice_and_burns_the_ecash() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let nut05 = &info(&mint).await["nuts"]["5"];
    assert_eq!(nut05["disabled"], false);
    assert_eq!(nut05["methods"][0]["method"], "bolt11");

    let w = wallet(&mint.url, &dir.path().join("w")).await;
    fund(&w, 1000).await;
    let quote = melt_quote(&w, &fake_invoice(100), None).await;
    assert_eq!(u64::from(quote.amount), 100);
    assert_eq!(quote.state, MeltQuoteState::Unpaid);
    let melted = melt(&w, &quote.id).await.unwrap();
    assert_eq!(melted.state(), MeltQuoteState::Paid);
    assert_eq!(u64::from(melted.amount()), 100);
    let spent = 100 + u64::from(melted.fee_paid());
    assert_eq!(balance(&w).await, 1000 - spent);
    let state = get(&mint, &format!("/v1/melt/quote/bolt11/{}", quote.id)).await;
    assert_eq!(state["state"], "PAID", "{state}");

    // The invoice cannot be paid a second time through a new quote, and the ecash stays.
    let again = melt_quote(&w, &quote.request, None).await;
    assert_already_paid(&w, &again.id).await;
    assert_eq!(balance(&w).await, 1000 - spent);
    mint.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nut07_checkstate_reports_unspent_then_spent() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let w = wallet(&mint.url, &dir.path().join("w")).await;
    fund(&w, 100).await;
    let proofs = w.get_unspent_proofs().await.unwrap();
    let ys: Vec<String> = proofs.iter().map(|p| p.y().unwrap().to_hex()).collect();

    let states = w.check_proofs_spent(proofs.clone()).await.unwrap();
    assert_eq!(states.len(), proofs.len());
    let unspent = states.iter().all(|s| s.state == State::Unspent);
    assert!(unspent, "{states:?}");

    let id = active_keyset(&mint).await;
    let (status, body) = post(&mint, "/v1/swap", &swap_request(id, proofs)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&mint, "/v1/checkstate", &json!({ "Ys": ys })).await;
    assert_eq!(status, 200, "{body}");
    let states = body["states"].as_array().unwrap();
    assert_eq!(states.len(), ys.len());
    for (state, y) in states.iter().zip(&ys) {
        assert_eq!(state["Y"], y.as_str());
        assert_eq!(state["state"], "SPENT", "{body}");
    }
    mint.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nut08_unused_fee_reserve_comes_back_as_change() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let w = wallet(&mint.url, &dir.path().join("w")).await;
    fund(&w, 1000).await;

    // 2 % of 100 sat is 2 sat, the minimum reserve; the fake backend then spends only 1 sat.
    let quote = melt_quote(&w, &fake_invoice(100), None).await;
    assert_eq!(u64::from(quote.fee_reserve), 2);
    let melted = melt(&w, &quote.id).await.unwrap();
    // fee_paid = inputs - amount - change: only the backend's actual fee is kept.
    assert_eq!(u64::from(melted.fee_paid()), 1, "the backend's actual fee");
    let change = melted.change().cloned().unwrap_or_default();
    assert!(total(&change) >= 1, "the unused reserve comes back");
    assert_eq!(balance(&w).await, 1000 - 101);

    // The mint keeps the change signatures (its blank outputs, signed) on the quote.
    let state = get(&mint, &format!("/v1/melt/quote/bolt11/{}", quote.id)).await;
    assert_eq!(signed_total(&state["change"]), total(&change), "{state}");
    mint.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nut09_nut13_restore_from_seed_recovers_the_balance() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let mnemonic = bip39::Mnemonic::generate(12).unwrap();
    let seed: [u8; 64] = mnemonic.to_seed_normalized("");
    let original = wallet_with_seed(&mint.url, &dir.path().join("a"), seed).await;
    fund(&original, 1000).await;
    // Spend some, so the restore has to tell spent from unspent outputs.
    let send = original.prepare_send(Amount::from(300), SendOptions::default());
    let token = send.await.unwrap().confirm(None).await.unwrap().to_string();
    let other = wallet(&mint.url, &dir.path().join("b")).await;
    other
        .receive(&token, ReceiveOptions::default())
        .await
        .unwrap();
    let expected = balance(&original).await;
    assert_eq!(expected, 700);

    // Same seed, empty database: the deterministic secrets are regenerated and restored.
    let restored = wallet_with_seed(&mint.url, &dir.path().join("a-restored"), seed).await;
    assert_eq!(balance(&restored).await, 0);
    let result = restored.restore().await.unwrap();
    assert_eq!(u64::from(result.unspent), expected, "{result:?}");
    assert!(u64::from(result.spent) >= 300, "{result:?}");
    assert_eq!(balance(&restored).await, expected);

    // The restored proofs are spendable, and the counter moved past them: a new mint works.
    fund(&restored, 10).await;
    assert_eq!(balance(&restored).await, expected + 10);
    mint.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nut10_nut11_p2pk_locked_token_needs_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let sender = wallet(&mint.url, &dir.path().join("s")).await;
    fund(&sender, 500).await;
    let key = SecretKey::generate();
    let lock = SpendingConditions::new_p2pk(key.public_key(), None);
    let encoded = send_locked(&sender, 100, lock.clone()).await;
    // NUT-10: the token's secrets are well-known secrets of kind P2PK carrying the pubkey.
    let token = Token::from_str(&encoded).unwrap();
    assert_eq!(token.spending_conditions().unwrap(), HashSet::from([lock]));
    let proofs = token.proofs(&keysets(&mint).await).unwrap();
    let secrets: Vec<String> = proofs.iter().map(|p| p.secret.to_string()).collect();
    assert!(
        secrets.iter().all(|s| s.starts_with("[\"P2PK\"")),
        "{secrets:?}"
    );

    // The mint refuses the locked proofs without a signature, and with the wrong key's.
    let id = active_keyset(&mint).await;
    let unsigned = post(&mint, "/v1/swap", &swap_request(id, proofs.clone())).await;
    assert_eq!(error_code(unsigned), 20008);
    let wrong = SecretKey::generate();
    let mut signed_wrong = proofs;
    for p in &mut signed_wrong {
        p.sign_p2pk(wrong.clone()).unwrap();
    }
    let refused = post(&mint, "/v1/swap", &swap_request(id, signed_wrong)).await;
    assert_eq!(error_code(refused), 20008);

    // A wallet without the key cannot receive it; with the key it can.
    let stranger = wallet(&mint.url, &dir.path().join("x")).await;
    let stolen = stranger.receive(&encoded, ReceiveOptions::default()).await;
    assert!(stolen.is_err());
    assert_eq!(balance(&stranger).await, 0);
    let receiver = wallet(&mint.url, &dir.path().join("r")).await;
    let opts = ReceiveOptions {
        p2pk_signing_keys: vec![key],
        ..Default::default()
    };
    let got = receiver.receive(&encoded, opts).await.unwrap();
    assert_eq!(u64::from(got), 100);
    assert_eq!(balance(&receiver).await, 100);
    mint.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nut12_minted_proofs_carry_a_dleq_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let w = wallet(&mint.url, &dir.path().join("w")).await;
    fund(&w, 1000).await;
    let proofs = w.get_unspent_proofs().await.unwrap();
    assert!(!proofs.is_empty());
    assert!(proofs.iter().all(|p| p.dleq.is_some()), "missing DLEQ");

    // Against the keys published at /v1/keys, independently of the wallet's cache.
    let id = proofs[0].keyset_id;
    let mint_keys = keys(&mint, id).await;
    for p in &proofs {
        assert_eq!(p.keyset_id, id);
        p.verify_dleq(mint_keys.amount_key(p.amount).unwrap())
            .unwrap();
    }
    // A DLEQ proves the signature for one key: the key of another amount fails.
    let p = &proofs[0];
    let other = Amount::from(u64::from(p.amount) * 2);
    assert!(p.verify_dleq(mint_keys.amount_key(other).unwrap()).is_err());

    // And through the wallet, on a token made of these proofs.
    let url = mint.url.parse().unwrap();
    let token = Token::new(url, proofs.clone(), None, CurrencyUnit::Sat);
    w.verify_token_dleq(&token).await.unwrap();
    let mut stripped = proofs;
    for p in &mut stripped {
        p.dleq = None;
    }
    let url = mint.url.parse().unwrap();
    let stripped = Token::new(url, stripped, None, CurrencyUnit::Sat);
    assert!(w.verify_token_dleq(&stripped).await.is_err());
    mint.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nut14_htlc_token_needs_the_preimage() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let sender = wallet(&mint.url, &dir.path().join("s")).await;
    fund(&sender, 500).await;
    let preimage = cdk::util::hex::encode(rand::random::<[u8; 32]>());
    let wrong = cdk::util::hex::encode(rand::random::<[u8; 32]>());
    let lock = SpendingConditions::new_htlc(preimage.clone(), None).unwrap();
    let encoded = send_locked(&sender, 64, lock.clone()).await;
    let token = Token::from_str(&encoded).unwrap();
    assert_eq!(token.spending_conditions().unwrap(), HashSet::from([lock]));
    let proofs = token.proofs(&keysets(&mint).await).unwrap();

    // The mint refuses the proofs without a preimage and with the wrong one. cdk 0.18.3 has no
    // NUT code for HTLC failures (it sends its catch-all 50000); the mint's error layer maps
    // them to 20008 "witness missing or invalid", keeping cdk's detail.
    let id = active_keyset(&mint).await;
    let (status, body) = post(&mint, "/v1/swap", &swap_request(id, proofs.clone())).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 20008, "{body}");
    let mut with_wrong = proofs;
    for p in &mut with_wrong {
        p.add_preimage(wrong.clone());
    }
    let (status, body) = post(&mint, "/v1/swap", &swap_request(id, with_wrong)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 20008, "{body}");
    assert_eq!(body["detail"], "Preimage does not match", "{body}");

    let receiver = wallet(&mint.url, &dir.path().join("r")).await;
    let opts = |p: &str| ReceiveOptions {
        preimages: vec![p.to_string()],
        ..Default::default()
    };
    assert!(receiver.receive(&encoded, opts(&wrong)).await.is_err());
    let got = receiver.receive(&encoded, opts(&preimage)).await.unwrap();
    assert_eq!(u64::from(got), 64);
    assert_eq!(balance(&receiver).await, 64);
    mint.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nut15_two_mints_each_pay_part_of_one_invoice() {
    // NUT-15 splits one invoice across several mints: each pays its part, the parts add up.
    let dir = tempfile::tempdir().unwrap();
    let invoice = fake_invoice(200);
    let mut mints = Vec::new();
    let mut paid = 0;
    for (name, part) in [("a", 120u64), ("b", 80u64)] {
        let mint = MintProcess::start(&dir.path().join(name), "");
        let nut15 = &info(&mint).await["nuts"]["15"];
        let bolt11_sat = json!([{ "method": "bolt11", "unit": "sat" }]);
        assert_eq!(nut15["methods"], bolt11_sat);
        let w = wallet(&mint.url, &dir.path().join(name).join("w")).await;
        fund(&w, 300).await;
        let quote = melt_quote(&w, &invoice, Some(part)).await;
        assert_eq!(u64::from(quote.amount), part, "partial amount quoted");
        let melted = melt(&w, &quote.id).await.unwrap();
        assert_eq!(melted.state(), MeltQuoteState::Paid);
        assert_eq!(u64::from(melted.amount()), part);
        let fee = u64::from(melted.fee_paid());
        assert_eq!(balance(&w).await, 300 - part - fee);
        paid += part;

        // One mint pays one part per invoice: a second part is refused as already paid.
        let second = melt_quote(&w, &invoice, Some(10)).await;
        assert_already_paid(&w, &second.id).await;
        mints.push(mint);
    }
    assert_eq!(paid, 200);
    for mint in mints {
        mint.stop();
    }
}

/// Reads websocket messages until `done` says the ones seen so far are what was awaited.
async fn ws_until<S>(ws: &mut S, what: &str, mut done: impl FnMut(&Value) -> bool)
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let found = tokio::time::timeout(DEADLINE, async {
        while let Some(msg) = ws.next().await {
            if let Message::Text(text) = msg.unwrap() {
                if done(&serde_json::from_str(&text).unwrap()) {
                    return true;
                }
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "websocket: no {what}");
}

fn subscribe(id: u64, kind: &str, sub_id: &str, filters: &[String]) -> Message {
    let req = json!({
        "jsonrpc": "2.0", "id": id, "method": "subscribe",
        "params": { "kind": kind, "subId": sub_id, "filters": filters },
    });
    Message::Text(req.to_string().into())
}

/// Is `v` a notification for subscription `sub` with a payload in `state` (and `quote`)?
fn notifies(v: &Value, sub: &str, quote: Option<&str>, state: &str) -> bool {
    let p = &v["params"];
    let quote_matches = quote.is_none_or(|q| p["payload"]["quote"] == q);
    p["subId"] == sub && quote_matches && p["payload"]["state"] == state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nut17_websocket_pushes_quote_and_proof_state_changes() {
    let dir = tempfile::tempdir().unwrap();
    // A 2 s payment delay, so that the PAID states arrive after the subscription.
    let mint = MintProcess::start(dir.path(), "[lightning.fake]\ndelay_secs = 2\n");
    let nut17 = &info(&mint).await["nuts"]["17"]["supported"][0];
    let commands = json!(["bolt11_mint_quote", "bolt11_melt_quote", "proof_state"]);
    assert_eq!(nut17["commands"], commands);
    let ws_url = format!("{}/v1/ws", mint.url.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let w = wallet(&mint.url, &dir.path().join("w")).await;

    // bolt11_mint_quote: PAID is pushed when the fake backend settles the invoice.
    let amount = Some(Amount::from(100));
    let quote = w.mint_quote(PaymentMethod::BOLT11, amount, None, None);
    let quote = quote.await.unwrap();
    let msg = subscribe(
        1,
        "bolt11_mint_quote",
        "mq",
        std::slice::from_ref(&quote.id),
    );
    ws.send(msg).await.unwrap();
    let ack = |v: &Value| v["id"] == 1 && v["result"]["status"] == "OK";
    ws_until(&mut ws, "subscribe ack", ack).await;
    let paid = |v: &Value| notifies(v, "mq", Some(&quote.id), "PAID");
    ws_until(&mut ws, "PAID mint quote", paid).await;
    let minted = w.mint(&quote.id, SplitTarget::default(), None).await;
    minted.unwrap();

    // proof_state: the minted proofs turn SPENT when swapped.
    let proofs = w.get_unspent_proofs().await.unwrap();
    let ys: Vec<String> = proofs.iter().map(|p| p.y().unwrap().to_hex()).collect();
    ws.send(subscribe(2, "proof_state", "ps", &ys))
        .await
        .unwrap();
    ws_until(&mut ws, "subscribe ack", |v| v["id"] == 2).await;
    let swapped = w.swap(None, SplitTarget::None, proofs, None, false, false);
    swapped.await.unwrap();
    let mut spent = HashSet::new();
    ws_until(&mut ws, "SPENT proof states", |v| {
        if notifies(v, "ps", None, "SPENT") {
            spent.insert(v["params"]["payload"]["Y"].as_str().unwrap().to_string());
        }
        spent.len() == ys.len()
    })
    .await;
    assert_eq!(spent, ys.into_iter().collect::<HashSet<_>>());

    // bolt11_melt_quote: PAID once the melt goes through.
    fund(&w, 100).await;
    let quote = melt_quote(&w, &fake_invoice(50), None).await;
    let msg = subscribe(
        3,
        "bolt11_melt_quote",
        "melt",
        std::slice::from_ref(&quote.id),
    );
    ws.send(msg).await.unwrap();
    ws_until(&mut ws, "subscribe ack", |v| v["id"] == 3).await;
    melt(&w, &quote.id).await.unwrap();
    let paid = |v: &Value| notifies(v, "melt", Some(&quote.id), "PAID");
    ws_until(&mut ws, "PAID melt quote", paid).await;
    mint.stop();
}

/// POSTs `body` twice: both succeed with the same answer, which is returned.
async fn post_twice(mint: &MintProcess, path: &str, body: Value) -> Value {
    let (status, first) = post(mint, path, &body).await;
    assert_eq!(status, 200, "{path}: {first}");
    let (status, second) = post(mint, path, &body).await;
    assert_eq!(status, 200, "{path} retried: {second}");
    assert_eq!(first, second, "{path}: the retry gets the same answer");
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nut19_repeated_requests_get_the_cached_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let nut19 = &info(&mint).await["nuts"]["19"];
    assert_eq!(nut19["ttl"], 60);
    let cached = json!([
        { "method": "POST", "path": "/v1/swap" },
        { "method": "POST", "path": "/v1/mint/bolt11" },
        { "method": "POST", "path": "/v1/melt/bolt11" },
    ]);
    assert_eq!(nut19["cached_endpoints"], cached);
    let w = wallet(&mint.url, &dir.path().join("w")).await;
    let id = active_keyset(&mint).await;
    let mint_keys = keys(&mint, id).await;

    // POST /v1/mint/bolt11: the same signed request twice.
    let quote = paid_quote(&w, 100).await;
    let signed_mint = |premint: &PreMintSecrets| {
        let outputs = premint.blinded_messages();
        let quote_id = quote.id.clone();
        let mut req = MintRequest {
            quote: quote_id,
            outputs,
            signature: None,
        };
        req.sign(quote.secret_key.as_ref().unwrap()).unwrap();
        to_json!(req)
    };
    let premint = outputs(id, 100);
    let minted = post_twice(&mint, "/v1/mint/bolt11", signed_mint(&premint)).await;
    let sigs = serde_json::from_value(minted["signatures"].clone()).unwrap();
    let proofs = construct_proofs(sigs, premint.rs(), premint.secrets(), &mint_keys).unwrap();
    assert_eq!(total(&proofs), 100);
    // A cache, not idempotence: other outputs for the same quote are refused.
    let other = post(&mint, "/v1/mint/bolt11", &signed_mint(&outputs(id, 100))).await;
    assert_eq!(error_code(other), 20002, "quote already issued");

    // POST /v1/swap: the same inputs and outputs twice, instead of "already spent".
    let premint = outputs(id, 100);
    let swap = SwapRequest::new(proofs.clone(), premint.blinded_messages());
    let swapped = post_twice(&mint, "/v1/swap", to_json!(swap)).await;
    let sigs = serde_json::from_value::<SwapResponse>(swapped)
        .unwrap()
        .signatures;
    let proofs = construct_proofs(sigs, premint.rs(), premint.secrets(), &mint_keys).unwrap();
    let respend = post(&mint, "/v1/swap", &swap_request(id, swap.inputs().clone())).await;
    assert_eq!(error_code(respend), 11001, "already spent");

    // POST /v1/melt/bolt11: the same melt twice, paid once.
    let quote = melt_quote(&w, &fake_invoice(10), None).await;
    let blanks = PreMintSecrets::blank(id, Amount::from(90)).unwrap();
    let melt_request = |blanks: Vec<_>| {
        let req = MeltRequest::new(quote.id.clone(), proofs.clone(), Some(blanks));
        to_json!(req)
    };
    let body = melt_request(blanks.blinded_messages());
    let melted = post_twice(&mint, "/v1/melt/bolt11", body).await;
    assert_eq!(melted["state"], "PAID", "{melted}");
    assert_eq!(signed_total(&melted["change"]), 100 - 10 - 1);
    let fewer_blanks = melt_request(blanks.blinded_messages()[1..].to_vec());
    error_code(post(&mint, "/v1/melt/bolt11", &fewer_blanks).await);
    mint.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nut20_locked_mint_quote_needs_the_quote_signature() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let w = wallet(&mint.url, &dir.path().join("w")).await;
    let quote = paid_quote(&w, 100).await;
    let quote_key = quote.secret_key.clone().expect("cdk locks its quotes");
    let state = get(&mint, &format!("/v1/mint/quote/bolt11/{}", quote.id)).await;
    assert_eq!(state["pubkey"], quote_key.public_key().to_hex(), "{state}");

    let id = active_keyset(&mint).await;
    let request = |key: Option<&SecretKey>| {
        let outputs = outputs(id, 100).blinded_messages();
        let quote_id = quote.id.clone();
        let mut req = MintRequest {
            quote: quote_id,
            outputs,
            signature: None,
        };
        if let Some(key) = key {
            req.sign(key).unwrap();
        }
        to_json!(req)
    };
    let path = "/v1/mint/bolt11";
    let unsigned = post(&mint, path, &request(None)).await;
    assert_eq!(error_code(unsigned), 20008, "unsigned");
    let wrong_key = post(&mint, path, &request(Some(&SecretKey::generate()))).await;
    assert_eq!(error_code(wrong_key), 20008, "wrong key");
    let mut tampered = request(Some(&quote_key));
    tampered["outputs"][0] = request(None)["outputs"][0].clone();
    let tampered = post(&mint, path, &tampered).await;
    assert_eq!(error_code(tampered), 20008, "outputs changed after signing");

    // Nothing was issued by the refused requests: the wallet's signed request mints it all.
    let minted = w.mint(&quote.id, SplitTarget::default(), None).await;
    assert_eq!(total(&minted.unwrap()), 100);
    mint.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_settings_take_effect_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let before = "[info]\nname = \"a\"\n[limits]\nmint_max = 1000\n";
    let after = "[info]\nname = \"b\"\n[limits]\nmint_max = 500\ninput_fee_ppk = 100\n";
    let mint = MintProcess::start(dir.path(), before);
    let info_a = info(&mint).await;
    assert!(
        info_a["name"].as_str().unwrap().starts_with("a "),
        "{info_a}"
    );
    assert_eq!(info_a["nuts"]["4"]["methods"][0]["max_amount"], 1000);
    let old = keysets(&mint).await;
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].input_fee_ppk, 0);
    let seed = [7u8; 64];
    let w = wallet_with_seed(&mint.url, &dir.path().join("w"), seed).await;
    fund(&w, 800).await;
    let old_proofs = w.get_unspent_proofs().await.unwrap();
    drop(w);

    let mint = mint.stop().start_with_config(after);
    let info_b = info(&mint).await;
    assert!(
        info_b["name"].as_str().unwrap().starts_with("b "),
        "{info_b}"
    );
    assert_eq!(info_b["nuts"]["4"]["methods"][0]["max_amount"], 500);
    let ks = keysets(&mint).await;
    assert_eq!(ks.len(), 2, "{ks:?}");
    let was = ks.iter().find(|k| k.id == old[0].id).unwrap();
    assert!(!was.active);
    assert_eq!(was.input_fee_ppk, 0);
    let new = ks.iter().find(|k| k.id != old[0].id).unwrap();
    assert!(new.active);
    assert_eq!(new.input_fee_ppk, 100);
    // The new maximum is enforced.
    let too_big = json!({ "amount": 501, "unit": "sat" });
    let refused = post(&mint, "/v1/mint/quote/bolt11", &too_big).await;
    assert_eq!(error_code(refused), 11006, "amount out of range");

    // Old ecash still swaps (at its own keyset's fee, 0) into the new keyset...
    let w = wallet_with_seed(&mint.url, &dir.path().join("w"), seed).await;
    let swapped = w.swap(None, SplitTarget::None, old_proofs, None, false, false);
    swapped.await.unwrap();
    let fresh = w.get_unspent_proofs().await.unwrap();
    assert!(fresh.iter().all(|p| p.keyset_id == new.id));
    assert_eq!(balance(&w).await, 800);
    // ... and spending the new keyset's proofs pays 100 ppk per input, rounded up.
    let fee = (fresh.len() as u64 * 100).div_ceil(1000);
    let swapped = w.swap(None, SplitTarget::None, fresh, None, false, false);
    swapped.await.unwrap();
    assert_eq!(balance(&w).await, 800 - fee);
    mint.stop();
}
