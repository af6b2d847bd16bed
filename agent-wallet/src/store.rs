//! The wallet's own SQLite file (`agent.sqlite`): the spend ledger, the outbox of payments in
//! flight, and the record of imported tokens. cdk keeps the ecash in its own file.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::WalletError;
use crate::ledger::{LedgerEntry, Outcome};
use crate::policy::Spent;

/// Schema version written to `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ledger (
    id      TEXT PRIMARY KEY,
    time    INTEGER NOT NULL,
    host    TEXT NOT NULL,
    path    TEXT NOT NULL,
    method  TEXT NOT NULL,
    amount  INTEGER NOT NULL,
    fee     INTEGER NOT NULL,
    unit    TEXT NOT NULL,
    scheme  TEXT NOT NULL,
    mint    TEXT NOT NULL,
    outcome TEXT NOT NULL,
    counted INTEGER NOT NULL,
    status  INTEGER,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS ledger_host_time ON ledger (host, time);
CREATE TABLE IF NOT EXISTS outbox (
    id           TEXT PRIMARY KEY REFERENCES ledger (id),
    state        TEXT NOT NULL,
    mint         TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    token        TEXT,
    token_value  INTEGER NOT NULL,
    swap_fee     INTEGER NOT NULL,
    locked       INTEGER NOT NULL,
    updated      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS melt_outbox (
    id           TEXT PRIMARY KEY REFERENCES ledger (id),
    mint         TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    quote_id     TEXT NOT NULL,
    macaroon     TEXT NOT NULL,
    origin       TEXT NOT NULL,
    scope        TEXT NOT NULL,
    updated      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS l402_credentials (
    origin   TEXT NOT NULL,
    scope    TEXT NOT NULL,
    macaroon TEXT NOT NULL,
    preimage TEXT NOT NULL,
    time     INTEGER NOT NULL,
    PRIMARY KEY (origin, scope)
);
CREATE TABLE IF NOT EXISTS imports (
    y     TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    time  INTEGER NOT NULL
);
";

/// Seconds in the rolling window of the per-host cap.
pub const DAY_SECS: u64 = 24 * 60 * 60;

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Sums what the ledger counts against the caps: amounts that left, plus fees.
const COST_SUM: &str = "COALESCE(SUM(CASE WHEN counted = 1 THEN amount ELSE 0 END + fee), 0)";

pub(crate) struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, WalletError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    #[cfg(test)]
    pub fn open_in_memory() -> Result<Self, WalletError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, WalletError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(WalletError::Config {
                detail: format!(
                    "agent.sqlite has schema {version}, newer than this binary's {SCHEMA_VERSION}"
                ),
            });
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (every change is
        // one transaction), so a poisoned lock is safe to keep using.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What was spent at `host` in the 24 hours before `now`, and in all.
    pub fn spent(&self, host: &str, now: u64) -> Result<Spent, WalletError> {
        let conn = self.conn();
        spent_in(&conn, host, now)
    }

    /// Every ledger row, oldest first.
    pub fn ledger(&self) -> Result<Vec<LedgerEntry>, WalletError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {LEDGER_COLUMNS} FROM ledger ORDER BY time, rowid"
        ))?;
        let rows = stmt.query_map([], ledger_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The newest `limit` ledger rows, newest first, of one host or of all.
    pub fn recent(
        &self,
        host: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, WalletError> {
        let conn = self.conn();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = conn.prepare(&format!(
            "SELECT {LEDGER_COLUMNS} FROM ledger WHERE ?1 IS NULL OR host = ?1
             ORDER BY time DESC, rowid DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![host, limit], ledger_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn ledger_entry(&self, id: &str) -> Result<Option<LedgerEntry>, WalletError> {
        let conn = self.conn();
        ledger_entry_in(&conn, id)
    }

    /// Records a plain send (a token handed out) as a paid ledger row, if the total cap allows.
    pub fn record_send(
        &self,
        entry: &LedgerEntry,
        check: impl FnOnce(Spent) -> Result<(), crate::policy::PolicyViolation>,
    ) -> Result<Result<(), crate::policy::PolicyViolation>, WalletError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let spent = spent_in(&tx, &entry.host, entry.time)?;
        if let Err(v) = check(spent) {
            return Ok(Err(v));
        }
        insert_ledger(&tx, entry)?;
        tx.commit()?;
        Ok(Ok(()))
    }

    /// Records a row as it is (a draw: it counts against no cap).
    pub fn record(&self, entry: &LedgerEntry) -> Result<(), WalletError> {
        let conn = self.conn();
        insert_ledger(&conn, entry)
    }

    /// Sets the outcome of a ledger row that is not in the outbox (a plain send).
    pub fn set_outcome(
        &self,
        id: &str,
        outcome: Outcome,
        counted: bool,
    ) -> Result<(), WalletError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE ledger SET outcome = ?2, counted = ?3 WHERE id = ?1",
            params![id, outcome.as_str(), counted],
        )?;
        Ok(())
    }

    /// The import state of a token, by the Y values of its proofs: `Some("imported")` or
    /// `Some("importing")` if any of them was seen before.
    pub fn import_state(&self, ys: &[String]) -> Result<Option<String>, WalletError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT state FROM imports WHERE y = ?1")?;
        let mut found: Option<String> = None;
        for y in ys {
            if let Some(state) = stmt.query_row([y], |r| r.get::<_, String>(0)).optional()? {
                if state == "imported" {
                    return Ok(Some(state));
                }
                found = Some(state);
            }
        }
        Ok(found)
    }

    pub fn set_import_state(&self, ys: &[String], state: &str) -> Result<(), WalletError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let now = now_unix();
        for y in ys {
            tx.execute(
                "INSERT INTO imports (y, state, time) VALUES (?1, ?2, ?3)
                 ON CONFLICT (y) DO UPDATE SET state = excluded.state, time = excluded.time",
                params![y, state, now as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

pub(crate) fn spent_in(conn: &Connection, host: &str, now: u64) -> Result<Spent, WalletError> {
    let since = now.saturating_sub(DAY_SECS) as i64;
    let host_last_day: i64 = conn.query_row(
        &format!("SELECT {COST_SUM} FROM ledger WHERE host = ?1 AND time > ?2"),
        params![host, since],
        |r| r.get(0),
    )?;
    let total: i64 = conn.query_row(&format!("SELECT {COST_SUM} FROM ledger"), [], |r| r.get(0))?;
    Ok(Spent {
        host_last_day: host_last_day.max(0) as u64,
        total: total.max(0) as u64,
    })
}

pub(crate) const LEDGER_COLUMNS: &str =
    "id, time, host, path, method, amount, fee, unit, scheme, mint, outcome, counted, status, detail";

pub(crate) fn ledger_row(r: &Row<'_>) -> rusqlite::Result<LedgerEntry> {
    let outcome: String = r.get(10)?;
    let outcome = outcome.parse::<Outcome>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(10, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(LedgerEntry {
        id: r.get(0)?,
        time: r.get::<_, i64>(1)?.max(0) as u64,
        host: r.get(2)?,
        path: r.get(3)?,
        method: r.get(4)?,
        amount: r.get::<_, i64>(5)?.max(0) as u64,
        fee: r.get::<_, i64>(6)?.max(0) as u64,
        unit: r.get(7)?,
        scheme: r.get(8)?,
        mint: r.get(9)?,
        outcome,
        counted: r.get(11)?,
        status: r.get(12)?,
        detail: r.get(13)?,
    })
}

pub(crate) fn ledger_entry_in(
    conn: &Connection,
    id: &str,
) -> Result<Option<LedgerEntry>, WalletError> {
    Ok(conn
        .query_row(
            &format!("SELECT {LEDGER_COLUMNS} FROM ledger WHERE id = ?1"),
            [id],
            ledger_row,
        )
        .optional()?)
}

pub(crate) fn insert_ledger(conn: &Connection, e: &LedgerEntry) -> Result<(), WalletError> {
    conn.execute(
        &format!("INSERT INTO ledger ({LEDGER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"),
        params![
            e.id,
            e.time as i64,
            e.host,
            e.path,
            e.method,
            e.amount as i64,
            e.fee as i64,
            e.unit,
            e.scheme,
            e.mint,
            e.outcome.as_str(),
            e.counted,
            e.status,
            e.detail
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, time: u64, host: &str) -> LedgerEntry {
        LedgerEntry {
            id: id.into(),
            time,
            host: host.into(),
            path: "/".into(),
            method: "GET".into(),
            amount: 1,
            fee: 0,
            unit: "sat".into(),
            scheme: "cashu".into(),
            mint: "http://mint.test".into(),
            outcome: Outcome::Paid,
            counted: true,
            status: Some(200),
            detail: String::new(),
        }
    }

    #[test]
    fn recent_is_newest_first_limited_and_filtered_by_host() {
        let store = Store::open_in_memory().unwrap();
        for (id, time, host) in [
            ("a", 10, "x.test"),
            ("b", 20, "y.test"),
            ("c", 30, "x.test"),
        ] {
            insert_ledger(&store.conn(), &row(id, time, host)).unwrap();
        }
        let ids = |rows: Vec<LedgerEntry>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(store.recent(None, 10).unwrap()), ["c", "b", "a"]);
        assert_eq!(ids(store.recent(None, 2).unwrap()), ["c", "b"]);
        assert_eq!(ids(store.recent(Some("x.test"), 10).unwrap()), ["c", "a"]);
        assert!(store.recent(Some("z.test"), 10).unwrap().is_empty());
    }
}
