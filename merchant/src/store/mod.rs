//! The merchant's own SQLite database (`<data_dir>/merchant.sqlite`): the replay record of
//! every token it was handed, the tokens accepted offline and held for redemption, and the log
//! of settlements. The ecash itself lives in cdk's wallet database beside it.
//!
//! One connection behind a mutex, used from blocking tasks: every statement is short, and the
//! uniqueness constraints (not the mutex) are what make the replay record atomic, also across
//! processes sharing the file.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

pub mod held;
pub mod l402;
pub mod replay;
pub mod settlements;

pub use held::{HeldStatus, HeldToken, HeldTotal};
pub use replay::{Begin, RedemptionRecord, RedemptionState};
pub use settlements::{Outcome, Settlement, SettlementSource};

/// File name of the database inside the data directory.
pub const STORE_FILE: &str = "merchant.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("merchant database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("merchant database: a previous operation panicked while holding the connection")]
    Poisoned,
    #[error("merchant database task failed: {0}")]
    Task(String),
    #[error("merchant database holds an invalid value in {column}: {value}")]
    Corrupt { column: &'static str, value: String },
}

/// Handle to the merchant database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS redemptions (
    key        TEXT PRIMARY KEY,
    mint_url   TEXT NOT NULL,
    unit       TEXT NOT NULL,
    value      INTEGER NOT NULL,
    state      TEXT NOT NULL,
    outputs    TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS redemptions_state ON redemptions(state);
CREATE TABLE IF NOT EXISTS redemption_proofs (
    y   TEXT PRIMARY KEY,
    key TEXT NOT NULL REFERENCES redemptions(key) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS redemption_proofs_key ON redemption_proofs(key);
CREATE TABLE IF NOT EXISTS settlements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    mint_url    TEXT NOT NULL,
    unit        TEXT NOT NULL,
    amount      INTEGER NOT NULL,
    fee_reserve INTEGER,
    fee         INTEGER,
    invoice     TEXT NOT NULL,
    quote_id    TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT,
    source      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS l402_quotes (
    payment_hash TEXT PRIMARY KEY,
    quote_id     TEXT NOT NULL,
    mint_url     TEXT NOT NULL,
    unit         TEXT NOT NULL,
    amount       INTEGER NOT NULL,
    state        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    claimed_at   INTEGER
);
CREATE INDEX IF NOT EXISTS l402_quotes_state ON l402_quotes(state, expires_at);
";

impl Store {
    /// Opens (creating if needed) `<data_dir>/merchant.sqlite`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_file(&data_dir.join(STORE_FILE))
    }

    pub fn open_file(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(held::SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection in a blocking task.
    pub(crate) async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Poisoned)?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
