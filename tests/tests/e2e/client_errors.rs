//! Every error a client can cause is a Cashu error body `{"detail", "code"}` with a 4xx status,
//! never a 5xx and never an internal message. Each case sends a raw request to the real binary
//! and asserts the status, the exact code and a clean detail.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use cdk::amount::SplitTarget;
use cdk::nuts::{
    BlindedMessage, CheckStateRequest, Id, MeltQuoteState, MeltRequest, MintQuoteState,
    MintRequest, PaymentMethod, PreMintSecrets, Proofs, SwapRequest,
};
use cdk::wallet::Wallet;
use cdk::Amount;
use rand::RngCore;
use serde_json::{json, Value};

use crate::support::*;

// Cashu's codes (cdk-common `ErrorCode`).
pub(crate) const TOKEN_ALREADY_SPENT: u64 = 11001;
pub(crate) const TOKEN_PENDING: u64 = 11002;
pub(crate) const BLINDED_MESSAGE_ALREADY_SIGNED: u64 = 11003;
pub(crate) const TRANSACTION_UNBALANCED: u64 = 11005;
pub(crate) const AMOUNT_OUT_OF_LIMIT_RANGE: u64 = 11006;
pub(crate) const DUPLICATE_OUTPUTS: u64 = 11008;
pub(crate) const MAX_OUTPUTS_EXCEEDED: u64 = 11015;
pub(crate) const KEYSET_NOT_FOUND: u64 = 12001;
pub(crate) const QUOTE_NOT_PAID: u64 = 20001;
pub(crate) const TOKENS_ALREADY_ISSUED: u64 = 20002;
pub(crate) const QUOTE_EXPIRED: u64 = 20007;
/// cdk answers an unknown quote id with its catch-all code and the detail "Unknown quote".
pub(crate) const CDK_UNKNOWN: u64 = 50000;

// Our codes for what the NUTs give no code to (`cashu_402::error_body::codes`).
pub(crate) const MALFORMED_REQUEST: u64 = 40000;
pub(crate) const NOT_FOUND: u64 = 40400;
pub(crate) const METHOD_NOT_ALLOWED: u64 = 40500;
pub(crate) const BODY_TOO_LARGE: u64 = 41300;

/// Limits of the shared fixture, in sat.
pub(crate) const MINT_MIN: u64 = 5;
pub(crate) const MINT_MAX: u64 = 100_000;
pub(crate) const MELT_MIN: u64 = 5;
pub(crate) const MELT_MAX: u64 = 50_000;
pub(crate) const MAX_OUTPUTS: usize = 64;

pub(crate) fn limits_config() -> String {
    format!(
        "[limits]\nmint_min = {MINT_MIN}\nmint_max = {MINT_MAX}\nmelt_min = {MELT_MIN}\n\
         melt_max = {MELT_MAX}\nmax_outputs = {MAX_OUTPUTS}\n"
    )
}

/// A mint with a wallet that can fetch proofs from it.
pub(crate) struct Fixture {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) mint: MintProcess,
    pub(crate) wallet: Wallet,
}

impl Fixture {
    pub(crate) async fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mint = MintProcess::start(dir.path(), config);
        let wallet = wallet(&mint.url, &dir.path().join("w")).await;
        Self {
            _dir: dir,
            mint,
            wallet,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.mint.url)
    }

    /// Fresh proofs worth `amount`, minted by the wallet (fewest proofs).
    pub(crate) async fn proofs(&self, amount: u64) -> Proofs {
        let quote = self
            .wallet
            .mint_quote(
                PaymentMethod::BOLT11,
                Some(Amount::from(amount)),
                None,
                None,
            )
            .await
            .unwrap();
        let w = self.wallet.clone();
        eventually("the fake backend to pay the mint quote", || {
            let w = w.clone();
            let id = quote.id.clone();
            async move {
                let q = w.check_mint_quote_status(&id).await.unwrap();
                (q.state == MintQuoteState::Paid).then_some(())
            }
        })
        .await;
        let proofs = self
            .wallet
            .mint(&quote.id, SplitTarget::None, None)
            .await
            .unwrap();
        assert_eq!(sum(&proofs), amount);
        proofs
    }

    /// Blinded messages worth `amount` for the active keyset (fewest outputs).
    pub(crate) async fn outputs(&self, amount: u64) -> Vec<BlindedMessage> {
        let keyset = self.wallet.active_keyset().await.unwrap();
        let fees = self
            .wallet
            .get_keyset_fees_and_amounts_by_id(keyset.id)
            .await
            .unwrap();
        PreMintSecrets::random(keyset.id, Amount::from(amount), &SplitTarget::None, &fees)
            .unwrap()
            .blinded_messages()
    }

    /// A bolt11 mint quote created over raw HTTP (no NUT-20 key), paid by the fake backend.
    pub(crate) async fn paid_mint_quote(&self, amount: u64) -> String {
        let quote = self.mint_quote(amount).await;
        eventually("the fake backend to pay the mint quote", || {
            let url = self.url(&format!("/v1/mint/quote/bolt11/{quote}"));
            async move {
                let a = send(http().get(url)).await;
                assert_eq!(a.status, 200, "{}", a.raw);
                (a.body["state"] == "PAID").then_some(())
            }
        })
        .await;
        quote
    }

    pub(crate) async fn mint_quote(&self, amount: u64) -> String {
        let a = post(
            &self.url("/v1/mint/quote/bolt11"),
            json!({"amount": amount, "unit": "sat"}),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.raw);
        a.body["quote"].as_str().unwrap().to_string()
    }

    /// A bolt11 melt quote for `invoice`: (quote id, amount + fee reserve, expiry).
    pub(crate) async fn melt_quote(&self, invoice: &str) -> (String, u64, u64) {
        let a = post(
            &self.url("/v1/melt/quote/bolt11"),
            json!({"request": invoice, "unit": "sat"}),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.raw);
        let needed = a.body["amount"].as_u64().unwrap() + a.body["fee_reserve"].as_u64().unwrap();
        let expiry = a.body["expiry"].as_u64().unwrap();
        (
            a.body["quote"].as_str().unwrap().to_string(),
            needed,
            expiry,
        )
    }

    pub(crate) async fn swap(&self, inputs: Proofs, outputs: Vec<BlindedMessage>) -> Answer {
        post(
            &self.url("/v1/swap"),
            json!(SwapRequest::new(inputs, outputs)),
        )
        .await
    }

    pub(crate) async fn mint(&self, quote: &str, outputs: Vec<BlindedMessage>) -> Answer {
        let request = MintRequest {
            quote: quote.to_string(),
            outputs,
            signature: None,
        };
        post(&self.url("/v1/mint/bolt11"), json!(request)).await
    }

    /// NUT-07 states ("UNSPENT", "PENDING", "SPENT") of `proofs`, in order.
    pub(crate) async fn states(&self, proofs: &Proofs) -> Vec<String> {
        let ys = proofs.iter().map(|p| p.y().unwrap()).collect();
        let a = post(&self.url("/v1/checkstate"), json!(CheckStateRequest { ys })).await;
        assert_eq!(a.status, 200, "{}", a.raw);
        a.body["states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["state"].as_str().unwrap().to_string())
            .collect()
    }

    /// The hostile requests did not take the server down.
    pub(crate) async fn assert_alive(&self) {
        let a = send(http().get(self.url("/health"))).await;
        assert_eq!(a.status, 200, "GET /health after the errors: {}", a.raw);
        assert_eq!(a.body["status"], "ok");
    }
}

/// An answer as the client sees it.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Value,
    pub(crate) raw: String,
}

pub(crate) async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let raw = response.text().await.unwrap();
    let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        body,
        raw,
    }
}

/// POSTs `body` (anything serializable, through `json!`) as JSON.
pub(crate) async fn post(url: &str, body: Value) -> Answer {
    send(http().post(url).json(&body)).await
}

/// Asserts a Cashu error answer with exactly `status` and `code`, and returns its detail.
#[track_caller]
pub(crate) fn assert_error(what: &str, a: &Answer, status: u16, code: u64) -> String {
    assert_eq!(a.status, status, "{what}: status; body {}", a.raw);
    assert!(
        a.content_type.starts_with("application/json"),
        "{what}: content type {:?}; body {}",
        a.content_type,
        a.raw
    );
    let obj = a
        .body
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not a JSON object: {}", a.raw));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "detail"], "{what}: {}", a.raw);
    assert_eq!(
        a.body["code"].as_u64(),
        Some(code),
        "{what}: code; {}",
        a.raw
    );
    let detail = a.body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: detail is not a string: {}", a.raw))
        .to_string();
    assert_clean(what, &detail);
    detail
}

/// A client-facing detail names nothing internal: no database, SQL, source files or paths.
#[track_caller]
pub(crate) fn assert_clean(what: &str, detail: &str) {
    assert!(!detail.is_empty(), "{what}: empty detail");
    let lower = detail.to_lowercase();
    for needle in [
        "database",
        "sql",
        "select ",
        "insert ",
        "constraint",
        ".rs:",
        "/src/",
        "/home/",
        "/tmp/",
        "/work/",
        "/root",
        "/var/",
        "panicked",
        "backtrace",
        "internal",
    ] {
        assert!(
            !lower.contains(needle),
            "{what}: detail {detail:?} contains {needle:?}"
        );
    }
}

pub(crate) fn sum(proofs: &Proofs) -> u64 {
    proofs.iter().map(|p| u64::from(p.amount)).sum()
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A well-formed UUID no mint has issued.
pub(crate) fn random_quote_id() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A well-formed keyset id (V1, `00` + 7 bytes) that no mint has.
pub(crate) fn unknown_keyset_id() -> Id {
    let mut b = [0u8; 7];
    rand::thread_rng().fill_bytes(&mut b);
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("00{h}").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keyset_in_outputs_or_inputs_is_12001() {
    let f = Fixture::start(&limits_config()).await;
    let inputs = f.proofs(64).await;

    // Outputs for a keyset the mint does not have.
    let mut outputs = f.outputs(64).await;
    for o in &mut outputs {
        o.keyset_id = unknown_keyset_id();
    }
    let a = f.swap(inputs.clone(), outputs).await;
    assert_error("swap to an unknown keyset", &a, 400, KEYSET_NOT_FOUND);

    // Minting to an unknown keyset.
    let quote = f.paid_mint_quote(64).await;
    let mut outputs = f.outputs(64).await;
    outputs[0].keyset_id = unknown_keyset_id();
    let a = f.mint(&quote, outputs).await;
    assert_error("mint to an unknown keyset", &a, 400, KEYSET_NOT_FOUND);

    // Inputs that claim a keyset the mint does not have.
    let mut forged = inputs.clone();
    for p in &mut forged {
        p.keyset_id = unknown_keyset_id();
    }
    let a = f.swap(forged, f.outputs(64).await).await;
    assert_error("swap from an unknown keyset", &a, 400, KEYSET_NOT_FOUND);

    // Keys of an unknown keyset.
    let a = send(http().get(f.url(&format!("/v1/keys/{}", unknown_keyset_id())))).await;
    assert_error("GET /v1/keys/{unknown}", &a, 400, KEYSET_NOT_FOUND);

    // None of that spent the real inputs.
    assert!(f.states(&inputs).await.iter().all(|s| s == "UNSPENT"));
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_a_spent_proof_is_11001() {
    let f = Fixture::start(&limits_config()).await;
    let inputs = f.proofs(64).await;
    let a = f.swap(inputs.clone(), f.outputs(64).await).await;
    assert_eq!(a.status, 200, "first swap: {}", a.raw);

    let a = f.swap(inputs.clone(), f.outputs(64).await).await;
    assert_error(
        "second swap of the same inputs",
        &a,
        400,
        TOKEN_ALREADY_SPENT,
    );
    assert!(f.states(&inputs).await.iter().all(|s| s == "SPENT"));
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_a_pending_proof_is_11002() {
    let f = Fixture::start(&limits_config()).await;
    // The fake backend reads the invoice description: this payment stays pending.
    let description = cdk_fake_wallet::FakeInvoiceDescription {
        pay_invoice_state: MeltQuoteState::Pending,
        check_payment_state: MeltQuoteState::Pending,
        pay_err: false,
        check_err: false,
    };
    let invoice =
        cdk_fake_wallet::create_fake_invoice(20_000, serde_json::to_string(&description).unwrap())
            .to_string();
    let (quote, needed, _) = f.melt_quote(&invoice).await;
    let inputs = f.proofs(needed).await;

    let melt = MeltRequest::new(quote.clone(), inputs.clone(), None).prefer_async(true);
    let a = post(&f.url("/v1/melt/bolt11"), json!(melt)).await;
    assert_eq!(a.status, 200, "async melt: {}", a.raw);
    assert_ne!(a.body["state"], "PAID", "{}", a.raw);

    eventually("the melt inputs to be pending", || async {
        f.states(&inputs)
            .await
            .iter()
            .all(|s| s == "PENDING")
            .then_some(())
    })
    .await;

    let a = f.swap(inputs.clone(), f.outputs(needed).await).await;
    assert_error(
        "swap of inputs held by a pending melt",
        &a,
        400,
        TOKEN_PENDING,
    );

    // Melting them on another quote is refused the same way.
    let (other, other_needed, _) = f.melt_quote(&fake_invoice(10)).await;
    assert!(other_needed <= needed);
    let melt = MeltRequest::new(other, inputs.clone(), None);
    let a = post(&f.url("/v1/melt/bolt11"), json!(melt)).await;
    assert_error(
        "melt of inputs held by a pending melt",
        &a,
        400,
        TOKEN_PENDING,
    );

    assert!(f.states(&inputs).await.iter().all(|s| s == "PENDING"));
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_into_signed_outputs_is_11003() {
    let f = Fixture::start(&limits_config()).await;
    let first = f.proofs(64).await;
    let second = f.proofs(64).await;
    let outputs = f.outputs(64).await;

    let a = f.swap(first, outputs.clone()).await;
    assert_eq!(a.status, 200, "first swap: {}", a.raw);

    let a = f.swap(second.clone(), outputs).await;
    assert_error(
        "swap into already signed outputs",
        &a,
        400,
        BLINDED_MESSAGE_ALREADY_SIGNED,
    );
    // The refused swap did not burn its inputs.
    assert!(f.states(&second).await.iter().all(|s| s == "UNSPENT"));

    // The same fresh output twice in one request is another error: duplicate outputs.
    let once = f.outputs(32).await;
    assert_eq!(once.len(), 1);
    let twice = vec![once[0].clone(), once[0].clone()];
    let a = f.swap(second.clone(), twice).await;
    assert_error("one output twice in a swap", &a, 400, DUPLICATE_OUTPUTS);
    assert!(f.states(&second).await.iter().all(|s| s == "UNSPENT"));
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minting_into_signed_outputs_is_11003() {
    let f = Fixture::start(&limits_config()).await;
    let outputs = f.outputs(64).await;
    let a = f.swap(f.proofs(64).await, outputs.clone()).await;
    assert_eq!(a.status, 200, "swap: {}", a.raw);

    // Minting into already signed outputs is refused, and leaves the quote mintable.
    let quote = f.paid_mint_quote(64).await;
    let a = f.mint(&quote, outputs).await;
    assert_error(
        "mint into already signed outputs",
        &a,
        400,
        BLINDED_MESSAGE_ALREADY_SIGNED,
    );
    let a = f.mint(&quote, f.outputs(64).await).await;
    assert_eq!(a.status, 200, "mint with fresh outputs: {}", a.raw);
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_out_of_limits_are_11006() {
    let f = Fixture::start(&limits_config()).await;
    let mint_quote = f.url("/v1/mint/quote/bolt11");
    for amount in [MINT_MAX + 1, MINT_MIN - 1] {
        let a = post(&mint_quote, json!({"amount": amount, "unit": "sat"})).await;
        assert_error(
            &format!("mint quote for {amount} sat"),
            &a,
            400,
            AMOUNT_OUT_OF_LIMIT_RANGE,
        );
    }
    let melt_quote = f.url("/v1/melt/quote/bolt11");
    for amount in [MELT_MAX + 1, MELT_MIN - 1] {
        let a = post(
            &melt_quote,
            json!({"request": fake_invoice(amount), "unit": "sat"}),
        )
        .await;
        assert_error(
            &format!("melt quote for {amount} sat"),
            &a,
            400,
            AMOUNT_OUT_OF_LIMIT_RANGE,
        );
    }
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_outputs_is_11015() {
    let f = Fixture::start(&limits_config()).await;
    let inputs = f.proofs(MAX_OUTPUTS as u64 + 1).await;
    let keyset = f.wallet.active_keyset().await.unwrap().id;
    let fees = f
        .wallet
        .get_keyset_fees_and_amounts_by_id(keyset)
        .await
        .unwrap();
    let outputs = PreMintSecrets::random(
        keyset,
        Amount::from(MAX_OUTPUTS as u64 + 1),
        &SplitTarget::Value(Amount::from(1u64)),
        &fees,
    )
    .unwrap()
    .blinded_messages();
    assert_eq!(outputs.len(), MAX_OUTPUTS + 1);
    let a = f.swap(inputs.clone(), outputs).await;
    assert_error("swap into too many outputs", &a, 400, MAX_OUTPUTS_EXCEEDED);
    assert!(f.states(&inputs).await.iter().all(|s| s == "UNSPENT"));
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbalanced_swap_is_11005() {
    let f = Fixture::start(&limits_config()).await;
    let inputs = f.proofs(64).await;
    let a = f.swap(inputs.clone(), f.outputs(128).await).await;
    assert_error("outputs above inputs", &a, 400, TRANSACTION_UNBALANCED);
    let a = f.swap(inputs.clone(), f.outputs(32).await).await;
    assert_error("outputs below inputs", &a, 400, TRANSACTION_UNBALANCED);
    assert!(f.states(&inputs).await.iter().all(|s| s == "UNSPENT"));
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_quote_is_400_with_cdk_code() {
    let f = Fixture::start(&limits_config()).await;
    let id = random_quote_id();

    let a = f.mint(&id, f.outputs(64).await).await;
    let detail = assert_error("mint on an unknown quote", &a, 400, CDK_UNKNOWN);
    assert_eq!(detail, "Unknown quote");

    for kind in ["mint", "melt"] {
        let a = send(http().get(f.url(&format!("/v1/{kind}/quote/bolt11/{id}")))).await;
        let detail = assert_error(&format!("GET {kind} quote {id}"), &a, 400, CDK_UNKNOWN);
        assert_eq!(detail, "Unknown quote");
    }

    let inputs = f.proofs(64).await;
    let melt = MeltRequest::new(id, inputs.clone(), None);
    let a = post(&f.url("/v1/melt/bolt11"), json!(melt)).await;
    let detail = assert_error("melt on an unknown quote", &a, 400, CDK_UNKNOWN);
    assert_eq!(detail, "Unknown quote");
    assert!(f.states(&inputs).await.iter().all(|s| s == "UNSPENT"));
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minting_an_unpaid_quote_is_20001() {
    // The fake backend pays incoming invoices only after an hour.
    let f = Fixture::start(&format!(
        "{}[lightning.fake]\ndelay_secs = 3600\n",
        limits_config()
    ))
    .await;
    let quote = f.mint_quote(64).await;
    let a = f.mint(&quote, f.outputs(64).await).await;
    assert_error("mint on an unpaid quote", &a, 400, QUOTE_NOT_PAID);
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minting_an_issued_quote_again_is_20002() {
    let f = Fixture::start(&limits_config()).await;
    let quote = f.paid_mint_quote(64).await;
    let a = f.mint(&quote, f.outputs(64).await).await;
    assert_eq!(a.status, 200, "first mint: {}", a.raw);
    let a = f.mint(&quote, f.outputs(64).await).await;
    assert_error(
        "second mint on the same quote",
        &a,
        400,
        TOKENS_ALREADY_ISSUED,
    );
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn melting_on_an_expired_quote_is_20007() {
    let f = Fixture::start(&format!("{}melt_quote_ttl_secs = 1\n", limits_config())).await;
    let (quote, needed, expiry) = f.melt_quote(&fake_invoice(10)).await;
    let inputs = f.proofs(needed).await;
    eventually("the melt quote to expire", || async {
        (unix_now() > expiry).then_some(())
    })
    .await;

    let melt = MeltRequest::new(quote, inputs.clone(), None);
    let a = post(&f.url("/v1/melt/bolt11"), json!(melt)).await;
    assert_error("melt on an expired quote", &a, 400, QUOTE_EXPIRED);
    assert!(f.states(&inputs).await.iter().all(|s| s == "UNSPENT"));
    f.assert_alive().await;
}
