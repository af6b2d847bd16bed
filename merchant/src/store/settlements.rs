//! The settlement log: every melt of collected ecash to a Lightning invoice, with its amount,
//! fee, invoice and outcome. A row is written as `pending` before the melt starts and updated
//! when it ends, so a crash mid-payment leaves a visible trace; a row left pending is resolved
//! later from the mint's melt quote state (see [`crate::settle`]).

use std::fmt;
use std::str::FromStr;

use rusqlite::params;
use rusqlite::types::Value;
use serde::Serialize;

use super::{now, Store, StoreError};

/// How a settlement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Started; the payment's result is not known yet.
    Pending,
    /// The mint paid the invoice.
    Paid,
    /// The payment failed; the ecash stayed in the wallet.
    Failed,
}

/// What asked for the settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SettlementSource {
    /// `merchant settle --invoice ...` or a library call.
    Manual,
    /// The automatic settler, when the balance passed its threshold.
    Auto,
}

/// One settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settlement {
    pub id: i64,
    /// Unix seconds when it started.
    pub created_at: i64,
    pub updated_at: i64,
    pub mint_url: String,
    pub unit: String,
    /// Invoice amount.
    pub amount: u64,
    /// The mint's fee reserve for the quote.
    pub fee_reserve: Option<u64>,
    /// What the payment actually cost beyond `amount` (Lightning fee and input fees), once known.
    pub fee: Option<u64>,
    pub invoice: String,
    pub quote_id: Option<String>,
    pub outcome: Outcome,
    /// Why it failed, for a human.
    pub detail: Option<String>,
    pub source: SettlementSource,
}

macro_rules! str_enum {
    ($t:ty, $col:literal, $($v:ident => $s:literal),+) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($s => Ok(Self::$v),)+
                    other => Err(StoreError::Corrupt { column: $col, value: other.to_string() }),
                }
            }
        }
    };
}

str_enum!(Outcome, "settlements.outcome", Pending => "pending", Paid => "paid", Failed => "failed");
str_enum!(SettlementSource, "settlements.source", Manual => "manual", Auto => "auto");

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// Records the start of a settlement; returns its id.
    pub async fn start_settlement(
        &self,
        mint_url: String,
        unit: String,
        amount: u64,
        invoice: String,
        source: SettlementSource,
    ) -> Result<i64, StoreError> {
        self.with(move |conn| {
            let t = now();
            conn.execute(
                "INSERT INTO settlements
                     (created_at, updated_at, mint_url, unit, amount, invoice, outcome, source)
                 VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    t,
                    mint_url,
                    unit,
                    to_i64(amount),
                    invoice,
                    Outcome::Pending.as_str(),
                    source.as_str()
                ],
            )?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    /// Records the quote a settlement got.
    pub async fn settlement_quoted(
        &self,
        id: i64,
        quote_id: String,
        fee_reserve: u64,
    ) -> Result<(), StoreError> {
        self.with(move |conn| {
            conn.execute(
                "UPDATE settlements SET quote_id = ?1, fee_reserve = ?2, updated_at = ?3
                 WHERE id = ?4",
                params![quote_id, to_i64(fee_reserve), now(), id],
            )?;
            Ok(())
        })
        .await
    }

    /// Records how a settlement ended.
    pub async fn finish_settlement(
        &self,
        id: i64,
        outcome: Outcome,
        fee: Option<u64>,
        detail: Option<String>,
    ) -> Result<(), StoreError> {
        self.with(move |conn| {
            conn.execute(
                "UPDATE settlements SET outcome = ?1, fee = ?2, detail = ?3, updated_at = ?4
                 WHERE id = ?5",
                params![outcome.as_str(), fee.map(to_i64), detail, now(), id],
            )?;
            Ok(())
        })
        .await
    }

    /// Settlements, newest first.
    pub async fn settlements(&self, limit: usize) -> Result<Vec<Settlement>, StoreError> {
        self.query_settlements(
            "ORDER BY id DESC LIMIT ?1",
            Value::Integer(to_i64(limit as u64)),
        )
        .await
    }

    /// Settlements whose outcome is still `pending`, oldest first.
    pub async fn pending_settlements(&self) -> Result<Vec<Settlement>, StoreError> {
        self.query_settlements(
            "WHERE outcome = ?1 ORDER BY id",
            Value::Text(Outcome::Pending.as_str().to_string()),
        )
        .await
    }

    /// One settlement by id.
    pub async fn settlement(&self, id: i64) -> Result<Option<Settlement>, StoreError> {
        Ok(self
            .query_settlements("WHERE id = ?1", Value::Integer(id))
            .await?
            .into_iter()
            .next())
    }

    async fn query_settlements(
        &self,
        tail: &'static str,
        arg: Value,
    ) -> Result<Vec<Settlement>, StoreError> {
        self.with(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT id, created_at, updated_at, mint_url, unit, amount, fee_reserve, fee,
                        invoice, quote_id, outcome, detail, source
                 FROM settlements {tail}"
            ))?;
            let rows = stmt.query_map(params![arg], |r| {
                Ok((
                    Settlement {
                        id: r.get(0)?,
                        created_at: r.get(1)?,
                        updated_at: r.get(2)?,
                        mint_url: r.get(3)?,
                        unit: r.get(4)?,
                        amount: to_u64(r.get(5)?),
                        fee_reserve: r.get::<_, Option<i64>>(6)?.map(to_u64),
                        fee: r.get::<_, Option<i64>>(7)?.map(to_u64),
                        invoice: r.get(8)?,
                        quote_id: r.get(9)?,
                        outcome: Outcome::Pending,
                        detail: r.get(11)?,
                        source: SettlementSource::Manual,
                    },
                    r.get::<_, String>(10)?,
                    r.get::<_, String>(12)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (mut s, outcome, source) = row?;
                s.outcome = outcome.parse()?;
                s.source = source.parse()?;
                out.push(s);
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_settlement_is_recorded_then_finished() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = store
            .start_settlement(
                "http://m".into(),
                "sat".into(),
                21,
                "lnbc1...".into(),
                SettlementSource::Auto,
            )
            .await
            .unwrap();
        store.settlement_quoted(id, "q1".into(), 2).await.unwrap();
        let listed = store.settlements(10).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].outcome, Outcome::Pending);
        assert_eq!(store.pending_settlements().await.unwrap(), listed);
        store
            .finish_settlement(id, Outcome::Paid, Some(1), None)
            .await
            .unwrap();
        let s = &store.settlements(10).await.unwrap()[0];
        assert_eq!(
            (s.amount, s.fee, s.fee_reserve, s.outcome, s.source),
            (21, Some(1), Some(2), Outcome::Paid, SettlementSource::Auto)
        );
        assert_eq!(s.quote_id.as_deref(), Some("q1"));
        assert!(store.pending_settlements().await.unwrap().is_empty());
    }
}
