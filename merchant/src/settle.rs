//! Settlement: melting collected ecash at the mint to pay the merchant's Lightning invoice.
//!
//! `quote → prepare → confirm` with cdk's melt saga (fee reserve reserved up front, NUT-08
//! change returned to the wallet). Each settlement is logged in the merchant database before
//! the payment starts and updated when it ends.
//!
//! When the confirm step fails, the outcome is not assumed: the mint is asked for the melt
//! quote's state (after cdk's melt saga for it has run), and the settlement is logged as paid,
//! failed, or pending only while the mint itself does not know yet. A settlement left pending
//! (mint unreachable, crash) is resolved the same way later: by [`Merchant::recover`], when the
//! settlements are listed, and before a new settlement starts.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, MeltQuoteState, PaymentMethod};
use cdk::wallet::types::{OperationData, TransactionDirection, TransactionStatus, WalletSagaState};
use cdk::wallet::{PreparedMelt, Wallet};
use cdk::{Amount, Bolt11Invoice};
use serde::Serialize;

use crate::merchant::{Merchant, MerchantError};
use crate::store::{now, Outcome, Settlement, SettlementSource, StoreError};

/// How long after its last update a pending settlement may still be in flight in another
/// process sharing the data directory (the `merchant` CLI beside a gateway). Listing the
/// settlements and starting a new one leave younger pending settlements alone; start-up
/// recovery (one process per data directory) does not wait.
pub const IN_FLIGHT_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("not a BOLT11 invoice: {0}")]
    Invoice(String),
    #[error("the invoice has no amount; settle to an invoice for a fixed amount")]
    AmountlessInvoice,
    #[error("the invoice asks for {amount} sat plus a fee reserve of {fee_reserve} sat, but the wallet holds {balance} sat")]
    InsufficientBalance {
        amount: u64,
        fee_reserve: u64,
        balance: u64,
    },
    #[error("the mint refused the melt quote: {0}")]
    Quote(cdk::Error),
    #[error("the payment failed: {0}")]
    Payment(String),
    #[error(
        "the payment is pending at the mint; its outcome will be known later (settlement {id})"
    )]
    Pending { id: i64 },
    #[error(transparent)]
    Merchant(#[from] MerchantError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Amount of a BOLT11 invoice in whole satoshis (rounded down), `None` if it has none.
pub fn invoice_amount_sat(invoice: &str) -> Result<Option<u64>, SettleError> {
    let parsed =
        Bolt11Invoice::from_str(invoice.trim()).map_err(|e| SettleError::Invoice(e.to_string()))?;
    Ok(parsed.amount_milli_satoshis().map(|msat| msat / 1000))
}

/// Pays `invoice` by melting the merchant's `unit` ecash from `mint`. Returns the logged
/// settlement (outcome `paid`); failures are logged as `failed` and returned as errors.
pub async fn settle(
    merchant: &Merchant,
    mint: &MintUrl,
    unit: &CurrencyUnit,
    invoice: &str,
    source: SettlementSource,
) -> Result<Settlement, SettleError> {
    let invoice = invoice.trim().to_string();
    let amount = invoice_amount_sat(&invoice)?.ok_or(SettleError::AmountlessInvoice)?;
    if let Err(e) = resolve_pending_settlements(merchant, Some(IN_FLIGHT_GRACE)).await {
        tracing::warn!(error = %e, "cannot resolve the pending settlements");
    }
    let flight = merchant
        .start_settlement(
            mint.to_string(),
            unit.to_string(),
            amount,
            invoice.clone(),
            source,
        )
        .await?;
    let id = flight.id;
    let result = async {
        let wallet = merchant.wallet(mint, unit).await?;
        let quote = wallet
            .melt_quote(PaymentMethod::BOLT11, &invoice, None, None)
            .await
            .map_err(SettleError::Quote)?;
        merchant
            .store()
            .settlement_quoted(id, quote.id.clone(), quote.fee_reserve.into())
            .await?;
        // Shared: saga recovery must not roll this melt back while it runs.
        let _shared = merchant.recovery_lock().read().await;
        let balance = merchant.balance(mint, unit).await?;
        let needed = quote
            .amount
            .checked_add(quote.fee_reserve)
            .unwrap_or(Amount::from(u64::MAX));
        if balance < needed {
            return Err(SettleError::InsufficientBalance {
                amount: quote.amount.into(),
                fee_reserve: quote.fee_reserve.into(),
                balance: balance.into(),
            });
        }
        let prepared = wallet
            .prepare_melt(&quote.id, HashMap::new())
            .await
            .map_err(|e| SettleError::Payment(e.to_string()))?;
        confirm(merchant, &wallet, prepared, id).await
    }
    .await;
    finish(merchant, id, result).await
}

/// Pays a melt the caller prepared (the automatic settler prepares first, to size the invoice
/// to the fees). The caller holds the merchant's recovery lock shared.
pub(crate) async fn settle_prepared(
    merchant: &Merchant,
    wallet: &Wallet,
    prepared: PreparedMelt<'_>,
    source: SettlementSource,
) -> Result<Settlement, SettleError> {
    let quote = prepared.quote().clone();
    let store = merchant.store();
    let started = async {
        let flight = merchant
            .start_settlement(
                wallet.mint_url.to_string(),
                wallet.unit.to_string(),
                quote.amount.into(),
                quote.request.clone(),
                source,
            )
            .await?;
        store
            .settlement_quoted(flight.id, quote.id.clone(), quote.fee_reserve.into())
            .await?;
        Ok::<_, StoreError>(flight)
    }
    .await;
    let flight = match started {
        Ok(flight) => flight,
        Err(e) => {
            // Not logged, so not paid: release the reserved proofs.
            if let Err(c) = prepared.cancel().await {
                tracing::warn!(error = %c, "cannot cancel a prepared melt");
            }
            return Err(e.into());
        }
    };
    let id = flight.id;
    let result = confirm(merchant, wallet, prepared, id).await;
    finish(merchant, id, result).await
}

/// Logs how settlement `id` ended and returns its row.
async fn finish(
    merchant: &Merchant,
    id: i64,
    result: Result<u64, SettleError>,
) -> Result<Settlement, SettleError> {
    let store = merchant.store();
    match &result {
        Ok(fee) => {
            store
                .finish_settlement(id, Outcome::Paid, Some(*fee), None)
                .await?
        }
        Err(SettleError::Pending { .. }) => {}
        Err(e) => {
            store
                .finish_settlement(id, Outcome::Failed, None, Some(e.to_string()))
                .await?
        }
    }
    result?;
    store
        .settlement(id)
        .await?
        .ok_or(SettleError::Store(StoreError::Corrupt {
            column: "settlements.id",
            value: id.to_string(),
        }))
}

/// Confirms a prepared melt; returns the fee paid beyond the invoice amount (Lightning fee and
/// the mint's input fees, including those of a swap made to get exact proofs).
async fn confirm(
    merchant: &Merchant,
    wallet: &Wallet,
    prepared: PreparedMelt<'_>,
    id: i64,
) -> Result<u64, SettleError> {
    let amount = prepared.amount();
    let swap_fee = prepared.swap_fee();
    let quote_id = prepared.quote().id.clone();
    let finalized = match prepared.confirm().await {
        Ok(f) => f,
        Err(e) => {
            // cdk has already run its saga recovery for this melt (which returns the melt if it
            // was paid after all, and releases the proofs if the mint says it was not); what the
            // error says is not the outcome. Ask the mint.
            let refused = e.is_definitive_failure();
            return match melt_verdict(merchant, wallet, &quote_id, refused).await {
                Ok(MeltVerdict::Paid { fee }) => {
                    let fee = fee.unwrap_or(0).saturating_add(swap_fee.into());
                    tracing::info!(settlement = id, %amount, fee, error = %e,
                        "the melt failed to confirm but the mint paid it");
                    Ok(fee)
                }
                Ok(MeltVerdict::NotPaid(why)) => {
                    tracing::warn!(settlement = id, error = %e, %why, "the mint did not pay the invoice");
                    Err(SettleError::Payment(format!("{e} ({why})")))
                }
                Ok(MeltVerdict::Pending(why)) => {
                    tracing::warn!(settlement = id, error = %e, %why, "melt outcome unknown; left pending");
                    Err(SettleError::Pending { id })
                }
                Err(db) => {
                    tracing::warn!(settlement = id, error = %e, check = %db,
                        "melt outcome unknown (cannot check it); left pending");
                    Err(SettleError::Pending { id })
                }
            };
        }
    };
    match finalized.state() {
        MeltQuoteState::Paid => {
            let fee = finalized
                .fee_paid()
                .checked_add(swap_fee)
                .unwrap_or(Amount::ZERO);
            tracing::info!(settlement = id, %amount, %fee, "settled to Lightning");
            Ok(fee.into())
        }
        MeltQuoteState::Pending | MeltQuoteState::Unknown => Err(SettleError::Pending { id }),
        other => Err(SettleError::Payment(format!("melt ended {other:?}"))),
    }
}

/// What became of a melt quote, according to the mint and to the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MeltVerdict {
    /// The mint paid the invoice and the wallet has finished the melt (change restored). `fee`:
    /// what the melt cost beyond the invoice amount, from the wallet's transaction record.
    Paid { fee: Option<u64> },
    /// The mint did not pay (the quote is UNPAID or FAILED) and the wallet holds no proofs for
    /// it any more: the ecash is spendable again. Says why, for the log.
    NotPaid(String),
    /// Not known yet: the mint reports the payment pending or cannot be asked, or the wallet's
    /// melt saga is still open.
    Pending(String),
}

/// Asks the mint for melt quote `quote_id` through cdk's `check_melt_quote_status`, which first
/// drives the wallet's open melt saga for the quote, if any: a paid melt is finished (proofs
/// spent, change restored), an unpaid one compensated (proofs released). `refused`: the mint
/// definitively refused the melt request, so it never executed it.
async fn melt_verdict(
    merchant: &Merchant,
    wallet: &Wallet,
    quote_id: &str,
    refused: bool,
) -> Result<MeltVerdict, MerchantError> {
    let checked = wallet.check_melt_quote_status(quote_id).await;
    // The wallet's own view: while a melt saga holds proofs for the quote, the ecash is not back.
    if melt_saga_open(merchant, wallet, quote_id).await? {
        let why = match &checked {
            Ok(q) => format!(
                "the mint reports the melt quote {}, but the wallet's melt is not finished",
                q.state
            ),
            Err(e) => format!("cannot check the melt quote: {e}"),
        };
        return Ok(MeltVerdict::Pending(why));
    }
    let quote = match checked {
        Ok(q) => q,
        Err(e) if refused => {
            return Ok(MeltVerdict::NotPaid(format!(
                "the mint refused the melt; the ecash stayed in the wallet (the quote cannot be \
                 checked: {e})"
            )))
        }
        Err(e) => {
            return Ok(MeltVerdict::Pending(format!(
                "cannot check the melt quote: {e}"
            )))
        }
    };
    Ok(match quote.state {
        MeltQuoteState::Paid => MeltVerdict::Paid {
            fee: melt_fee(wallet, quote_id).await,
        },
        state @ (MeltQuoteState::Unpaid | MeltQuoteState::Failed) => MeltVerdict::NotPaid(format!(
            "the mint reports the melt quote {state}; the ecash stayed in the wallet"
        )),
        state => MeltVerdict::Pending(format!("the mint reports the melt quote {state}")),
    })
}

/// Whether an unfinished melt saga of `wallet` is for `quote_id`.
async fn melt_saga_open(
    merchant: &Merchant,
    wallet: &Wallet,
    quote_id: &str,
) -> Result<bool, MerchantError> {
    Ok(merchant
        .localstore()
        .get_incomplete_sagas()
        .await?
        .into_iter()
        .any(|saga| {
            saga.mint_url == wallet.mint_url
                && saga.unit == wallet.unit
                && matches!(saga.state, WalletSagaState::Melt(_))
                && matches!(&saga.data, OperationData::Melt(d) if d.quote_id == quote_id)
        }))
}

/// The fee the wallet recorded for its completed melt of `quote_id`.
async fn melt_fee(wallet: &Wallet, quote_id: &str) -> Option<u64> {
    let transactions = match wallet
        .list_transactions(Some(TransactionDirection::Outgoing))
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(quote = quote_id, error = %e, "cannot read the wallet's transactions");
            return None;
        }
    };
    transactions
        .into_iter()
        .find(|t| {
            t.quote_id.as_deref() == Some(quote_id) && t.status == TransactionStatus::Completed
        })
        .map(|t| t.fee.into())
}

/// What resolving the pending settlements did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// Found paid (fee recorded).
    pub paid: usize,
    /// Found not paid (the ecash is back in the wallet).
    pub failed: usize,
    /// Still pending (the mint says so or cannot be asked), or possibly still being paid by
    /// another process.
    pub pending: usize,
}

/// Resolves every settlement left `pending` that this process is not paying, by asking the mint
/// for its melt quote. With `grace`, settlements updated more recently than that are left alone
/// (another process may be paying them).
pub(crate) async fn resolve_pending_settlements(
    merchant: &Merchant,
    grace: Option<Duration>,
) -> Result<Resolved, MerchantError> {
    let _one_at_a_time = merchant.resolving_lock().lock().await;
    let mut resolved = Resolved::default();
    for s in merchant.abandoned_pending_settlements().await? {
        if let Some(grace) = grace {
            let grace = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
            if now().saturating_sub(s.updated_at) < grace {
                resolved.pending += 1;
                continue;
            }
        }
        match resolve_settlement(merchant, &s).await {
            Ok(Outcome::Paid) => resolved.paid += 1,
            Ok(Outcome::Failed) => resolved.failed += 1,
            Ok(Outcome::Pending) => resolved.pending += 1,
            Err(e) => {
                tracing::warn!(settlement = s.id, error = %e, "cannot resolve a pending settlement");
                resolved.pending += 1;
            }
        }
    }
    Ok(resolved)
}

/// Resolves one pending settlement; returns its outcome now.
async fn resolve_settlement(merchant: &Merchant, s: &Settlement) -> Result<Outcome, MerchantError> {
    let store = merchant.store();
    let Some(quote_id) = s.quote_id.as_deref() else {
        // No melt quote, no melt: it stopped before anything was paid.
        store
            .finish_settlement(
                s.id,
                Outcome::Failed,
                None,
                Some("interrupted before the mint quoted the melt; nothing was paid".into()),
            )
            .await?;
        tracing::info!(
            settlement = s.id,
            "a pending settlement never got a melt quote: failed"
        );
        return Ok(Outcome::Failed);
    };
    let (Ok(mint), Ok(unit)) = (
        MintUrl::from_str(&s.mint_url),
        CurrencyUnit::from_str(&s.unit),
    ) else {
        tracing::warn!(settlement = s.id, mint = %s.mint_url, unit = %s.unit,
            "a pending settlement names an unparsable mint or unit; left pending");
        return Ok(Outcome::Pending);
    };
    let wallet = merchant.wallet(&mint, &unit).await?;
    match melt_verdict(merchant, &wallet, quote_id, false).await? {
        MeltVerdict::Paid { fee } => {
            store
                .finish_settlement(s.id, Outcome::Paid, fee, None)
                .await?;
            tracing::info!(
                settlement = s.id,
                amount = s.amount,
                ?fee,
                "a pending settlement was paid"
            );
            Ok(Outcome::Paid)
        }
        MeltVerdict::NotPaid(why) => {
            store
                .finish_settlement(s.id, Outcome::Failed, None, Some(why.clone()))
                .await?;
            tracing::info!(settlement = s.id, %why, "a pending settlement was not paid: failed");
            Ok(Outcome::Failed)
        }
        MeltVerdict::Pending(why) => {
            tracing::info!(settlement = s.id, %why, "a settlement is still pending");
            Ok(Outcome::Pending)
        }
    }
}
