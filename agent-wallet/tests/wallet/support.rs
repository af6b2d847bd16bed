//! Test support: an in-process cdk mint on the fake Lightning backend, a tiny NUT-24 merchant,
//! and funding helpers.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_wallet::cashu_402::error_body::{codes, ErrorBody};
use agent_wallet::cashu_402::{Challenge, X_CASHU};
use agent_wallet::{AgentWallet, ReceiveOutcome, WalletOptions};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use cdk::amount::SplitTarget;
use cdk::mint::{MintBuilder, MintMeltLimits, UnitConfig};
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, MintQuoteState, PaymentMethod, PublicKey, SecretKey};
use cdk::types::FeeReserve;
use cdk::wallet::{ReceiveOptions, SendOptions, Wallet, WalletBuilder};
use cdk::Amount;

/// How long a test waits for something that should happen quickly before it fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// An in-process mint on 127.0.0.1 with the fake Lightning backend (it pays every invoice).
pub struct TestMint {
    pub url: String,
    pub mint_url: MintUrl,
}

pub async fn start_mint() -> TestMint {
    start_mint_with_fee(0).await
}

/// A mint whose keyset charges `input_fee_ppk` per input (NUT-02).
pub async fn start_mint_with_fee(input_fee_ppk: u64) -> TestMint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let db = Arc::new(cdk_sqlite::mint::memory::empty().await.unwrap());
    let mut builder = MintBuilder::new(db.clone())
        .with_name("agent-wallet test mint".into())
        .with_urls(vec![url.clone()]);
    builder
        .configure_unit(
            CurrencyUnit::Sat,
            UnitConfig {
                amounts: (0..20).map(|i| 1u64 << i).collect(),
                input_fee_ppk,
            },
        )
        .unwrap();
    let ln = cdk_fake_wallet::FakeWallet::new(
        FeeReserve {
            min_fee_reserve: Amount::from(1),
            percent_fee_reserve: 0.01,
        },
        HashMap::default(),
        HashSet::default(),
        0,
        CurrencyUnit::Sat,
    );
    builder
        .add_payment_processor(
            CurrencyUnit::Sat,
            PaymentMethod::BOLT11,
            MintMeltLimits::new(1, 1_000_000),
            Arc::new(ln),
        )
        .await
        .unwrap();
    let seed = bip39::Mnemonic::generate(12)
        .unwrap()
        .to_seed_normalized("");
    let mint = builder.build_with_seed(db, &seed).await.unwrap();
    mint.start().await.unwrap();
    let app = cdk_axum::create_mint_router(Arc::new(mint), vec!["bolt11".into()])
        .await
        .unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    TestMint {
        mint_url: url.parse().unwrap(),
        url,
    }
}

/// A plain cdk wallet (not the agent's) with an in-memory store and no rate limit.
pub async fn cdk_wallet(mint: &TestMint) -> Wallet {
    let seed = bip39::Mnemonic::generate(12)
        .unwrap()
        .to_seed_normalized("");
    let db = cdk_sqlite::wallet::memory::empty().await.unwrap();
    WalletBuilder::new()
        .mint_url(mint.mint_url.clone())
        .unit(CurrencyUnit::Sat)
        .localstore(Arc::new(db))
        .seed(seed)
        .without_rate_limiting()
        .build()
        .unwrap()
}

/// Mints `amount` sat with a separate wallet and returns it as a `cashuB` token.
pub async fn funding_token(mint: &TestMint, amount: u64) -> String {
    let funder = cdk_wallet(mint).await;
    let quote = funder
        .mint_quote(
            PaymentMethod::BOLT11,
            Some(Amount::from(amount)),
            None,
            None,
        )
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let q = funder.check_mint_quote_status(&quote.id).await.unwrap();
        if q.state == MintQuoteState::Paid {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "quote never paid");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    funder
        .mint(&quote.id, SplitTarget::default(), None)
        .await
        .unwrap();
    funder
        .prepare_send(Amount::from(amount), SendOptions::default())
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string()
}

/// Opens an agent wallet in `dir` and funds it with `amount` sat.
pub async fn funded_agent(mint: &TestMint, dir: &Path, amount: u64) -> AgentWallet {
    let agent = AgentWallet::open_with(WalletOptions::new(dir))
        .await
        .unwrap();
    let token = funding_token(mint, amount).await;
    assert_eq!(
        agent.receive(&token).await.unwrap(),
        ReceiveOutcome::Received { amount }
    );
    agent
}

/// How the test merchant treats a paid request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redeem the token, then answer 200.
    Serve,
    /// Answer 503 code 50300 without touching the token.
    Unavailable,
    /// Never answer, without redeeming.
    HangBeforeRedeem,
    /// Redeem the token, then never answer.
    HangAfterRedeem,
}

/// A merchant: `402` with a NUT-24 challenge, then redemption with its own cdk wallet.
#[derive(Clone)]
pub struct Merchant {
    pub url: String,
    pub wallet: Wallet,
    pub key: SecretKey,
    state: Arc<MerchantState>,
}

struct MerchantState {
    challenge: Challenge,
    wallet: Wallet,
    key: SecretKey,
    mode: Mutex<Mode>,
    /// Every X-Cashu token received, in order.
    tokens: Mutex<Vec<String>>,
    redeemed: Mutex<u64>,
}

impl Merchant {
    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    pub fn tokens(&self) -> Vec<String> {
        self.state.tokens.lock().unwrap().clone()
    }

    pub fn redeemed(&self) -> u64 {
        *self.state.redeemed.lock().unwrap()
    }

    pub fn pubkey(&self) -> PublicKey {
        self.key.public_key()
    }

    pub fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("{}{path}", self.url)).unwrap()
    }
}

/// Starts a merchant that charges `price` sat at `mint` for every path, optionally asking for
/// proofs locked to its key.
pub async fn start_merchant(mint: &TestMint, price: u64, locked: bool) -> Merchant {
    let wallet = cdk_wallet(mint).await;
    let key = SecretKey::generate();
    let mut challenge = Challenge::new(
        Amount::from(price),
        CurrencyUnit::Sat,
        mint.mint_url.clone(),
    );
    if locked {
        challenge = challenge.locked_to(key.public_key());
    }
    let state = Arc::new(MerchantState {
        challenge,
        wallet: wallet.clone(),
        key: key.clone(),
        mode: Mutex::new(Mode::Serve),
        tokens: Mutex::new(Vec::new()),
        redeemed: Mutex::new(0),
    });
    let app = Router::new()
        .route("/{*path}", any(paywall))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Merchant {
        url,
        wallet,
        key,
        state,
    }
}

fn error(status: StatusCode, code: u32, detail: &str, challenge: Option<&str>) -> Response {
    let mut resp = (status, axum::Json(ErrorBody::new(code, detail))).into_response();
    if let Some(c) = challenge {
        resp.headers_mut().insert(X_CASHU, c.parse().unwrap());
    }
    resp
}

async fn paywall(State(s): State<Arc<MerchantState>>, headers: HeaderMap) -> Response {
    let challenge = s.challenge.encode().unwrap();
    let Some(token) = headers.get(X_CASHU).and_then(|v| v.to_str().ok()) else {
        return error(
            StatusCode::PAYMENT_REQUIRED,
            codes::PAYMENT_REQUIRED,
            "payment required",
            Some(&challenge),
        );
    };
    s.tokens.lock().unwrap().push(token.to_string());
    let mode = *s.mode.lock().unwrap();
    match mode {
        Mode::Unavailable => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::MINT_UNAVAILABLE,
                "mint unavailable; the token was not consumed",
                Some(&challenge),
            )
        }
        Mode::HangBeforeRedeem => std::future::pending::<()>().await,
        Mode::Serve | Mode::HangAfterRedeem => {}
    }
    let opts = ReceiveOptions {
        p2pk_signing_keys: vec![s.key.clone()],
        ..ReceiveOptions::default()
    };
    match s.wallet.receive(token, opts).await {
        Ok(amount) if u64::from(amount) >= u64::from(s.challenge.amount) => {
            *s.redeemed.lock().unwrap() += u64::from(amount);
        }
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                codes::AMOUNT_TOO_LOW,
                "too little",
                Some(&challenge),
            )
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                codes::TOKEN_REFUSED,
                &e.to_string(),
                Some(&challenge),
            )
        }
    }
    if mode == Mode::HangAfterRedeem {
        std::future::pending::<()>().await;
    }
    (StatusCode::OK, "the paid content").into_response()
}

/// Polls `check` until it returns `Some`, failing the test after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `agent-wallet` binary run as a process on one data dir.
pub struct CliRunner {
    pub dir: std::path::PathBuf,
}

impl CliRunner {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The command with the data dir set and no stray environment.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_agent-wallet"));
        cmd.env("AGENT_WALLET_DATA_DIR", &self.dir)
            .env_remove("AGENT_WALLET_TOKEN")
            .env_remove("AGENT_WALLET_MINT")
            .env_remove("AGENT_WALLET_LOG")
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    pub async fn run_with(&self, mut cmd: tokio::process::Command) -> CliOutput {
        let out = tokio::time::timeout(DEADLINE, cmd.output())
            .await
            .expect("the CLI did not finish in time")
            .unwrap();
        CliOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn run(&self, args: &[&str]) -> CliOutput {
        self.run_with(self.command(args)).await
    }

    /// Runs with `--json`, expects exit 0, and parses stdout.
    pub async fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all).await;
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"))
    }

    pub async fn balance(&self) -> u64 {
        self.json(&["balance"]).await["total"].as_u64().unwrap()
    }

    pub async fn ledger(&self) -> Vec<serde_json::Value> {
        self.json(&["ledger"]).await.as_array().unwrap().clone()
    }
}

#[derive(Debug)]
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}
