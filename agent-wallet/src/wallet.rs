//! [`AgentWallet`]: cdk wallets (one per mint, one SQLite file) plus the policy, the ledger and
//! the outbox.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdk::mint_url::MintUrl;
use cdk::nuts::CurrencyUnit;
use cdk::wallet::{Wallet, WalletBuilder};
use cdk_sqlite::WalletSqliteDatabase;
use serde::Serialize;

use crate::config::Config;
use crate::error::WalletError;
use crate::ledger::LedgerEntry;
use crate::policy::Policy;
use crate::store::Store;

/// cdk's wallet database file inside the data dir.
pub const WALLET_DB_FILE: &str = "wallet.sqlite";
/// The ledger/outbox database file inside the data dir.
pub const AGENT_DB_FILE: &str = "agent.sqlite";

/// How to open a wallet. [`WalletOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct WalletOptions {
    pub data_dir: PathBuf,
    /// The home mint, overriding the config file's; it is added to the known mints.
    pub mint: Option<MintUrl>,
    /// The policy, overriding the config file's.
    pub policy: Option<Policy>,
    /// Longest wait for an HTTP answer (each of the two requests of a payment).
    pub request_timeout: Duration,
    /// Longest time crash recovery may talk to one mint when opening.
    pub recovery_timeout: Duration,
    /// Longest wait for an L402 melt (a Lightning payment) to settle; a melt still pending
    /// then stays in the outbox and the next open settles it.
    pub melt_deadline: Duration,
    /// Sat kept beyond a payment's need after drawing from an allowance (default: config's).
    pub allowance_float: Option<u64>,
}

impl WalletOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            mint: None,
            policy: None,
            request_timeout: Duration::from_secs(60),
            recovery_timeout: Duration::from_secs(20),
            melt_deadline: Duration::from_secs(120),
            allowance_float: None,
        }
    }
}

/// Balance at each mint, in sat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balances {
    pub total: u64,
    pub unit: String,
    pub mints: BTreeMap<String, u64>,
}

/// What importing a token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ReceiveOutcome {
    /// The token was redeemed into the wallet, worth `amount` after the mint's fee.
    Received { amount: u64 },
    /// This wallet had imported the token before; nothing changed.
    AlreadyImported,
}

/// A token made by [`AgentWallet::send`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentToken {
    pub token: String,
    pub amount: u64,
    pub fee: u64,
    pub mint: String,
}

/// The agent's wallet. Open it with [`AgentWallet::open`]; every open first recovers what a
/// crash left behind.
pub struct AgentWallet {
    pub(crate) data_dir: PathBuf,
    pub(crate) policy: Policy,
    pub(crate) home_mint: Option<MintUrl>,
    seed: [u8; 64],
    localstore: Arc<WalletSqliteDatabase>,
    wallets: Mutex<BTreeMap<MintUrl, Wallet>>,
    pub(crate) store: Store,
    pub(crate) http: reqwest::Client,
    pub(crate) recovery_timeout: Duration,
    pub(crate) melt_deadline: Duration,
    pub(crate) allowance_float: u64,
}

impl std::fmt::Debug for AgentWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentWallet")
            .field("data_dir", &self.data_dir)
            .field("home_mint", &self.home_mint)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl AgentWallet {
    /// Opens (or creates) the wallet in `data_dir` with the defaults and its config file.
    pub async fn open(data_dir: impl Into<PathBuf>) -> Result<Self, WalletError> {
        Self::open_with(WalletOptions::new(data_dir)).await
    }

    /// Opens (or creates) the wallet, then runs crash recovery (see [`AgentWallet::recover`]).
    /// Recovery problems (a mint that cannot be reached) are logged, not returned.
    pub async fn open_with(options: WalletOptions) -> Result<Self, WalletError> {
        let dir = options.data_dir;
        create_private_dir(&dir)?;
        let config = Config::load(&dir)?;
        let home_mint = match options.mint {
            Some(m) => Some(m),
            None => config.home_mint()?,
        };
        let policy = options.policy.unwrap_or(config.policy);
        let seed = crate::seed::load_or_create(&dir)?;
        let localstore = Arc::new(WalletSqliteDatabase::new(dir.join(WALLET_DB_FILE)).await?);
        let store = Store::open(&dir.join(AGENT_DB_FILE))?;
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(WalletError::Http)?;
        let wallet = Self {
            data_dir: dir,
            policy,
            home_mint: home_mint.clone(),
            seed,
            localstore,
            wallets: Mutex::new(BTreeMap::new()),
            store,
            http,
            recovery_timeout: options.recovery_timeout,
            melt_deadline: options.melt_deadline,
            allowance_float: options.allowance_float.unwrap_or(config.allowance.float),
        };
        if let Some(mint) = home_mint {
            wallet.add_mint(&mint).await?;
        }
        for mint in wallet.localstore_mints().await? {
            wallet.wallet_for(&mint)?;
        }
        match wallet.recover().await {
            Ok(report) if !report.resolved.is_empty() || report.still_pending > 0 => {
                tracing::info!(
                    resolved = report.resolved.len(),
                    still_pending = report.still_pending,
                    "recovered payments left by an earlier run"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("crash recovery did not finish: {e}"),
        }
        Ok(wallet)
    }

    pub(crate) fn wallet_db(&self) -> &WalletSqliteDatabase {
        &self.localstore
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Replaces the policy for this process (the config file is not changed).
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    pub fn home_mint(&self) -> Option<&MintUrl> {
        self.home_mint.as_ref()
    }

    /// Registers a mint (no network).
    pub async fn add_mint(&self, mint: &MintUrl) -> Result<(), WalletError> {
        self.localstore_add_mint(mint).await?;
        self.wallet_for(mint)?;
        Ok(())
    }

    /// The mints the wallet knows.
    pub fn mints(&self) -> Vec<MintUrl> {
        self.lock_wallets().keys().cloned().collect()
    }

    /// The cdk wallet for one mint (made on first use).
    pub fn wallet_for(&self, mint: &MintUrl) -> Result<Wallet, WalletError> {
        let mut wallets = self.lock_wallets();
        if let Some(w) = wallets.get(mint) {
            return Ok(w.clone());
        }
        let wallet = WalletBuilder::new()
            .mint_url(mint.clone())
            .unit(CurrencyUnit::Sat)
            .localstore(self.localstore.clone())
            .seed(self.seed)
            .without_rate_limiting()
            .build()?;
        wallets.insert(mint.clone(), wallet.clone());
        Ok(wallet)
    }

    /// The balance at every known mint (local: no network).
    pub async fn balances(&self) -> Result<Balances, WalletError> {
        let mut mints = BTreeMap::new();
        let mut total = 0u64;
        for mint in self.mints() {
            let b = u64::from(self.wallet_for(&mint)?.total_balance().await?);
            total = total.saturating_add(b);
            mints.insert(mint.to_string(), b);
        }
        Ok(Balances {
            total,
            unit: CurrencyUnit::Sat.to_string(),
            mints,
        })
    }

    /// The balance at one mint (local).
    pub async fn balance_at(&self, mint: &MintUrl) -> Result<u64, WalletError> {
        if !self.lock_wallets().contains_key(mint) {
            return Ok(0);
        }
        Ok(u64::from(self.wallet_for(mint)?.total_balance().await?))
    }

    /// Every ledger row, oldest first.
    pub fn ledger(&self) -> Result<Vec<LedgerEntry>, WalletError> {
        self.store.ledger()
    }

    /// The newest `limit` ledger rows, newest first; with `host`, only that host's (matched
    /// case-insensitively, without a port).
    pub fn recent_payments(
        &self,
        host: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, WalletError> {
        let host = host
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty());
        self.store.recent(host.as_deref(), limit)
    }

    fn lock_wallets(&self) -> std::sync::MutexGuard<'_, BTreeMap<MintUrl, Wallet>> {
        // The map is only ever inserted into; a panic elsewhere cannot leave it inconsistent.
        self.wallets.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn localstore_mints(&self) -> Result<Vec<MintUrl>, WalletError> {
        use cdk::cdk_database::WalletDatabase;
        Ok(self.localstore.get_mints().await?.into_keys().collect())
    }

    async fn localstore_add_mint(&self, mint: &MintUrl) -> Result<(), WalletError> {
        use cdk::cdk_database::WalletDatabase;
        if !self.localstore.get_mints().await?.contains_key(mint) {
            self.localstore.add_mint(mint.clone(), None).await?;
        }
        Ok(())
    }
}

/// A fresh random id for a ledger row.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn create_private_dir(dir: &Path) -> Result<(), WalletError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| WalletError::io(dir, e))
}
