//! Withdrawing what is left of a metered allowance to a Lightning invoice.
//!
//! A persisted state machine, so a crash loses nothing: the amount plus the backend's fee
//! reserve is debited first (the withdrawal is recorded in the account in the same step), then
//! the Lightning backend pays. A final answer settles it: paid (the unused reserve comes back)
//! or failed (everything comes back). Without one it stays in flight and the sweeper asks the
//! backend again until it answers.

use std::str::FromStr;

use cashu_402::allowance::AllowanceView;
use cdk::cdk_payment::{
    Bolt11OutgoingPaymentOptions, MakePaymentResponse, OutgoingPaymentOptions, PaymentIdentifier,
};
use cdk::nuts::{CurrencyUnit, MeltQuoteState};
use cdk::util::unix_time;
use cdk::Bolt11Invoice;
use cdk_common::QuoteId;

use super::error::AllowanceError;
use super::model::{event, Withdrawal};
use super::registry::Effects;
use super::service::{metered_mut, Allowances};

/// How a withdrawal ended.
enum Outcome {
    Paid { total_spent: u64 },
    Failed(String),
}

impl Allowances {
    /// Pays `invoice` (with an amount) from the allowance's balance.
    pub async fn withdraw(&self, id: &str, invoice: &str) -> Result<AllowanceView, AllowanceError> {
        self.metered(id).await?;
        let bolt11 = Bolt11Invoice::from_str(invoice.trim())
            .map_err(|e| AllowanceError::Invalid(format!("not a bolt11 invoice: {e}")))?;
        let amount = bolt11
            .amount_milli_satoshis()
            .map(|m| m / 1000)
            .filter(|a| *a > 0)
            .ok_or_else(|| AllowanceError::Invalid("the invoice must name an amount".into()))?;
        if self
            .mint
            .localstore()
            .get_mint_quote_by_request(invoice.trim())
            .await?
            .is_some()
        {
            return Err(AllowanceError::Invalid(
                "this invoice was issued by this mint; withdraw to an outside wallet".into(),
            ));
        }
        let options = |quote_id: QuoteId| {
            OutgoingPaymentOptions::Bolt11(Box::new(Bolt11OutgoingPaymentOptions {
                bolt11: bolt11.clone(),
                max_fee_amount: None,
                timeout_secs: None,
                melt_options: None,
                quote_id,
            }))
        };
        let quote_id = QuoteId::new();
        let quote = self
            .lightning
            .get_payment_quote(&CurrencyUnit::Sat, options(quote_id.clone()))
            .await
            .map_err(|e| AllowanceError::Lightning(e.to_string()))?;
        let fee_reserve = quote.fee.value();
        let withdrawal = Withdrawal {
            id: quote_id.to_string(),
            invoice: invoice.trim().to_string(),
            payment_hash: bolt11.payment_hash().to_string(),
            amount,
            fee_reserve,
            started: unix_time(),
        };
        let needed = amount.saturating_add(fee_reserve);
        self.registry
            .update(id, |a| {
                let m = metered_mut(a)?;
                if m.balance < needed {
                    return Err(AllowanceError::Conflict(format!(
                        "the balance is {} sat; this invoice needs {amount} sat plus a fee reserve of {fee_reserve} sat",
                        m.balance
                    )));
                }
                m.balance -= needed;
                m.withdrawals.push(withdrawal.clone());
                Ok((
                    (),
                    Effects::event(event(withdrawal.started, "withdrawal_started", amount, fee_reserve, "")),
                ))
            })
            .await?;
        tracing::info!(allowance = %id, amount, fee_reserve, "withdrawal debited; paying");

        let payment = self
            .lightning
            .make_payment(&CurrencyUnit::Sat, options(quote_id))
            .await;
        match payment {
            Ok(r) => {
                if let Some(outcome) = outcome_of(&r) {
                    self.finish_withdrawal(id, &withdrawal.id, outcome).await?;
                }
            }
            Err(e) => {
                // Unsure whether it went out: leave it in flight; the sweeper asks again.
                tracing::warn!(allowance = %id, error = %e, "withdrawal outcome unknown");
            }
        }
        let account = self
            .registry
            .get(id)
            .await?
            .ok_or_else(|| AllowanceError::NotFound(id.to_string()))?;
        if let Some(m) = &account.metered {
            if m.withdrawals.iter().all(|w| w.id != withdrawal.id) {
                let last = self.registry.history(id).await?.pop();
                if let Some(e) = last.filter(|e| e.kind == "withdrawal_failed") {
                    return Err(AllowanceError::Lightning(e.detail));
                }
            }
        }
        self.view(&account, None).await
    }

    /// Asks the backend about every withdrawal of `id` still in flight.
    pub async fn settle_withdrawals(&self, id: &str) -> Result<(), AllowanceError> {
        let Some(account) = self.registry.get(id).await? else {
            return Ok(());
        };
        let pending: Vec<Withdrawal> = account.metered.map(|m| m.withdrawals).unwrap_or_default();
        for w in pending {
            let Ok(hash) = cdk::secp256k1::hashes::sha256::Hash::from_str(&w.payment_hash) else {
                continue;
            };
            let lookup = PaymentIdentifier::PaymentHash(*hash.as_ref());
            match self.lightning.check_outgoing_payment(&lookup).await {
                Ok(r) => {
                    if let Some(outcome) = outcome_of(&r) {
                        self.finish_withdrawal(id, &w.id, outcome).await?;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "withdrawal still unsettled"),
            }
        }
        Ok(())
    }

    async fn finish_withdrawal(
        &self,
        id: &str,
        withdrawal: &str,
        outcome: Outcome,
    ) -> Result<(), AllowanceError> {
        self.registry
            .update(id, |a| {
                let m = metered_mut(a)?;
                let Some(pos) = m.withdrawals.iter().position(|w| w.id == withdrawal) else {
                    return Ok(((), Effects::default())); // settled by someone else
                };
                let w = m.withdrawals.remove(pos);
                let now = unix_time();
                let e = match &outcome {
                    Outcome::Paid { total_spent } => {
                        let fee = total_spent.saturating_sub(w.amount);
                        if fee > w.fee_reserve {
                            tracing::warn!(
                                fee,
                                reserve = w.fee_reserve,
                                "withdrawal fee above its reserve"
                            );
                        }
                        let back = w.fee_reserve.saturating_sub(fee);
                        m.balance = m.balance.saturating_add(back);
                        m.totals.withdrawn = m.totals.withdrawn.saturating_add(w.amount);
                        m.totals.fees = m.totals.fees.saturating_add(fee);
                        event(now, "withdrawn", w.amount, fee, "")
                    }
                    Outcome::Failed(reason) => {
                        m.balance = m
                            .balance
                            .saturating_add(w.amount.saturating_add(w.fee_reserve));
                        event(now, "withdrawal_failed", w.amount, 0, reason.clone())
                    }
                };
                Ok(((), Effects::event(e)))
            })
            .await?;
        Ok(())
    }
}

/// A final outcome, or none while the payment may still settle.
fn outcome_of(r: &MakePaymentResponse) -> Option<Outcome> {
    match r.status {
        MeltQuoteState::Paid => Some(Outcome::Paid {
            total_spent: r.total_spent.value(),
        }),
        MeltQuoteState::Failed | MeltQuoteState::Unpaid => {
            Some(Outcome::Failed("the Lightning payment failed".into()))
        }
        _ => None,
    }
}
