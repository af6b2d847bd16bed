//! The mint's rules for a draw, as pure functions over a metered account (the registry applies
//! them inside one compare-and-swap, so the check and the debit are one atomic step).

use cashu_402::error_body::codes;

use super::model::{Metered, PendingDraw};

/// Why a draw is refused. Each has a Cashu error code (`shared/src/error_body.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no such allowance")]
    Unknown,
    #[error("draw not authorised by the allowance's agent key: {0}")]
    BadSignature(String),
    #[error("the allowance is revoked")]
    Revoked,
    #[error("the allowance expired at {at} (unix time)")]
    Expired { at: u64 },
    #[error("{amount} sat is above the allowance's per-draw cap of {max} sat")]
    PerDraw { amount: u64, max: u64 },
    #[error("{drawn} sat drawn in the last 24 h; {amount} more would exceed the per-day cap of {max} sat")]
    PerDay { amount: u64, drawn: u64, max: u64 },
    #[error("the allowance holds {balance} sat, less than the {amount} sat asked")]
    Balance { amount: u64, balance: u64 },
    #[error("too many draws at once on this allowance; retry")]
    Busy,
}

impl Refusal {
    pub fn code(&self) -> u32 {
        match self {
            Self::Unknown => codes::ALLOWANCE_UNKNOWN,
            Self::BadSignature(_) => codes::ALLOWANCE_BAD_SIGNATURE,
            Self::Revoked => codes::ALLOWANCE_REVOKED,
            Self::Expired { .. } => codes::ALLOWANCE_EXPIRED,
            Self::PerDraw { .. } => codes::ALLOWANCE_PER_DRAW,
            Self::PerDay { .. } => codes::ALLOWANCE_PER_DAY,
            Self::Balance { .. } => codes::ALLOWANCE_BALANCE,
            Self::Busy => codes::ALLOWANCE_BUSY,
        }
    }
}

/// Checks a draw of `amount` at `now` against the account: active, not expired, not revoked,
/// within the per-draw cap, within the rolling 24 h cap, and covered by the balance.
pub fn check_draw(m: &Metered, amount: u64, now: u64) -> Result<(), Refusal> {
    if m.revoked_at.is_some() {
        return Err(Refusal::Revoked);
    }
    if let Some(at) = m.policy.expires_at.filter(|at| *at <= now) {
        return Err(Refusal::Expired { at });
    }
    if amount > m.policy.max_per_draw {
        return Err(Refusal::PerDraw {
            amount,
            max: m.policy.max_per_draw,
        });
    }
    let drawn = m.drawn_24h(now);
    if drawn.saturating_add(amount) > m.policy.max_per_day {
        return Err(Refusal::PerDay {
            amount,
            drawn,
            max: m.policy.max_per_day,
        });
    }
    if amount > m.balance {
        return Err(Refusal::Balance {
            amount,
            balance: m.balance,
        });
    }
    Ok(())
}

/// Checks, then debits the draw and remembers it until its quote is known to exist.
pub fn debit_draw(m: &mut Metered, amount: u64, now: u64, key: &str) -> Result<(), Refusal> {
    check_draw(m, amount, now)?;
    m.prune_window(now);
    m.balance -= amount;
    m.window.push((now, amount));
    m.totals.drawn = m.totals.drawn.saturating_add(amount);
    m.pending_draws.push(PendingDraw {
        key: key.to_string(),
        amount,
        time: now,
    });
    Ok(())
}

/// Gives a draw back (its quote was never made). Returns false if it was not pending.
pub fn release_draw(m: &mut Metered, key: &str) -> Option<u64> {
    let pos = m.pending_draws.iter().position(|d| d.key == key)?;
    let d = m.pending_draws.remove(pos);
    m.balance = m.balance.saturating_add(d.amount);
    m.totals.drawn = m.totals.drawn.saturating_sub(d.amount);
    if let Some(w) = m
        .window
        .iter()
        .position(|(t, a)| *t == d.time && *a == d.amount)
    {
        m.window.remove(w);
    }
    Some(d.amount)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowance::model::Totals;
    use cashu_402::allowance::{AllowancePolicy, DAY_SECS};

    fn account(balance: u64) -> Metered {
        Metered {
            policy: AllowancePolicy {
                max_per_draw: 100,
                max_per_day: 250,
                expires_at: Some(10_000_000),
            },
            agent_pubkey: String::new(),
            balance,
            revoked_at: None,
            window: vec![],
            fundings: vec![],
            pending_draws: vec![],
            withdrawals: vec![],
            totals: Totals::default(),
        }
    }

    #[test]
    fn each_bound_refuses_with_its_own_reason() {
        let now = 1_000_000;
        let mut m = account(1000);
        assert!(matches!(
            check_draw(&m, 101, now),
            Err(Refusal::PerDraw { max: 100, .. })
        ));
        debit_draw(&mut m, 100, now, "a").unwrap();
        debit_draw(&mut m, 100, now + 1, "b").unwrap();
        assert!(matches!(
            check_draw(&m, 51, now + 2),
            Err(Refusal::PerDay { drawn: 200, .. })
        ));
        debit_draw(&mut m, 50, now + 2, "c").unwrap();
        assert_eq!(m.balance, 750);
        // A day later the window has room again.
        check_draw(&m, 100, now + DAY_SECS + 3).unwrap();
        let mut poor = account(10);
        assert!(matches!(
            check_draw(&poor, 11, now),
            Err(Refusal::Balance { balance: 10, .. })
        ));
        assert!(matches!(
            check_draw(&poor, 1, 10_000_000),
            Err(Refusal::Expired { .. })
        ));
        poor.revoked_at = Some(now);
        assert_eq!(check_draw(&poor, 1, now), Err(Refusal::Revoked));
    }

    #[test]
    fn a_released_draw_gives_everything_back() {
        let mut m = account(500);
        debit_draw(&mut m, 80, 5, "k").unwrap();
        assert_eq!(release_draw(&mut m, "k"), Some(80));
        assert_eq!(m.balance, 500);
        assert_eq!(m.drawn_24h(6), 0);
        assert_eq!(m.totals.drawn, 0);
        assert_eq!(release_draw(&mut m, "k"), None, "only once");
    }
}
