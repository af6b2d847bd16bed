//! Held tokens: ecash accepted offline (locked to the merchant's key alone, DLEQ-checked) and
//! served before it was redeemed. Each row keeps the encoded token until the background
//! redeemer ([`crate::offline`]) has swapped it at the mint. A row is written in the same
//! transaction as the token's replay record, so a crash can never leave a served token without
//! either.

use std::fmt;
use std::str::FromStr;

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::replay::{insert_record, NewRecord};
use super::{now, Begin, RedemptionState, Store, StoreError};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS held_tokens (
    key             TEXT PRIMARY KEY,
    mint_url        TEXT NOT NULL,
    unit            TEXT NOT NULL,
    value           INTEGER NOT NULL,
    token           TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    received        INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS held_tokens_due ON held_tokens(status, next_attempt_at);
";

/// Where a held token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeldStatus {
    /// Waiting to be redeemed.
    Held,
    /// Swapped into the merchant's wallet.
    Redeemed,
    /// The mint will not redeem it (spent by someone else, or refused for good); the replay
    /// record stays, so the token is still refused.
    Failed,
}

impl HeldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Redeemed => "redeemed",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for HeldStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HeldStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "held" => Self::Held,
            "redeemed" => Self::Redeemed,
            "failed" => Self::Failed,
            other => {
                return Err(StoreError::Corrupt {
                    column: "held_tokens.status",
                    value: other.to_string(),
                })
            }
        })
    }
}

/// One held token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldToken {
    pub key: String,
    pub mint_url: String,
    pub unit: String,
    pub value: u64,
    /// The encoded token (`cashuB...`), as the payer sent it.
    pub token: String,
    pub status: HeldStatus,
    /// Redemption attempts so far.
    pub attempts: u32,
    /// Unix seconds of the next attempt.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// The total held (not yet redeemed) value of one mint and unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldTotal {
    pub mint_url: String,
    pub unit: String,
    pub value: u64,
    pub count: u64,
}

const SELECT: &str =
    "SELECT key, mint_url, unit, value, token, status, attempts, next_attempt_at, \
     last_error, created_at FROM held_tokens";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(HeldToken, String)> {
    let value: i64 = row.get(3)?;
    let attempts: i64 = row.get(6)?;
    Ok((
        HeldToken {
            key: row.get(0)?,
            mint_url: row.get(1)?,
            unit: row.get(2)?,
            value: u64::try_from(value).unwrap_or(0),
            token: row.get(4)?,
            status: HeldStatus::Held,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            next_attempt_at: row.get(7)?,
            last_error: row.get(8)?,
            created_at: row.get(9)?,
        },
        row.get(5)?,
    ))
}

/// Whether `key` is a token accepted offline and not redeemed (waiting, or lost): its replay
/// record must outlive every failed attempt.
pub(super) fn is_held(tx: &rusqlite::Transaction<'_>, key: &str) -> Result<bool, StoreError> {
    Ok(tx
        .query_row(
            "SELECT 1 FROM held_tokens WHERE key = ?1 AND status IN (?2, ?3)",
            params![key, HeldStatus::Held.as_str(), HeldStatus::Failed.as_str()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Marks `key` redeemed inside `tx`.
pub(super) fn mark_redeemed_in(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    received: Option<u64>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE held_tokens SET status = ?1, received = ?2, last_error = NULL, updated_at = ?3
         WHERE key = ?4",
        params![
            HeldStatus::Redeemed.as_str(),
            received.map(|r| i64::try_from(r).unwrap_or(i64::MAX)),
            now(),
            key
        ],
    )?;
    Ok(())
}

impl Store {
    /// Atomically records the replay record of `record` as [`RedemptionState::Held`] and keeps
    /// `token` for the redeemer, unless the token (or one sharing a proof) was seen before.
    pub(crate) async fn hold_token(
        &self,
        record: NewRecord,
        token: String,
    ) -> Result<Begin, StoreError> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let begin = insert_record(&tx, &record, RedemptionState::Held)?;
            if begin != Begin::Started {
                return Ok(begin);
            }
            let t = now();
            tx.execute(
                "INSERT INTO held_tokens (key, mint_url, unit, value, token, status, attempts,
                     next_attempt_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?7, ?7)",
                params![
                    record.key,
                    record.mint_url,
                    record.unit,
                    i64::try_from(record.value).unwrap_or(i64::MAX),
                    token,
                    HeldStatus::Held.as_str(),
                    t
                ],
            )?;
            tx.commit()?;
            Ok(Begin::Started)
        })
        .await
    }

    /// Takes back a token [`Store::hold_token`] just held, with its replay record, when a check
    /// that ran beside the commit failed (nothing was served). `false` when the redeemer had
    /// already taken the token up (its replay record left `held`): it then stays, and is
    /// redeemed or given up like any other held token.
    pub(crate) async fn unhold_token(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_string();
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let removed = tx.execute(
                "DELETE FROM redemptions WHERE key = ?1 AND state = ?2",
                params![key, RedemptionState::Held.as_str()],
            )?;
            if removed == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM redemption_proofs WHERE key = ?1", params![key])?;
            tx.execute("DELETE FROM held_tokens WHERE key = ?1", params![key])?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Held tokens due for an attempt at `at` (Unix seconds), oldest first.
    pub async fn due_held_tokens(
        &self,
        at: i64,
        limit: usize,
    ) -> Result<Vec<HeldToken>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "{SELECT} WHERE status = ?1 AND next_attempt_at <= ?2
                 ORDER BY next_attempt_at, created_at LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![HeldStatus::Held.as_str(), at, limit], from_row)?;
            let mut out = Vec::new();
            for row in rows {
                let (mut token, status) = row?;
                token.status = status.parse()?;
                out.push(token);
            }
            Ok(out)
        })
        .await
    }

    /// Every held token in `status`, oldest first.
    pub async fn held_tokens(&self, status: HeldStatus) -> Result<Vec<HeldToken>, StoreError> {
        self.with(move |conn| {
            let mut stmt =
                conn.prepare(&format!("{SELECT} WHERE status = ?1 ORDER BY created_at"))?;
            let rows = stmt.query_map(params![status.as_str()], from_row)?;
            let mut out = Vec::new();
            for row in rows {
                let (mut token, status) = row?;
                token.status = status.parse()?;
                out.push(token);
            }
            Ok(out)
        })
        .await
    }

    /// When the next held token is due (Unix seconds), if any is waiting.
    pub async fn next_held_due(&self) -> Result<Option<i64>, StoreError> {
        self.with(move |conn| {
            Ok(conn.query_row(
                "SELECT MIN(next_attempt_at) FROM held_tokens WHERE status = ?1",
                params![HeldStatus::Held.as_str()],
                |r| r.get::<_, Option<i64>>(0),
            )?)
        })
        .await
    }

    /// The value still held (not yet redeemed), by mint and unit.
    pub async fn held_totals(&self) -> Result<Vec<HeldTotal>, StoreError> {
        self.with(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT mint_url, unit, SUM(value), COUNT(*) FROM held_tokens WHERE status = ?1
                 GROUP BY mint_url, unit ORDER BY mint_url, unit",
            )?;
            let rows = stmt.query_map(params![HeldStatus::Held.as_str()], |r| {
                let value: i64 = r.get(2)?;
                let count: i64 = r.get(3)?;
                Ok(HeldTotal {
                    mint_url: r.get(0)?,
                    unit: r.get(1)?,
                    value: u64::try_from(value).unwrap_or(0),
                    count: u64::try_from(count).unwrap_or(0),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Notes a failed attempt on `key` and when to try again.
    pub async fn held_retry_at(
        &self,
        key: &str,
        next_attempt_at: i64,
        error: String,
    ) -> Result<(), StoreError> {
        let key = key.to_string();
        self.with(move |conn| {
            conn.execute(
                "UPDATE held_tokens SET attempts = attempts + 1, next_attempt_at = ?1,
                     last_error = ?2, updated_at = ?3
                 WHERE key = ?4 AND status = ?5",
                params![
                    next_attempt_at,
                    error,
                    now(),
                    key,
                    HeldStatus::Held.as_str()
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// `key` was swapped into the wallet (`received` after the mint's fee, when known).
    pub async fn held_redeemed(&self, key: &str, received: Option<u64>) -> Result<(), StoreError> {
        let key = key.to_string();
        self.with(move |conn| {
            let tx = conn.transaction()?;
            mark_redeemed_in(&tx, &key, received)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The mint will not redeem `key`; the row stays as a record of the loss.
    pub async fn held_failed(&self, key: &str, error: String) -> Result<(), StoreError> {
        let key = key.to_string();
        self.with(move |conn| {
            conn.execute(
                "UPDATE held_tokens SET status = ?1, last_error = ?2, updated_at = ?3
                 WHERE key = ?4",
                params![HeldStatus::Failed.as_str(), error, now(), key],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, ys: &[&str]) -> NewRecord {
        NewRecord {
            key: key.into(),
            mint_url: "http://m".into(),
            unit: "sat".into(),
            value: 5,
            ys: ys.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn a_token_taken_back_leaves_no_trace_unless_the_redeemer_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let hold = |key: &'static str| store.hold_token(record(key, &["a", "b"]), "t".into());
        assert_eq!(hold("k").await.unwrap(), Begin::Started);
        assert!(store.unhold_token("k").await.unwrap());
        assert!(store.redemption("k").await.unwrap().is_none());
        assert!(store
            .held_tokens(HeldStatus::Held)
            .await
            .unwrap()
            .is_empty());
        // Its proofs are free again.
        assert_eq!(hold("k").await.unwrap(), Begin::Started);

        // Once the redeemer has started the swap, the token stays.
        assert!(store
            .transition_redemption("k", RedemptionState::Held, RedemptionState::Redeeming)
            .await
            .unwrap());
        assert!(!store.unhold_token("k").await.unwrap());
        assert_eq!(store.held_tokens(HeldStatus::Held).await.unwrap().len(), 1);
        assert_eq!(
            store.redemption("k").await.unwrap().unwrap().state,
            RedemptionState::Redeeming
        );
        assert!(!store.unhold_token("nothing").await.unwrap());
    }

    #[tokio::test]
    async fn holding_shares_the_replay_record_with_online_redemption() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let held = store
            .hold_token(record("k", &["a", "b"]), "cashuBtoken".into())
            .await
            .unwrap();
        assert_eq!(held, Begin::Started);
        // The same token online, or offline again, or one sharing a proof: refused.
        let online = store
            .begin_redemption(
                "k".into(),
                "http://m".into(),
                "sat".into(),
                5,
                vec!["a".into()],
            )
            .await
            .unwrap();
        assert_eq!(online, Begin::Existing(RedemptionState::Held));
        let again = store
            .hold_token(record("k", &["a", "b"]), "cashuBtoken".into())
            .await
            .unwrap();
        assert_eq!(again, Begin::Existing(RedemptionState::Held));
        let overlap = store
            .hold_token(record("k2", &["b", "c"]), "t2".into())
            .await
            .unwrap();
        assert_eq!(overlap, Begin::Overlap);
        assert!(store.redemption("k2").await.unwrap().is_none());
        let overlap = store
            .begin_redemption(
                "k3".into(),
                "http://m".into(),
                "sat".into(),
                5,
                vec!["a".into()],
            )
            .await
            .unwrap();
        assert_eq!(overlap, Begin::Overlap);

        let due = store.due_held_tokens(now(), 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].token, "cashuBtoken");
        let totals = store.held_totals().await.unwrap();
        assert_eq!((totals[0].value, totals[0].count), (5, 1));
    }

    #[tokio::test]
    async fn a_held_record_is_never_deleted_and_paid_means_redeemed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .hold_token(record("k", &["a"]), "t".into())
            .await
            .unwrap();
        let (h, r, i) = (
            RedemptionState::Held,
            RedemptionState::Redeeming,
            RedemptionState::InDoubt,
        );
        assert!(store.transition_redemption("k", h, r).await.unwrap());
        // The swap never left the wallet: online redemption would forget the token.
        store.delete_redemption("k").await.unwrap();
        assert_eq!(store.redemption("k").await.unwrap().unwrap().state, h);
        assert_eq!(
            store.redemption_ys("k").await.unwrap(),
            vec!["a".to_string()]
        );
        // In doubt, then found paid: redeemed (never `paid`, which would serve a copy).
        assert!(store.transition_redemption("k", h, i).await.unwrap());
        assert!(store
            .transition_redemption("k", i, RedemptionState::Paid)
            .await
            .unwrap());
        assert_eq!(
            store.redemption("k").await.unwrap().unwrap().state,
            RedemptionState::Redeemed
        );
        assert!(store.held_totals().await.unwrap().is_empty());
        assert_eq!(
            store.held_tokens(HeldStatus::Redeemed).await.unwrap().len(),
            1
        );
        // Once redeemed, the usual rules apply again.
        store.delete_redemption("k").await.unwrap();
        assert!(store.redemption("k").await.unwrap().is_none());
    }

    /// Since online redemptions leave a successful swap `paid` for their request to claim, the
    /// redeemer's swap of a held token writes `paid` too: it must land as `redeemed`, or the
    /// next copy of the token would be served (the token was served when it was accepted).
    #[tokio::test]
    async fn a_held_token_whose_swap_succeeds_is_redeemed_not_paid() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .hold_token(record("k", &["a"]), "t".into())
            .await
            .unwrap();
        assert!(store
            .transition_redemption("k", RedemptionState::Held, RedemptionState::Redeeming)
            .await
            .unwrap());
        store
            .set_redemption_state("k", RedemptionState::Paid)
            .await
            .unwrap();
        assert_eq!(
            store.redemption("k").await.unwrap().unwrap().state,
            RedemptionState::Redeemed
        );
        assert_eq!(
            store.held_tokens(HeldStatus::Redeemed).await.unwrap().len(),
            1
        );
        // An online token is left `paid` for its request.
        store
            .begin_redemption(
                "o".into(),
                "http://m".into(),
                "sat".into(),
                5,
                vec!["b".into()],
            )
            .await
            .unwrap();
        store
            .set_redemption_state("o", RedemptionState::Paid)
            .await
            .unwrap();
        assert_eq!(
            store.redemption("o").await.unwrap().unwrap().state,
            RedemptionState::Paid
        );
    }

    #[tokio::test]
    async fn retries_move_the_due_time_and_failures_leave_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .hold_token(record("k", &["a"]), "t".into())
            .await
            .unwrap();
        let later = now() + 100;
        store
            .held_retry_at("k", later, "mint unreachable".into())
            .await
            .unwrap();
        assert!(store.due_held_tokens(now(), 10).await.unwrap().is_empty());
        assert_eq!(store.next_held_due().await.unwrap(), Some(later));
        let due = store.due_held_tokens(later, 10).await.unwrap();
        assert_eq!(due[0].attempts, 1);
        assert_eq!(due[0].last_error.as_deref(), Some("mint unreachable"));
        store.held_failed("k", "spent".into()).await.unwrap();
        assert_eq!(store.next_held_due().await.unwrap(), None);
        assert_eq!(
            store.redemption("k").await.unwrap().unwrap().state,
            RedemptionState::Held,
            "a failed held token stays refused"
        );
    }
}
