//! Test support: an in-process cdk mint on the fake Lightning backend (stoppable and restartable
//! on the same port and database), agent wallets that pay challenges, and a paywalled app.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::Router;
use cdk::amount::SplitTarget;
use cdk::mint::{MintBuilder, MintMeltLimits, UnitConfig};
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, MintQuoteState, PaymentMethod, PublicKey, SpendingConditions};
use cdk::types::{FeeReserve, QuoteTTL};
use cdk::wallet::{SendOptions, Wallet, WalletBuilder};
use cdk::{Amount, Mint};
use merchant::cashu_402::error_body::ErrorBody;
use merchant::cashu_402::Challenge;
use merchant::{Merchant, Offer, Paywall, PaywallOptions, Price};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for something that should happen quickly before it fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Input fee of the test mint's keyset (NUT-02): 100 ppk = 1 sat for 1-10 inputs.
pub const FEE_PPK: u64 = 100;

/// Polls `f` until it returns `Some`, failing after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

struct Running {
    mint: Arc<Mint>,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

/// An in-process mint with a SQLite file, on a fixed port once started.
pub struct TestMint {
    pub url: String,
    pub mint_url: MintUrl,
    port: u16,
    db_path: PathBuf,
    seed: [u8; 64],
    running: Option<Running>,
    /// Seconds the fake Lightning backend waits before it pays an invoice the mint issued
    /// (takes effect at the next [`TestMint::restart`]).
    pub payment_delay: u64,
}

impl TestMint {
    /// Starts a mint with its database in `dir`, on a free port.
    pub async fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let seed = bip39::Mnemonic::generate(12)
            .unwrap()
            .to_seed_normalized("");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let mut mint = Self {
            mint_url: MintUrl::from_str(&url).unwrap(),
            url,
            port,
            db_path: dir.join("mint.sqlite"),
            seed,
            running: None,
            payment_delay: 0,
        };
        mint.serve(listener).await;
        mint
    }

    async fn serve(&mut self, listener: tokio::net::TcpListener) {
        let db = Arc::new(
            cdk_sqlite::MintSqliteDatabase::new(self.db_path.clone())
                .await
                .unwrap(),
        );
        let mut builder = MintBuilder::new(db.clone())
            .with_name("merchant test mint".into())
            .with_urls(vec![self.url.clone()]);
        builder
            .configure_unit(
                CurrencyUnit::Sat,
                UnitConfig {
                    amounts: (0..24).map(|i| 1u64 << i).collect(),
                    input_fee_ppk: FEE_PPK,
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
            self.payment_delay,
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
        let mint = builder.build_with_seed(db, &self.seed).await.unwrap();
        mint.set_quote_ttl(QuoteTTL::new(3600, 600)).await.unwrap();
        mint.start().await.unwrap();
        let mint = Arc::new(mint);
        let app = cdk_axum::create_mint_router(mint.clone(), vec!["bolt11".into()])
            .await
            .unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        self.running = Some(Running {
            mint,
            shutdown: tx,
            server,
        });
    }

    /// Stops serving: connections to the port are refused until [`TestMint::restart`].
    pub async fn stop(&mut self) {
        let Some(r) = self.running.take() else {
            return;
        };
        let _ = r.shutdown.send(());
        let abort = r.server.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), r.server)
            .await
            .is_err()
        {
            abort.abort();
        }
        r.mint.stop().await.unwrap();
    }

    /// Starts again on the same port, database and seed.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.serve(listener).await;
    }
}

/// A plain cdk wallet with an in-memory store and no rate limit, holding `amount` sat minted
/// through a mint quote (the fake backend pays it at once).
pub async fn funded_wallet(mint: &TestMint, amount: u64) -> Wallet {
    funded_wallet_at(&mint.mint_url, amount).await
}

/// [`funded_wallet`] talking to the mint at `mint_url` (e.g. through a proxy).
pub async fn funded_wallet_at(mint_url: &MintUrl, amount: u64) -> Wallet {
    let seed = bip39::Mnemonic::generate(12)
        .unwrap()
        .to_seed_normalized("");
    let db = cdk_sqlite::wallet::memory::empty().await.unwrap();
    let wallet = WalletBuilder::new()
        .mint_url(mint_url.clone())
        .unit(CurrencyUnit::Sat)
        .localstore(Arc::new(db))
        .seed(seed)
        .without_rate_limiting()
        .build()
        .unwrap();
    let quote = wallet
        .mint_quote(
            PaymentMethod::BOLT11,
            Some(Amount::from(amount)),
            None,
            None,
        )
        .await
        .unwrap();
    eventually("the mint quote to be paid", || async {
        let q = wallet.check_mint_quote_status(&quote.id).await.unwrap();
        (q.state == MintQuoteState::Paid).then_some(())
    })
    .await;
    wallet
        .mint(&quote.id, SplitTarget::default(), None)
        .await
        .unwrap();
    wallet
}

/// A token worth `amount` plus the receiver's input fee (`include_fee`), optionally locked.
pub async fn token(
    wallet: &Wallet,
    amount: u64,
    lock: Option<PublicKey>,
    include_fee: bool,
) -> String {
    let options = SendOptions {
        conditions: lock.map(|pk| SpendingConditions::new_p2pk(pk, None)),
        include_fee,
        ..Default::default()
    };
    wallet
        .prepare_send(Amount::from(amount), options)
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string()
}

/// Pays an `X-Cashu` challenge the way a NUT-24 agent does: the amount plus the receiver's
/// fee, locked when the challenge asks for it.
pub async fn pay_challenge(wallet: &Wallet, header: &str) -> String {
    let c = Challenge::parse(header).unwrap();
    assert!(
        c.mints.contains(&wallet.mint_url),
        "challenge names our mint"
    );
    token(wallet, c.amount.into(), c.lock_pubkey(), true).await
}

/// The paywalled test app.
pub struct App {
    pub url: String,
    pub merchant: Merchant,
    /// How often each paid handler ran.
    pub hits: Arc<AtomicUsize>,
}

impl App {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn balance(&self, mint: &TestMint) -> u64 {
        self.merchant
            .balance(&mint.mint_url, &CurrencyUnit::Sat)
            .await
            .unwrap()
            .into()
    }
}

/// Routes:
/// - `GET /weather` 5 sat; `POST /echo` 5 sat (echoes the body); `GET /bulk` 100 sat;
/// - `GET /locked` 5 sat, P2PK-locked to the merchant, DLEQ required;
/// - `GET /usd` 5 usd (no such keyset: every sat token is the wrong unit);
/// - `GET /elsewhere` 5 sat, accepting only another mint;
/// - `GET /free`.
pub async fn start_app(mint: &TestMint, data_dir: &Path) -> App {
    start_app_with(
        PaywallOptions::new(vec![mint.mint_url.clone()]).retry_after(Duration::from_secs(2)),
        data_dir,
    )
    .await
}

/// [`start_app`] with other paywall options (another mint URL, timeouts).
pub async fn start_app_with(options: PaywallOptions, data_dir: &Path) -> App {
    let merchant = Merchant::open(data_dir).await.unwrap();
    merchant.recover().await.unwrap();
    let paywall = Paywall::new(merchant.clone(), options);
    let hits = Arc::new(AtomicUsize::new(0));
    let locked = paywall.offer_layer(Offer {
        lock: Some(merchant.pubkey()),
        require_dleq: true,
        ..paywall.offer(Price::sat(5))
    });
    let elsewhere = paywall.offer_layer(Offer {
        mints: vec![MintUrl::from_str("http://127.0.0.1:9").unwrap()],
        ..paywall.offer(Price::sat(5))
    });
    let h = |hits: &Arc<AtomicUsize>| {
        let hits = hits.clone();
        move || {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                "sunny"
            }
        }
    };
    let echo_hits = hits.clone();
    let app = Router::new()
        .route(
            "/weather",
            get(h(&hits)).layer(paywall.price(Price::sat(5))),
        )
        .route(
            "/echo",
            post(move |body: String| {
                let hits = echo_hits.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    body
                }
            })
            .layer(paywall.price(Price::sat(5))),
        )
        .route("/bulk", get(h(&hits)).layer(paywall.price(Price::sat(100))))
        .route("/locked", get(h(&hits)).layer(locked))
        .route(
            "/usd",
            get(h(&hits)).layer(paywall.price(Price::new(5, CurrencyUnit::Usd))),
        )
        .route("/elsewhere", get(h(&hits)).layer(elsewhere))
        .route("/free", get(|| async { "free" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    App {
        url,
        merchant,
        hits,
    }
}

/// GET `url` with an optional `X-Cashu` credential.
pub async fn get_with(url: &str, credential: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(url);
    if let Some(c) = credential {
        req = req.header("X-Cashu", c);
    }
    req.send().await.unwrap()
}

/// The `X-Cashu` challenge of a 402 for `url`.
pub async fn challenge(url: &str) -> String {
    let r = get_with(url, None).await;
    assert_eq!(r.status(), 402);
    r.headers()["x-cashu"].to_str().unwrap().to_string()
}

/// Asserts a refusal's status, `ErrorBody` code and fresh challenge; returns the body.
pub async fn assert_refused(r: reqwest::Response, status: u16, code: u32) -> ErrorBody {
    assert_eq!(r.status().as_u16(), status, "status");
    if status < 500 {
        let c = r.headers().get("x-cashu").expect("a fresh challenge");
        Challenge::parse(c.to_str().unwrap()).expect("the challenge decodes");
    }
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: ErrorBody = r.json().await.unwrap();
    assert_eq!(body.code, code, "code ({})", body.detail);
    body
}
