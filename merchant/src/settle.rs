//! Settlement: melting collected ecash at the mint to pay the merchant's Lightning invoice.
//!
//! `quote → prepare → confirm` with cdk's melt saga (fee reserve reserved up front, NUT-08
//! change returned to the wallet). Each settlement is logged in the merchant database before
//! the payment starts and updated when it ends.

use std::collections::HashMap;
use std::str::FromStr;

use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, MeltQuoteState, PaymentMethod};
use cdk::wallet::{PreparedMelt, Wallet};
use cdk::{Amount, Bolt11Invoice};

use crate::merchant::{Merchant, MerchantError};
use crate::store::{Outcome, Settlement, SettlementSource, StoreError};

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
    let id = merchant
        .store()
        .start_settlement(
            mint.to_string(),
            unit.to_string(),
            amount,
            invoice.clone(),
            source,
        )
        .await?;
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
        confirm(prepared, id).await
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
        let id = store
            .start_settlement(
                wallet.mint_url.to_string(),
                wallet.unit.to_string(),
                quote.amount.into(),
                quote.request.clone(),
                source,
            )
            .await?;
        store
            .settlement_quoted(id, quote.id.clone(), quote.fee_reserve.into())
            .await?;
        Ok::<_, StoreError>(id)
    }
    .await;
    let id = match started {
        Ok(id) => id,
        Err(e) => {
            // Not logged, so not paid: release the reserved proofs.
            if let Err(c) = prepared.cancel().await {
                tracing::warn!(error = %c, "cannot cancel a prepared melt");
            }
            return Err(e.into());
        }
    };
    let result = confirm(prepared, id).await;
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
async fn confirm(prepared: PreparedMelt<'_>, id: i64) -> Result<u64, SettleError> {
    let amount = prepared.amount();
    let swap_fee = prepared.swap_fee();
    let finalized = match prepared.confirm().await {
        Ok(f) => f,
        Err(e) if e.is_definitive_failure() => return Err(SettleError::Payment(e.to_string())),
        Err(e) => {
            tracing::warn!(settlement = id, error = %e, "melt outcome unknown; left pending");
            return Err(SettleError::Pending { id });
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
