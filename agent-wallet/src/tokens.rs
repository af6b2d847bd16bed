//! Tokens in and out by hand: importing an allowance ([`AgentWallet::receive`]) and handing out
//! a token ([`AgentWallet::send`]).

use std::str::FromStr;

use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, Token};
use cdk::wallet::{ReceiveOptions, SendOptions};
use cdk::Amount;

use crate::error::WalletError;
use crate::ledger::{LedgerEntry, Outcome, METHOD_SEND, SCHEME_CASHU};
use crate::oplock;
use crate::store::now_unix;
use crate::wallet::{new_id, AgentWallet, ReceiveOutcome, SentToken};

impl AgentWallet {
    /// Imports a `cashuB`/`cashuA` token into the wallet (one swap at its mint). Idempotent:
    /// a token this wallet imported before is reported as [`ReceiveOutcome::AlreadyImported`];
    /// a token someone else spent is [`WalletError::TokenSpent`].
    pub async fn receive(&self, token: &str) -> Result<ReceiveOutcome, WalletError> {
        let text = token.trim();
        let parsed =
            Token::from_str(text).map_err(|e| WalletError::Invalid(format!("token: {e}")))?;
        let unit = parsed.unit().unwrap_or_default();
        if unit != CurrencyUnit::Sat {
            return Err(WalletError::Invalid(format!(
                "token unit {unit} (this wallet holds sat)"
            )));
        }
        let mint = parsed
            .mint_url()
            .map_err(|e| WalletError::Invalid(format!("token: {e}")))?;
        let ys = token_ys(&parsed)?;
        let before = self.store.import_state(&ys)?;
        if before.as_deref() == Some("imported") {
            return Ok(ReceiveOutcome::AlreadyImported);
        }
        self.store.set_import_state(&ys, "importing")?;
        let _op = oplock::shared(&self.data_dir).await?;
        self.add_mint(&mint).await?;
        let wallet = self.wallet_for(&mint)?;
        match wallet.receive(text, ReceiveOptions::default()).await {
            Ok(amount) => {
                self.store.set_import_state(&ys, "imported")?;
                Ok(ReceiveOutcome::Received {
                    amount: amount.into(),
                })
            }
            Err(cdk::Error::TokenAlreadySpent) if before.is_some() => {
                // An earlier attempt of ours got as far as the mint before it was cut short.
                self.store.set_import_state(&ys, "imported")?;
                Ok(ReceiveOutcome::AlreadyImported)
            }
            Err(cdk::Error::TokenAlreadySpent) => Err(WalletError::TokenSpent),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes a `cashuB` token worth `amount` from `mint` (or the home mint, or the mint with
    /// the most ecash), for handing out by hand. Counts against the policy's total cap and is
    /// recorded in the ledger (method `SEND`, no host).
    pub async fn send(
        &self,
        amount: u64,
        mint: Option<&MintUrl>,
    ) -> Result<SentToken, WalletError> {
        if amount == 0 {
            return Err(WalletError::Invalid("amount must be at least 1".into()));
        }
        let mint = match mint.or(self.home_mint.as_ref()) {
            Some(m) => m.clone(),
            None => self.richest_mint().await?,
        };
        let _op = oplock::shared(&self.data_dir).await?;
        let wallet = self.wallet_for(&mint)?;
        let available = u64::from(wallet.total_balance().await?);
        let prepared = match wallet
            .prepare_send(Amount::from(amount), SendOptions::default())
            .await
        {
            Ok(p) => p,
            Err(cdk::Error::InsufficientFunds) => {
                return Err(WalletError::InsufficientFunds {
                    mint: mint.to_string(),
                    needed: amount,
                    available,
                })
            }
            Err(e) => return Err(e.into()),
        };
        let fee = u64::from(prepared.fee());
        let entry = LedgerEntry {
            id: new_id(),
            time: now_unix(),
            host: String::new(),
            path: String::new(),
            method: METHOD_SEND.into(),
            amount,
            fee,
            unit: CurrencyUnit::Sat.to_string(),
            scheme: SCHEME_CASHU.into(),
            mint: mint.to_string(),
            outcome: Outcome::Paid,
            counted: true,
            status: None,
            detail: "token handed out".into(),
        };
        let policy = &self.policy;
        let cost = amount.saturating_add(fee);
        if let Err(violation) = self
            .store
            .record_send(&entry, |spent| policy.check_total(cost, spent.total))?
        {
            prepared.cancel().await?;
            return Err(WalletError::PolicyRefused {
                violation,
                response: None,
            });
        }
        match prepared.confirm(None).await {
            Ok(token) => Ok(SentToken {
                token: token.to_string(),
                amount,
                fee,
                mint: mint.to_string(),
            }),
            Err(e) => {
                self.store.set_outcome(&entry.id, Outcome::Failed, false)?;
                Err(e.into())
            }
        }
    }

    pub(crate) async fn richest_mint(&self) -> Result<MintUrl, WalletError> {
        let mut best: Option<(u64, MintUrl)> = None;
        for mint in self.mints() {
            let b = self.balance_at(&mint).await?;
            if best.as_ref().is_none_or(|(bb, _)| b > *bb) {
                best = Some((b, mint));
            }
        }
        best.map(|(_, m)| m)
            .ok_or_else(|| WalletError::InsufficientFunds {
                mint: "(none)".into(),
                needed: 1,
                available: 0,
            })
    }
}

/// The Y values (hash_to_curve of the secrets) of a token's proofs, hex: what the mint's spent
/// set is keyed by, and what import idempotency is keyed by.
fn token_ys(token: &Token) -> Result<Vec<String>, WalletError> {
    token
        .token_secrets()
        .into_iter()
        .map(|s| {
            cdk::dhke::hash_to_curve(s.as_bytes())
                .map(|y| y.to_hex())
                .map_err(|e| WalletError::Invalid(format!("token secret: {e}")))
        })
        .collect()
}
