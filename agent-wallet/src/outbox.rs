//! The outbox: payments in flight, persisted so that a crash loses nothing and counts nothing
//! twice.
//!
//! ```text
//!  (policy check + ledger row `pending`, one transaction)
//!            │
//!            ▼
//!      ┌──────────┐  token made, stored    ┌──────────┐   answer < 400     ┌────────────────┐
//!      │ prepared │ ─────────────────────▶ │ in_flight│ ─────────────────▶ │ paid           │
//!      └──────────┘  (before it is sent)   └──────────┘                    └────────────────┘
//!            │ crash / mint error               │ answer >= 400 → settle: reclaimed or spent
//!            │ → take the token back            │   → refused-by-server
//!            ▼                                  │ no answer / crash → settle at the mint (NUT-07):
//!        failed                                 │   unspent → reclaim → failed
//!                                               │   spent   → unknown (paid, answer lost)
//!                                               └ mint unreachable → stays, retried on next open
//! ```
//!
//! Leaving the outbox and writing the final outcome into the ledger row happen in one SQLite
//! transaction, and only if the outbox row still exists: a payment is resolved exactly once.

use rusqlite::params;
#[cfg(test)]
use rusqlite::OptionalExtension;

use crate::error::WalletError;
use crate::ledger::{LedgerEntry, Outcome};
use crate::policy::{PolicyViolation, Spent};
use crate::store::{insert_ledger, ledger_entry_in, now_unix, spent_in, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    /// Proofs reserved in cdk (operation id known); no token has left the process.
    Prepared,
    /// The token exists and is stored here; it may have reached the server.
    InFlight,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prepared => "prepared",
            Self::InFlight => "in_flight",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "prepared" => Some(Self::Prepared),
            "in_flight" => Some(Self::InFlight),
            _ => None,
        }
    }
}

/// A payment in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: String,
    pub state: OutboxState,
    pub mint: String,
    /// cdk's send saga id (`PreparedSend::operation_id`).
    pub operation_id: String,
    /// The `cashuB` token, once made. A bearer secret: deleted with the row.
    pub token: Option<String>,
    /// What the token is worth (the price plus the receiver's fee).
    pub token_value: u64,
    /// What the swap that made exact change cost.
    pub swap_fee: u64,
    /// Whether the proofs are P2PK-locked to the payee (then they cannot be taken back).
    pub locked: bool,
}

/// The two outboxes a payment in flight can sit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outbox {
    /// Token payments (`outbox`).
    Payments,
    /// L402 invoices paid by melting (`melt_outbox`).
    Melts,
}

/// What happened before the wallet settled a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The server answered the paid request with this status.
    Answered(u16),
    /// The token may have reached the server but no answer came (lost connection, crash).
    NoAnswer,
    /// The token never left the wallet (a crash or an error before sending).
    NeverSent,
}

/// What the mint says about the token's proofs after the wallet tried to take it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// The proofs were unspent and are back in the wallet, worth `returned` after fees.
    Reclaimed { returned: u64 },
    /// The proofs were spent: the payee redeemed them.
    Spent,
    /// The proofs are unspent but locked to the payee's key: they cannot be taken back.
    Unreclaimable,
    /// The mint could not be asked; try again later.
    Undetermined(String),
}

/// The final ledger values of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub outcome: Outcome,
    pub counted: bool,
    /// The fee to record, when it differs from the one reserved.
    pub fee: Option<u64>,
    pub status: Option<u16>,
    pub detail: String,
}

impl Resolution {
    /// The server accepted the paid request.
    pub fn paid(status: u16) -> Self {
        Self {
            outcome: Outcome::Paid,
            counted: true,
            fee: None,
            status: Some(status),
            detail: String::new(),
        }
    }
}

/// Decides a payment's outcome from what happened and what the mint says. `None`: leave it in
/// the outbox and try again later.
pub fn resolve(trigger: Trigger, settlement: &Settlement, row: &OutboxRow) -> Option<Resolution> {
    let status = match trigger {
        Trigger::Answered(s) => Some(s),
        _ => None,
    };
    let (refused, lost) = match trigger {
        Trigger::Answered(_) => (Outcome::RefusedByServer, Outcome::RefusedByServer),
        Trigger::NoAnswer => (Outcome::Failed, Outcome::Unknown),
        Trigger::NeverSent => (Outcome::Failed, Outcome::Failed),
    };
    // A token that never left the wallet can have been spent only by the wallet itself: a
    // take-back swap that a kill interrupted after the mint ran it (cdk then finds the
    // proofs spent and cannot tell by whom). Counting it as paid would count money that is
    // back in the balance.
    let own_reclaim = Settlement::Reclaimed {
        returned: row.token_value,
    };
    let settlement = match (trigger, settlement) {
        (Trigger::NeverSent, Settlement::Spent) => &own_reclaim,
        _ => settlement,
    };
    let resolution = match settlement {
        Settlement::Reclaimed { returned } => Resolution {
            outcome: refused,
            counted: false,
            fee: Some(row.swap_fee + row.token_value.saturating_sub(*returned)),
            status,
            detail: "token taken back".into(),
        },
        Settlement::Spent => Resolution {
            outcome: lost,
            counted: true,
            fee: None,
            status,
            detail: match trigger {
                Trigger::NoAnswer => "token redeemed, answer lost".into(),
                _ => "token redeemed by the payee".into(),
            },
        },
        Settlement::Unreclaimable => Resolution {
            outcome: lost,
            counted: true,
            fee: None,
            status,
            detail: "token locked to the payee: cannot be taken back".into(),
        },
        Settlement::Undetermined(_) => return None,
    };
    Some(resolution)
}

impl Store {
    /// Atomically checks the caps against the ledger and, if they allow, writes the pending
    /// ledger row and the `prepared` outbox row. Concurrent payments (threads or processes)
    /// serialize here, so two payments cannot both fit under a cap that holds only one.
    pub fn reserve(
        &self,
        entry: &LedgerEntry,
        row: &OutboxRow,
        check: impl FnOnce(Spent) -> Result<(), PolicyViolation>,
    ) -> Result<Result<(), PolicyViolation>, WalletError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let spent = spent_in(&tx, &entry.host, entry.time)?;
        if let Err(v) = check(spent) {
            return Ok(Err(v));
        }
        insert_ledger(&tx, entry)?;
        tx.execute(
            "INSERT INTO outbox (id, state, mint, operation_id, token, token_value, swap_fee, locked, updated)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7, ?8)",
            params![
                row.id,
                OutboxState::Prepared.as_str(),
                row.mint,
                row.operation_id,
                row.token_value as i64,
                row.swap_fee as i64,
                row.locked,
                now_unix() as i64
            ],
        )?;
        tx.commit()?;
        Ok(Ok(()))
    }

    /// `prepared` → `in_flight`, storing the token. Must succeed before the token is sent.
    pub fn mark_in_flight(&self, id: &str, token: &str) -> Result<bool, WalletError> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE outbox SET state = ?2, token = ?3, updated = ?4 WHERE id = ?1 AND state = ?5",
            params![
                id,
                OutboxState::InFlight.as_str(),
                token,
                now_unix() as i64,
                OutboxState::Prepared.as_str()
            ],
        )?;
        Ok(n == 1)
    }

    /// Takes a payment out of the outbox and writes its outcome, in one transaction. Returns
    /// the final ledger row, or `None` if it was already resolved (then nothing changes).
    pub fn finish(
        &self,
        id: &str,
        resolution: &Resolution,
    ) -> Result<Option<LedgerEntry>, WalletError> {
        self.finish_from(Outbox::Payments, id, resolution)
    }

    /// [`Store::finish`] for a row of either outbox (token payments or L402 melts).
    pub(crate) fn finish_from(
        &self,
        outbox: Outbox,
        id: &str,
        resolution: &Resolution,
    ) -> Result<Option<LedgerEntry>, WalletError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let delete = match outbox {
            Outbox::Payments => "DELETE FROM outbox WHERE id = ?1",
            Outbox::Melts => "DELETE FROM melt_outbox WHERE id = ?1",
        };
        if tx.execute(delete, [id])? == 0 {
            return Ok(None);
        }
        tx.execute(
            "UPDATE ledger SET outcome = ?2, counted = ?3, fee = COALESCE(?4, fee), status = ?5, detail = ?6
             WHERE id = ?1",
            params![
                id,
                resolution.outcome.as_str(),
                resolution.counted,
                resolution.fee.map(|f| f as i64),
                resolution.status,
                resolution.detail
            ],
        )?;
        let entry = ledger_entry_in(&tx, id)?;
        tx.commit()?;
        Ok(entry)
    }

    /// Every payment in the outbox.
    pub fn outbox(&self) -> Result<Vec<OutboxRow>, WalletError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, state, mint, operation_id, token, token_value, swap_fee, locked FROM outbox ORDER BY updated",
        )?;
        let rows = stmt.query_map([], |r| {
            let state: String = r.get(1)?;
            Ok(OutboxRow {
                id: r.get(0)?,
                state: OutboxState::parse(&state).unwrap_or(OutboxState::InFlight),
                mint: r.get(2)?,
                operation_id: r.get(3)?,
                token: r.get(4)?,
                token_value: r.get::<_, i64>(5)?.max(0) as u64,
                swap_fee: r.get::<_, i64>(6)?.max(0) as u64,
                locked: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    #[cfg(test)]
    pub fn outbox_row(&self, id: &str) -> Result<Option<OutboxRow>, WalletError> {
        Ok(self.outbox()?.into_iter().find(|r| r.id == id))
    }

    #[cfg(test)]
    pub fn outbox_is_empty(&self) -> Result<bool, WalletError> {
        let conn = self.conn();
        let n: Option<i64> = conn
            .query_row("SELECT 1 FROM outbox LIMIT 1", [], |r| r.get(0))
            .optional()?;
        Ok(n.is_none())
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
