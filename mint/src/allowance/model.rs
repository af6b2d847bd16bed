//! What the registry stores: one [`Account`] per allowance (JSON in the KV store), compared and
//! swapped whole on every change so that concurrent writers can never lose an update.

use cashu_402::allowance::{AllowancePolicy, HistoryEntry, DAY_SECS};
use serde::{Deserialize, Serialize};

/// One allowance. `version` grows by one with every write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub version: u64,
    pub created: u64,
    pub memo: Option<String>,
    /// Sequence number of the next history entry.
    pub next_event: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepaid: Option<Prepaid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metered: Option<Metered>,
}

/// A prepaid allowance: one invoice, then one token of exactly its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepaid {
    pub amount: u64,
    pub quote_id: String,
    pub invoice: String,
    pub state: PrepaidState,
    /// The keyset the token's outputs are made for, fixed by the first claim so that a retry
    /// after a crash makes the very same outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyset: Option<String>,
    /// The Y values (hex) of the token's proofs, to tell how much is still unspent.
    #[serde(default)]
    pub ys: Vec<(String, u64)>,
    pub delivered_at: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrepaidState {
    AwaitingPayment,
    /// One caller is minting the token (since the time given).
    Issuing {
        since: u64,
    },
    Delivered,
}

/// A metered allowance: an account the agent draws from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metered {
    pub policy: AllowancePolicy,
    /// The agent's key (hex, compressed): every draw quote must be locked to it (NUT-20).
    pub agent_pubkey: String,
    pub balance: u64,
    pub revoked_at: Option<u64>,
    /// Draws of the last 24 hours: (time, amount), oldest first.
    #[serde(default)]
    pub window: Vec<(u64, u64)>,
    #[serde(default)]
    pub fundings: Vec<Funding>,
    /// Draws debited whose mint quote is not known to exist yet.
    #[serde(default)]
    pub pending_draws: Vec<PendingDraw>,
    /// Withdrawals whose Lightning payment has no final outcome yet.
    #[serde(default)]
    pub withdrawals: Vec<Withdrawal>,
    #[serde(default)]
    pub totals: Totals,
}

/// Everything that ever went through a metered allowance, in sat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub funded: u64,
    pub drawn: u64,
    pub withdrawn: u64,
    /// Lightning fees of withdrawals.
    pub fees: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Funding {
    /// The bolt11 mint quote the invoice belongs to (locked to the mint's own key, so only the
    /// mint can ever mint it: it is credited to the allowance instead).
    pub quote_id: String,
    pub invoice: String,
    pub amount: u64,
    pub created: u64,
    pub expiry: u64,
    pub credited: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDraw {
    /// The draw record's key, also the quote's request lookup id.
    pub key: String,
    pub amount: u64,
    pub time: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub id: String,
    pub invoice: String,
    /// Payment hash (hex): how the backend is asked about the payment.
    pub payment_hash: String,
    pub amount: u64,
    /// Debited on top of `amount` until the fee is known.
    pub fee_reserve: u64,
    pub started: u64,
}

/// A draw, stored apart from its account so the payment processor can find it by the quote's
/// request lookup id (its key: `<allowance id>-<nonce>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawRecord {
    pub allowance: String,
    pub amount: u64,
    pub pubkey: String,
    pub time: u64,
    /// False once the draw was given back (its quote was never made): it pays nothing then.
    pub live: bool,
}

impl Metered {
    /// Forgets draws older than 24 hours before `now`.
    pub fn prune_window(&mut self, now: u64) {
        let since = now.saturating_sub(DAY_SECS);
        self.window.retain(|(t, _)| *t > since);
    }

    /// Drawn in the 24 hours before `now`.
    pub fn drawn_24h(&self, now: u64) -> u64 {
        let since = now.saturating_sub(DAY_SECS);
        self.window
            .iter()
            .filter(|(t, _)| *t > since)
            .map(|(_, a)| *a)
            .fold(0u64, u64::saturating_add)
    }

    /// Reserved for withdrawals in flight: debited from the balance, not yet paid out.
    pub fn reserved(&self) -> u64 {
        self.withdrawals
            .iter()
            .map(|w| w.amount.saturating_add(w.fee_reserve))
            .fold(0u64, u64::saturating_add)
    }

    pub fn state(&self, now: u64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.policy.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else if self.totals.funded == 0 {
            "awaiting_payment"
        } else {
            "active"
        }
    }
}

/// A history entry in the making; the registry numbers and stores it with the account change.
pub fn event(
    time: u64,
    kind: &str,
    amount: u64,
    fee: u64,
    detail: impl Into<String>,
) -> HistoryEntry {
    HistoryEntry {
        time,
        kind: kind.into(),
        amount,
        fee,
        detail: detail.into(),
    }
}
