//! The replay record: one row per token the paywall tried to redeem, keyed by the hash of the
//! token's sorted proof Y values, plus one row per Y so that a token sharing even one proof with
//! an earlier one is caught too. Inserts are the atomic "first one wins" step: concurrent copies
//! of one token are refused here, before any of them reaches the mint.

use std::fmt;
use std::str::FromStr;

use rusqlite::{params, OptionalExtension};

use super::{now, Store, StoreError};

/// Where a token's redemption stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedemptionState {
    /// A request is redeeming it right now.
    Redeeming,
    /// The swap was sent but its outcome is unknown (the mint could not be reached or answered
    /// ambiguously). Resolved by the wallet's saga recovery before the token is used again.
    InDoubt,
    /// The swap succeeded (the redeeming request's own, or one recovery found went through),
    /// but no request was served for it yet: the request that claims it (`Paid` → `Redeemed`)
    /// is served, so the next one carrying the token is if the redeeming one hung up.
    Paid,
    /// Redeemed and a request was served for it. Final.
    Redeemed,
    /// The mint said the proofs were already spent. Final.
    Spent,
    /// Accepted offline (locked to the merchant's key alone) and served; the token waits in
    /// the held table for the background redeemer ([`crate::offline`]). A held token's record
    /// is never deleted: it was served, so every later copy must stay refused.
    Held,
}

impl RedemptionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redeeming => "redeeming",
            Self::InDoubt => "in_doubt",
            Self::Paid => "paid",
            Self::Redeemed => "redeemed",
            Self::Spent => "spent",
            Self::Held => "held",
        }
    }
}

impl fmt::Display for RedemptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RedemptionState {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "redeeming" => Self::Redeeming,
            "in_doubt" => Self::InDoubt,
            "paid" => Self::Paid,
            "redeemed" => Self::Redeemed,
            "spent" => Self::Spent,
            "held" => Self::Held,
            other => {
                return Err(StoreError::Corrupt {
                    column: "redemptions.state",
                    value: other.to_string(),
                })
            }
        })
    }
}

/// What [`Store::begin_redemption`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// The record was created in state `Redeeming`: this caller redeems the token.
    Started,
    /// The same token (same set of proofs) was recorded before.
    Existing(RedemptionState),
    /// Another recorded token contains some of these proofs.
    Overlap,
}

/// One row of the replay record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedemptionRecord {
    pub key: String,
    pub mint_url: String,
    pub unit: String,
    pub value: u64,
    pub state: RedemptionState,
    /// Y values (hex) of the outputs the swap asked for, when it is in doubt: finding any of
    /// them in the wallet after recovery proves the swap went through.
    pub outputs: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(RedemptionRecord, String)> {
    let state: String = row.get(4)?;
    let outputs: Option<String> = row.get(5)?;
    let value: i64 = row.get(3)?;
    Ok((
        RedemptionRecord {
            key: row.get(0)?,
            mint_url: row.get(1)?,
            unit: row.get(2)?,
            value: u64::try_from(value).unwrap_or(0),
            state: RedemptionState::Redeeming,
            outputs: outputs
                .map(|o| {
                    o.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            created_at: row.get(6)?,
            updated_at: row.get(7)?,
        },
        state,
    ))
}

fn finish(raw: (RedemptionRecord, String)) -> Result<RedemptionRecord, StoreError> {
    let (mut record, state) = raw;
    record.state = state.parse()?;
    Ok(record)
}

const SELECT: &str =
    "SELECT key, mint_url, unit, value, state, outputs, created_at, updated_at FROM redemptions";

/// A replay record about to be inserted.
pub(crate) struct NewRecord {
    pub key: String,
    pub mint_url: String,
    pub unit: String,
    pub value: u64,
    pub ys: Vec<String>,
}

/// The first-one-wins insert of `record` in `state`, inside `tx` (the caller commits on
/// [`Begin::Started`]; dropping the transaction otherwise rolls a partial insert back).
pub(crate) fn insert_record(
    tx: &rusqlite::Transaction<'_>,
    record: &NewRecord,
    state: RedemptionState,
) -> Result<Begin, StoreError> {
    let t = now();
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO redemptions
             (key, mint_url, unit, value, state, outputs, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?6)",
        params![
            record.key,
            record.mint_url,
            record.unit,
            i64::try_from(record.value).unwrap_or(i64::MAX),
            state.as_str(),
            t
        ],
    )?;
    if inserted == 0 {
        let state: String = tx.query_row(
            "SELECT state FROM redemptions WHERE key = ?1",
            params![record.key],
            |r| r.get(0),
        )?;
        return Ok(Begin::Existing(state.parse()?));
    }
    for y in &record.ys {
        let added = tx.execute(
            "INSERT OR IGNORE INTO redemption_proofs (y, key) VALUES (?1, ?2)",
            params![y, record.key],
        )?;
        if added == 0 {
            return Ok(Begin::Overlap);
        }
    }
    Ok(Begin::Started)
}

impl Store {
    /// Atomically records that `key` (made of the proofs `ys`) is being redeemed, unless the same
    /// token or one sharing a proof with it was recorded before.
    pub async fn begin_redemption(
        &self,
        key: String,
        mint_url: String,
        unit: String,
        value: u64,
        ys: Vec<String>,
    ) -> Result<Begin, StoreError> {
        let record = NewRecord {
            key,
            mint_url,
            unit,
            value,
            ys,
        };
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let begin = insert_record(&tx, &record, RedemptionState::Redeeming)?;
            if begin == Begin::Started {
                tx.commit()?;
            }
            Ok(begin)
        })
        .await
    }

    /// The record of `key`, if any.
    pub async fn redemption(&self, key: &str) -> Result<Option<RedemptionRecord>, StoreError> {
        let key = key.to_string();
        self.with(move |conn| {
            let raw = conn
                .query_row(
                    &format!("{SELECT} WHERE key = ?1"),
                    params![key],
                    record_from_row,
                )
                .optional()?;
            raw.map(finish).transpose()
        })
        .await
    }

    /// Every record in `state`.
    pub async fn redemptions_in_state(
        &self,
        state: RedemptionState,
    ) -> Result<Vec<RedemptionRecord>, StoreError> {
        self.with(move |conn| {
            let mut stmt =
                conn.prepare(&format!("{SELECT} WHERE state = ?1 ORDER BY created_at"))?;
            let rows = stmt.query_map(params![state.as_str()], record_from_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(finish(row?)?);
            }
            Ok(out)
        })
        .await
    }

    /// The proof Y values (hex) recorded for `key`.
    pub async fn redemption_ys(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let key = key.to_string();
        self.with(move |conn| {
            let mut stmt = conn.prepare("SELECT y FROM redemption_proofs WHERE key = ?1")?;
            let ys = stmt
                .query_map(params![key], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ys)
        })
        .await
    }

    /// Moves `key` from `from` to `to`; false if it was not in `from` (someone else moved it).
    pub async fn transition_redemption(
        &self,
        key: &str,
        from: RedemptionState,
        to: RedemptionState,
    ) -> Result<bool, StoreError> {
        let key = key.to_string();
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            // A held token was served when it was accepted: found paid, it is simply redeemed
            // (`Paid` would serve its next copy).
            let to = if to == RedemptionState::Paid && super::held::is_held(&tx, &key)? {
                super::held::mark_redeemed_in(&tx, &key, None)?;
                RedemptionState::Redeemed
            } else {
                to
            };
            let n = tx.execute(
                "UPDATE redemptions SET state = ?1, updated_at = ?2 WHERE key = ?3 AND state = ?4",
                params![to.as_str(), now(), key, from.as_str()],
            )?;
            if n == 1 {
                tx.commit()?;
            }
            Ok(n == 1)
        })
        .await
    }

    /// Sets the state of `key` whatever it was. A held token (served when it was accepted
    /// offline) is never set `paid`, which would serve its next copy: it becomes `redeemed`.
    pub async fn set_redemption_state(
        &self,
        key: &str,
        state: RedemptionState,
    ) -> Result<(), StoreError> {
        let key = key.to_string();
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let state = if state == RedemptionState::Paid && super::held::is_held(&tx, &key)? {
                super::held::mark_redeemed_in(&tx, &key, None)?;
                RedemptionState::Redeemed
            } else {
                state
            };
            tx.execute(
                "UPDATE redemptions SET state = ?1, updated_at = ?2 WHERE key = ?3",
                params![state.as_str(), now(), key],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Remembers the outputs an in-doubt swap asked for.
    pub async fn set_redemption_outputs(
        &self,
        key: &str,
        outputs: Vec<String>,
    ) -> Result<(), StoreError> {
        let key = key.to_string();
        self.with(move |conn| {
            conn.execute(
                "UPDATE redemptions SET outputs = ?1, updated_at = ?2 WHERE key = ?3",
                params![outputs.join(","), now(), key],
            )?;
            Ok(())
        })
        .await
    }

    /// Forgets `key` and its proofs, so that the token can be redeemed again (used when the
    /// mint never saw it or refused it for a reason that may pass). A held token (accepted
    /// offline, already served) is not forgotten but goes back to `held`, to be redeemed later.
    pub async fn delete_redemption(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_string();
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if super::held::is_held(&tx, &key)? {
                tx.execute(
                    "UPDATE redemptions SET state = ?1, outputs = NULL, updated_at = ?2
                     WHERE key = ?3",
                    params![RedemptionState::Held.as_str(), now(), key],
                )?;
                tx.commit()?;
                return Ok(());
            }
            tx.execute("DELETE FROM redemption_proofs WHERE key = ?1", params![key])?;
            tx.execute("DELETE FROM redemptions WHERE key = ?1", params![key])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ys(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    async fn begin(store: &Store, key: &str, y: &[&str]) -> Begin {
        store
            .begin_redemption(key.into(), "http://m".into(), "sat".into(), 5, ys(y))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn first_insert_wins_and_duplicates_see_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(begin(&store, "k1", &["a", "b"]).await, Begin::Started);
        assert_eq!(
            begin(&store, "k1", &["a", "b"]).await,
            Begin::Existing(RedemptionState::Redeeming)
        );
        assert_eq!(begin(&store, "k2", &["b", "c"]).await, Begin::Overlap);
        assert!(
            store.redemption("k2").await.unwrap().is_none(),
            "an overlapping token leaves no record behind"
        );
        assert_eq!(begin(&store, "k3", &["c"]).await, Begin::Started);
    }

    #[tokio::test]
    async fn transitions_are_compare_and_set() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        begin(&store, "k", &["y"]).await;
        let (r, i, p) = (
            RedemptionState::Redeeming,
            RedemptionState::InDoubt,
            RedemptionState::Paid,
        );
        assert!(store.transition_redemption("k", r, i).await.unwrap());
        assert!(!store.transition_redemption("k", r, p).await.unwrap());
        store
            .set_redemption_outputs("k", ys(&["o1", "o2"]))
            .await
            .unwrap();
        let rec = store.redemption("k").await.unwrap().unwrap();
        assert_eq!(rec.state, i);
        assert_eq!(rec.outputs, ys(&["o1", "o2"]));
        assert_eq!(store.redemptions_in_state(i).await.unwrap().len(), 1);
        assert_eq!(store.redemption_ys("k").await.unwrap(), ys(&["y"]));
        store.delete_redemption("k").await.unwrap();
        assert!(store.redemption("k").await.unwrap().is_none());
        assert_eq!(begin(&store, "k", &["y"]).await, Begin::Started);
    }

    #[tokio::test]
    async fn concurrent_begins_of_one_key_start_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { begin(&store, "same", &["p1", "p2"]).await })
            })
            .collect();
        let mut started = 0;
        for t in tasks {
            if t.await.unwrap() == Begin::Started {
                started += 1;
            }
        }
        assert_eq!(started, 1);
    }
}
