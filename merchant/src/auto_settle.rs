//! Automatic settlement: when a mint's sat balance reaches a threshold, get an invoice from the
//! configured source and melt the balance (less a margin for the mint's fee reserve) to it.
//!
//! Checked after every successful redemption and on an interval; after a failure the settler
//! waits one interval before trying again, so a broken invoice source is not hammered.

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant};

use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, PaymentMethod};
use serde::{Deserialize, Serialize};

use crate::invoice_source::{InvoiceSource, InvoiceSourceError};
use crate::merchant::{Merchant, MerchantError};
use crate::settle::{settle_prepared, SettleError};
use crate::store::{Settlement, SettlementSource};

/// The `[settle]` section of a config: when and where to settle automatically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoSettleConfig {
    /// Settle a mint's sat balance once it reaches this many sat; 0 turns it off.
    pub threshold_sat: u64,
    /// Sat to leave in the wallet after settling.
    pub keep_sat: u64,
    /// Also look at the balance this often, in seconds (besides after every payment).
    pub interval_secs: u64,
    /// Share of the balance left for the mint's fee reserve, in percent (the mint's input fees
    /// come on top)...
    pub fee_margin_percent: u64,
    /// ...and at least this many sat.
    pub fee_margin_min_sat: u64,
    /// Invoice source: a Lightning address (`user@domain`)...
    pub lightning_address: Option<String>,
    /// ...or an LNURL-pay URL...
    pub lnurl: Option<String>,
    /// ...or a shell command printing an invoice for `$MERCHANT_SETTLE_AMOUNT_SAT`.
    pub command: Option<String>,
}

impl Default for AutoSettleConfig {
    fn default() -> Self {
        Self {
            threshold_sat: 0,
            keep_sat: 0,
            interval_secs: 60,
            fee_margin_percent: 2,
            fee_margin_min_sat: 2,
            lightning_address: None,
            lnurl: None,
            command: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AutoSettleError {
    #[error("settle: set exactly one of `lightning_address`, `lnurl` or `command`")]
    Source,
    #[error("settle: `interval_secs` must be at least 1")]
    Interval,
    #[error("invoice source: {0}")]
    Invoice(#[from] InvoiceSourceError),
    #[error("the mint refused the melt quote: {0}")]
    Quote(cdk::Error),
    #[error("cannot prepare the melt: {0}")]
    Prepare(cdk::Error),
    #[error("the fee reserve leaves nothing to settle from {balance} sat")]
    TooExpensive { balance: u64 },
    #[error(transparent)]
    Settle(#[from] SettleError),
    #[error(transparent)]
    Merchant(#[from] MerchantError),
}

impl AutoSettleConfig {
    pub fn enabled(&self) -> bool {
        self.threshold_sat > 0
    }

    /// The one configured invoice source.
    pub fn source(&self) -> Result<InvoiceSource, AutoSettleError> {
        match (&self.lightning_address, &self.lnurl, &self.command) {
            (Some(a), None, None) => Ok(InvoiceSource::LightningAddress(a.clone())),
            (None, Some(u), None) => Ok(InvoiceSource::Lnurl(u.clone())),
            (None, None, Some(c)) => Ok(InvoiceSource::Command(c.clone())),
            _ => Err(AutoSettleError::Source),
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), AutoSettleError> {
        if self.enabled() {
            self.source()?;
            if self.interval_secs == 0 {
                return Err(AutoSettleError::Interval);
            }
        }
        Ok(())
    }
}

/// The settler. Build it with [`AutoSettler::new`], then [`AutoSettler::run`] it in a task.
pub struct AutoSettler {
    merchant: Merchant,
    config: AutoSettleConfig,
    source: InvoiceSource,
    http: reqwest::Client,
}

impl AutoSettler {
    pub fn new(merchant: Merchant, config: AutoSettleConfig) -> Result<Self, AutoSettleError> {
        config.validate()?;
        let source = config.source()?;
        Ok(Self {
            merchant,
            config,
            source,
            http: reqwest::Client::new(),
        })
    }

    /// Settles every mint whose sat balance reached the threshold. Returns what was settled.
    pub async fn run_once(&self) -> Result<Vec<Settlement>, AutoSettleError> {
        let mut settled = Vec::new();
        for balance in self.merchant.balances().await? {
            if balance.unit != CurrencyUnit::Sat.to_string()
                || balance.spendable < self.config.threshold_sat
            {
                continue;
            }
            let Ok(mint) = MintUrl::from_str(&balance.mint_url) else {
                continue;
            };
            if let Some(s) = self.settle_mint(&mint, balance.spendable).await? {
                settled.push(s);
            }
        }
        Ok(settled)
    }

    async fn settle_mint(
        &self,
        mint: &MintUrl,
        balance: u64,
    ) -> Result<Option<Settlement>, AutoSettleError> {
        if let Err(e) = crate::settle::resolve_pending_settlements(
            &self.merchant,
            Some(crate::settle::IN_FLIGHT_GRACE),
        )
        .await
        {
            tracing::warn!(error = %e, "cannot resolve the pending settlements");
        }
        let wallet = self.merchant.wallet(mint, &CurrencyUnit::Sat).await?;
        let available = balance.saturating_sub(self.config.keep_sat);
        // The mint's input fee for every proof held: an upper bound of what the melt's inputs
        // (and a swap before it) cost on top of the fee reserve.
        let proofs = wallet
            .get_unspent_proofs()
            .await
            .map_err(AutoSettleError::Prepare)?;
        let input_fee = match wallet.get_proofs_fee(&proofs).await {
            Ok(f) => u64::from(f.total),
            Err(_) => 0,
        };
        let margin = (available.saturating_mul(self.config.fee_margin_percent))
            .div_ceil(100)
            .max(self.config.fee_margin_min_sat)
            .saturating_add(input_fee);
        let mut amount = available.saturating_sub(margin);
        for _ in 0..4 {
            if amount == 0 {
                break;
            }
            let invoice = self.source.invoice(&self.http, amount).await?;
            let quote = wallet
                .melt_quote(PaymentMethod::BOLT11, &invoice, None, None)
                .await
                .map_err(AutoSettleError::Quote)?;
            // Shared: saga recovery must not roll the melt back between prepare and confirm.
            let shared = self.merchant.recovery_lock().read().await;
            match wallet.prepare_melt(&quote.id, HashMap::new()).await {
                Ok(prepared) => {
                    tracing::info!(mint = %mint, amount = %quote.amount, fee_reserve = %quote.fee_reserve,
                        input_fees = %prepared.total_fee(), "balance above the threshold: settling");
                    let s =
                        settle_prepared(&self.merchant, &wallet, prepared, SettlementSource::Auto)
                            .await?;
                    drop(shared);
                    return Ok(Some(s));
                }
                Err(cdk::Error::InsufficientFunds) => {
                    // The fee reserve and input fees exceed the margin: ask for less.
                    let step = u64::from(quote.fee_reserve).max(margin).max(1);
                    amount = amount.min(u64::from(quote.amount)).saturating_sub(step);
                }
                Err(e) => return Err(AutoSettleError::Prepare(e)),
            }
        }
        Err(AutoSettleError::TooExpensive { balance })
    }

    /// Runs until `shutdown` resolves: after every redemption and every `interval_secs`.
    /// A settlement in progress finishes before it returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let interval = Duration::from_secs(self.config.interval_secs.max(1));
        let mut paused_until: Option<Instant> = None;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.merchant.redeemed() => {}
                _ = tokio::time::sleep(interval) => {}
            }
            if paused_until.is_some_and(|t| Instant::now() < t) {
                continue;
            }
            paused_until = None;
            match self.run_once().await {
                Ok(settled) => {
                    for s in settled {
                        tracing::info!(id = s.id, amount = s.amount, fee = ?s.fee, "automatic settlement paid");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "automatic settlement failed; retrying after the interval");
                    paused_until = Some(Instant::now() + interval);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_source_is_required_when_enabled() {
        let mut c = AutoSettleConfig::default();
        assert!(c.validate().is_ok(), "off needs no source");
        c.threshold_sat = 100;
        assert!(c.validate().is_err());
        c.command = Some("cat invoice".into());
        assert_eq!(
            c.source().unwrap(),
            InvoiceSource::Command("cat invoice".into())
        );
        c.lnurl = Some("https://x/y".into());
        assert!(c.validate().is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let r: Result<AutoSettleConfig, _> = toml::from_str("threshold_sat = 5\nthreshhold = 6");
        assert!(r.is_err());
    }
}
