//! How the admin API shows an allowance.

use cashu_402::allowance::{AllowanceView, FundingView, HistoryEntry};
use cdk::util::unix_time;

use super::error::AllowanceError;
use super::model::{Account, Funding, PrepaidState};
use super::service::Allowances;

/// Days shown in the spend-per-day chart.
pub const CHART_DAYS: u64 = 14;

impl Allowances {
    /// The view of `account`; `credential` is set only in the answer to `create`.
    pub async fn view(
        &self,
        account: &Account,
        credential: Option<String>,
    ) -> Result<AllowanceView, AllowanceError> {
        let now = unix_time();
        let history = self.registry.history(&account.id).await?;
        let mut view = AllowanceView {
            id: account.id.clone(),
            kind: String::new(),
            state: String::new(),
            memo: account.memo.clone(),
            created: account.created,
            amount: 0,
            balance: 0,
            drawn_24h: 0,
            policy: None,
            agent_pubkey: None,
            fundings: vec![],
            per_day: vec![],
            history: vec![],
            token: None,
            credential,
        };
        if let Some(m) = &account.metered {
            view.kind = "metered".into();
            view.state = m.state(now).into();
            view.amount = m.totals.funded;
            view.balance = m.balance;
            view.drawn_24h = m.drawn_24h(now);
            view.policy = Some(m.policy);
            view.agent_pubkey = Some(m.agent_pubkey.clone());
            view.fundings = m.fundings.iter().map(|f| funding_view(f, now)).collect();
            view.per_day = per_day(&history, now);
        }
        if let Some(p) = &account.prepaid {
            view.kind = "prepaid".into();
            view.amount = p.amount;
            view.state = match p.state {
                PrepaidState::AwaitingPayment => "awaiting_payment",
                PrepaidState::Issuing { .. } => "issuing",
                PrepaidState::Delivered => "delivered",
            }
            .into();
            view.balance = self.prepaid_unspent(&p.ys).await?;
            view.fundings = vec![FundingView {
                quote_id: p.quote_id.clone(),
                invoice: p.invoice.clone(),
                amount: p.amount,
                state: if p.state == PrepaidState::AwaitingPayment {
                    "unpaid".into()
                } else {
                    "paid".into()
                },
                created: account.created,
            }];
        }
        view.history = history;
        Ok(view)
    }
}

fn funding_view(f: &Funding, now: u64) -> FundingView {
    let state = if f.credited {
        "paid"
    } else if f.expiry != 0 && f.expiry < now {
        "expired"
    } else {
        "unpaid"
    };
    FundingView {
        quote_id: f.quote_id.clone(),
        invoice: f.invoice.clone(),
        amount: f.amount,
        state: state.into(),
        created: f.created,
    }
}

/// Sat drawn per UTC day over the last [`CHART_DAYS`] days, oldest first.
pub fn per_day(history: &[HistoryEntry], now: u64) -> Vec<u64> {
    let today = now / 86_400;
    let first = today.saturating_sub(CHART_DAYS - 1);
    let mut days = vec![0u64; CHART_DAYS as usize];
    for e in history {
        let day = e.time / 86_400;
        if day < first || day > today {
            continue;
        }
        let slot = &mut days[(day - first) as usize];
        match e.kind.as_str() {
            "draw" => *slot = slot.saturating_add(e.amount),
            "draw_released" => *slot = slot.saturating_sub(e.amount),
            _ => {}
        }
    }
    days
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowance::model::event;

    #[test]
    fn per_day_buckets_draws_by_utc_day() {
        let now = 100 * 86_400 + 10;
        let h = vec![
            event(now - 86_400, "draw", 30, 0, ""),
            event(now, "draw", 5, 0, ""),
            event(now, "draw", 7, 0, ""),
            event(now, "draw_released", 7, 0, ""),
            event(now - 20 * 86_400, "draw", 99, 0, ""),
            event(now, "funded", 1000, 0, ""),
        ];
        let d = per_day(&h, now);
        assert_eq!(d.len(), CHART_DAYS as usize);
        assert_eq!(d[CHART_DAYS as usize - 1], 5);
        assert_eq!(d[CHART_DAYS as usize - 2], 30);
        assert_eq!(d.iter().sum::<u64>(), 35);
    }
}
