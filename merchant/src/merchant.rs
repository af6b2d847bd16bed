//! The merchant: its data directory, seed, P2PK key, cdk wallets (one per mint and unit, all in
//! one SQLite file) and its own database of redemptions and settlements.
//!
//! Layout of the data directory (created mode 0700):
//!
//! | file | what |
//! |---|---|
//! | `seed.mnemonic` | BIP-39 seed, mode 0600; the ecash and the P2PK key derive from it |
//! | `wallet.sqlite` | cdk's wallet database: proofs, keysets, sagas, transactions |
//! | `merchant.sqlite` | the replay record and the settlement log |

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cdk::cdk_database::WalletDatabase;
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, PublicKey, SecretKey, State};
use cdk::wallet::{Wallet, WalletBuilder};
use cdk::Amount;
use serde::Serialize;
use tokio::sync::{Mutex, Notify, RwLock};

use crate::seed::{self, Seed, SeedError};
use crate::store::{Settlement, SettlementSource, Store, StoreError};
use crate::sync_melt::SyncMeltClient;

/// File name of cdk's wallet database inside the data directory.
pub const WALLET_FILE: &str = "wallet.sqlite";

pub(crate) type WalletDb = Arc<dyn WalletDatabase<cdk::cdk_database::Error> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum MerchantError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("wallet database: {0}")]
    WalletDb(String),
    #[error("wallet: {0}")]
    Wallet(#[from] cdk::Error),
}

impl From<cdk::cdk_database::Error> for MerchantError {
    fn from(e: cdk::cdk_database::Error) -> Self {
        Self::WalletDb(e.to_string())
    }
}

/// Ecash held for one mint and unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    pub mint_url: String,
    pub unit: String,
    /// Unspent proofs: what can be settled.
    pub spendable: u64,
    /// Proofs in an operation that has not finished (a redemption in doubt, a melt in flight).
    pub pending: u64,
    /// Tokens accepted offline and served, not redeemed at the mint yet: owed by the mint,
    /// neither spendable nor settled until the background redeemer swaps them.
    pub held: u64,
}

/// The payee: cheap to clone, share it between the paywall, the gateway and the settler.
#[derive(Clone)]
pub struct Merchant {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    seed: Seed,
    p2pk: SecretKey,
    localstore: WalletDb,
    wallets: Mutex<HashMap<(MintUrl, CurrencyUnit), Wallet>>,
    store: Store,
    /// Redemptions and settlements hold it shared; saga recovery holds it exclusively, because
    /// cdk's recovery would otherwise roll back operations that are still running.
    recovery: RwLock<()>,
    /// Woken after every successful redemption (the automatic settler waits on it).
    redeemed: Notify,
    /// Settlements being paid by this process: resolving pending settlements leaves them alone.
    settling: std::sync::Mutex<HashSet<i64>>,
    /// Held while a settlement row is created and registered in `settling`, and while the
    /// resolver lists pending rows, so that it never sees a row of ours before it is registered.
    settling_gate: Mutex<()>,
    /// One resolution of pending settlements at a time.
    resolving: Mutex<()>,
    /// Wakes the background redeemer of held (offline-accepted) tokens.
    held_wake: Arc<Notify>,
    /// Whether this process runs the redeemer already.
    redeemer: std::sync::atomic::AtomicBool,
}

/// A handle that does not keep the merchant alive (the background redeemer holds one).
#[derive(Clone)]
pub(crate) struct WeakMerchant(std::sync::Weak<Inner>);

impl WeakMerchant {
    pub(crate) fn upgrade(&self) -> Option<Merchant> {
        self.0.upgrade().map(|inner| Merchant { inner })
    }
}

/// A settlement this process is paying; dropping it unregisters it.
pub(crate) struct InFlight {
    merchant: Merchant,
    pub(crate) id: i64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.merchant.settling_set().remove(&self.id);
    }
}

impl Merchant {
    /// Opens the merchant in `data_dir`, creating the directory, the seed and the databases on
    /// first start. Does not touch the network; call [`Merchant::recover`] once at start-up.
    pub async fn open(data_dir: impl AsRef<Path>) -> Result<Self, MerchantError> {
        let data_dir = data_dir.as_ref().to_path_buf();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data_dir)
            .map_err(|source| MerchantError::DataDir {
                path: data_dir.clone(),
                source,
            })?;
        let (seed, generated) = seed::load_or_generate(&data_dir)?;
        if generated {
            tracing::warn!(path = %data_dir.join(seed::SEED_FILE).display(),
                "generated a new merchant seed: back this file up, the collected ecash derives from it");
        }
        let p2pk = seed.p2pk_key()?;
        let db = cdk_sqlite::WalletSqliteDatabase::new(data_dir.join(WALLET_FILE))
            .await
            .map_err(|e| MerchantError::WalletDb(e.to_string()))?;
        let localstore: WalletDb = Arc::new(db);
        let store = Store::open(&data_dir)?;
        Ok(Self {
            inner: Arc::new(Inner {
                data_dir,
                seed,
                p2pk,
                localstore,
                wallets: Mutex::new(HashMap::new()),
                store,
                recovery: RwLock::new(()),
                redeemed: Notify::new(),
                settling: std::sync::Mutex::new(HashSet::new()),
                settling_gate: Mutex::new(()),
                resolving: Mutex::new(()),
                held_wake: Arc::new(Notify::new()),
                redeemer: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The key agents lock their tokens to when a paywall asks for a lock (NUT-11 P2PK).
    pub fn pubkey(&self) -> PublicKey {
        self.inner.p2pk.public_key()
    }

    pub(crate) fn signing_key(&self) -> SecretKey {
        self.inner.p2pk.clone()
    }

    pub(crate) fn seed(&self) -> &Seed {
        &self.inner.seed
    }

    pub(crate) fn localstore(&self) -> &WalletDb {
        &self.inner.localstore
    }

    /// The replay record and settlement log.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn recovery_lock(&self) -> &RwLock<()> {
        &self.inner.recovery
    }

    fn settling_set(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.inner
            .settling
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Logs the start of a settlement (outcome `pending`) and registers it as being paid by
    /// this process until the returned guard is dropped.
    pub(crate) async fn start_settlement(
        &self,
        mint_url: String,
        unit: String,
        amount: u64,
        invoice: String,
        source: SettlementSource,
    ) -> Result<InFlight, StoreError> {
        let _gate = self.inner.settling_gate.lock().await;
        let id = self
            .store()
            .start_settlement(mint_url, unit, amount, invoice, source)
            .await?;
        self.settling_set().insert(id);
        Ok(InFlight {
            merchant: self.clone(),
            id,
        })
    }

    /// Pending settlements that no task of this process is paying.
    pub(crate) async fn abandoned_pending_settlements(
        &self,
    ) -> Result<Vec<Settlement>, StoreError> {
        let _gate = self.inner.settling_gate.lock().await;
        let pending = self.store().pending_settlements().await?;
        let busy = self.settling_set().clone();
        Ok(pending
            .into_iter()
            .filter(|s| !busy.contains(&s.id))
            .collect())
    }

    pub(crate) fn resolving_lock(&self) -> &Mutex<()> {
        &self.inner.resolving
    }

    pub(crate) fn notify_redeemed(&self) {
        self.inner.redeemed.notify_one();
    }

    /// Starts this process's background redeemer of held tokens (payments accepted offline,
    /// see [`crate::offline`]) if it is not running yet; it takes up the tokens a previous run
    /// left at once. A [`crate::Paywall`] with offline acceptance starts it. Needs a tokio
    /// runtime; only one process should serve a data directory.
    pub fn start_redeemer(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.redeemer.swap(true, Ordering::SeqCst) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let weak = WeakMerchant(Arc::downgrade(&self.inner));
                handle.spawn(crate::redeemer::run(weak, self.inner.held_wake.clone()));
            }
            Err(_) => {
                self.inner.redeemer.store(false, Ordering::SeqCst);
                tracing::warn!("no tokio runtime: held tokens are not redeemed in the background");
            }
        }
    }

    /// Asks the redeemer to look at the held tokens now.
    pub(crate) fn wake_redeemer(&self) {
        self.start_redeemer();
        self.inner.held_wake.notify_one();
    }

    /// Resolves after the next successful redemption (or at once if one happened since the last
    /// call).
    pub async fn redeemed(&self) {
        self.inner.redeemed.notified().await;
    }

    /// The cdk wallet for `mint` and `unit` (created on first use; the client-side rate limiter
    /// is off, a paywall talks to its mint as often as it is paid).
    pub async fn wallet(
        &self,
        mint: &MintUrl,
        unit: &CurrencyUnit,
    ) -> Result<Wallet, MerchantError> {
        let mut wallets = self.inner.wallets.lock().await;
        let key = (mint.clone(), unit.clone());
        if let Some(w) = wallets.get(&key) {
            return Ok(w.clone());
        }
        let wallet = WalletBuilder::new()
            .mint_url(mint.clone())
            .unit(unit.clone())
            .localstore(self.inner.localstore.clone())
            .seed(*self.inner.seed.as_bytes())
            .without_rate_limiting()
            // Melts (settlements) answered synchronously: see `sync_melt`.
            .shared_client(Arc::new(SyncMeltClient::new(mint.clone())))
            .build()?;
        wallets.insert(key, wallet.clone());
        Ok(wallet)
    }

    /// Balances by mint and unit, from the local database (no network).
    pub async fn balances(&self) -> Result<Vec<Balance>, MerchantError> {
        let proofs = self
            .inner
            .localstore
            .get_proofs(None, None, None, None)
            .await?;
        let mut by: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
        for h in self.store().held_totals().await? {
            by.entry((h.mint_url, h.unit)).or_default().2 = h.value;
        }
        for p in proofs {
            let entry = by
                .entry((p.mint_url.to_string(), p.unit.to_string()))
                .or_default();
            let amount = u64::from(p.proof.amount);
            match p.state {
                State::Unspent => entry.0 = entry.0.saturating_add(amount),
                State::Pending | State::Reserved | State::PendingSpent => {
                    entry.1 = entry.1.saturating_add(amount)
                }
                State::Spent => {}
            }
        }
        Ok(by
            .into_iter()
            .map(|((mint_url, unit), (spendable, pending, held))| Balance {
                mint_url,
                unit,
                spendable,
                pending,
                held,
            })
            .collect())
    }

    /// Spendable balance for one mint and unit.
    pub async fn balance(
        &self,
        mint: &MintUrl,
        unit: &CurrencyUnit,
    ) -> Result<Amount, MerchantError> {
        let proofs = self
            .inner
            .localstore
            .get_proofs(
                Some(mint.clone()),
                Some(unit.clone()),
                Some(vec![State::Unspent]),
                None,
            )
            .await?;
        Ok(Amount::from(
            proofs
                .iter()
                .map(|p| u64::from(p.proof.amount))
                .fold(0u64, u64::saturating_add),
        ))
    }

    /// Start-up recovery: finishes or rolls back the wallet operations a crash interrupted
    /// (cdk's sagas) and settles the fate of every redemption left in doubt. Only one process
    /// should serve a data directory: recovery rolls back operations it believes abandoned.
    ///
    /// Then every settlement left `pending` is resolved by asking the mint for its melt quote:
    /// paid (fee recorded, change restored to the wallet), failed (the mint did not pay; the
    /// ecash is back in the wallet) or still pending.
    pub async fn recover(&self) -> Result<crate::indoubt::RecoverySummary, MerchantError> {
        let mut summary = crate::indoubt::recover_all(self).await?;
        let settlements = crate::settle::resolve_pending_settlements(self, None).await?;
        summary.settlements_paid = settlements.paid;
        summary.settlements_failed = settlements.failed;
        summary.settlements_pending = settlements.pending;
        Ok(summary)
    }

    /// The settlement log, newest first, after resolving the pending settlements (those another
    /// process may still be paying, updated in the last minute, are left as they are).
    pub async fn settlements(&self, limit: usize) -> Result<Vec<Settlement>, MerchantError> {
        crate::settle::resolve_pending_settlements(self, Some(crate::settle::IN_FLIGHT_GRACE))
            .await?;
        Ok(self.store().settlements(limit).await?)
    }
}

impl std::fmt::Debug for Merchant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merchant")
            .field("data_dir", &self.inner.data_dir)
            .field("pubkey", &self.pubkey())
            .finish_non_exhaustive()
    }
}
