//! Prepaid allowances: once the invoice is paid, the mint mints the token itself, through the
//! Mint API with blinded messages it makes (the quote is locked to the mint's own key), and
//! hands it out once. It keeps the proofs' Y values, never the token.

use std::str::FromStr;

use cdk::amount::{FeeAndAmounts, SplitTarget};
use cdk::dhke::construct_proofs;
use cdk::mint::MintInput;
use cdk::nuts::{CurrencyUnit, MintQuoteState, MintRequest, PreMintSecrets, State, Token};
use cdk::util::unix_time;
use cdk::Amount;
use cdk_common::QuoteId;

use super::error::AllowanceError;
use super::model::{event, Account, PrepaidState};
use super::registry::Effects;
use super::service::Allowances;

/// A claim older than this is taken to belong to a process that died while minting.
const ISSUING_TIMEOUT_SECS: u64 = 120;

impl Allowances {
    /// If the invoice of a prepaid allowance is paid and the token not yet handed out, mints it
    /// and returns it (only this call ever sees it).
    pub async fn settle_prepaid(
        &self,
        account: Account,
    ) -> Result<(Account, Option<String>), AllowanceError> {
        let Some(p) = &account.prepaid else {
            return Ok((account, None));
        };
        let now = unix_time();
        let claimable = match p.state {
            PrepaidState::AwaitingPayment => true,
            PrepaidState::Issuing { since } => since + ISSUING_TIMEOUT_SECS < now,
            PrepaidState::Delivered => false,
        };
        if !claimable || self.quote_state(&p.quote_id).await? != Some(MintQuoteState::Paid) {
            return Ok((account, None));
        }
        let seen = p.state;
        // Claim: exactly one caller mints.
        let claim = self
            .registry
            .update(&account.id, |a| {
                let p = a
                    .prepaid
                    .as_mut()
                    .ok_or_else(|| AllowanceError::Conflict("not prepaid".into()))?;
                if p.state != seen {
                    return Err(AllowanceError::Conflict(
                        "claimed by another request".into(),
                    ));
                }
                p.state = PrepaidState::Issuing { since: now };
                Ok(((), Effects::default()))
            })
            .await;
        let (claimed, ()) = match claim {
            Ok(c) => c,
            Err(AllowanceError::Conflict(_)) => return Ok((account, None)),
            Err(e) => return Err(e),
        };
        let Some(p) = claimed.prepaid.clone() else {
            return Ok((claimed, None));
        };
        let (token, ys) = match self
            .issue(&p.quote_id, p.amount, claimed.memo.clone())
            .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(allowance = %claimed.id, error = %e, "cannot mint the prepaid token");
                return Err(e);
            }
        };
        let (account, ()) = self
            .registry
            .update(&claimed.id, |a| {
                let p = a
                    .prepaid
                    .as_mut()
                    .ok_or_else(|| AllowanceError::Conflict("not prepaid".into()))?;
                p.state = PrepaidState::Delivered;
                p.ys = ys.clone();
                p.delivered_at = Some(now);
                Ok((
                    (),
                    Effects::event(event(now, "delivered", p.amount, 0, "token handed out")),
                ))
            })
            .await?;
        tracing::info!(allowance = %account.id, "prepaid token minted and handed out");
        Ok((account, Some(token)))
    }

    /// Mints `amount` on the paid quote `quote_id` (locked to the mint's own key) and returns
    /// the token and its proofs' (Y, amount).
    async fn issue(
        &self,
        quote_id: &str,
        amount: u64,
        memo: Option<String>,
    ) -> Result<(String, Vec<(String, u64)>), AllowanceError> {
        let quote = QuoteId::from_str(quote_id)
            .map_err(|e| AllowanceError::Storage(format!("quote id: {e}")))?;
        let keyset = self
            .mint
            .keysets()
            .keysets
            .into_iter()
            .find(|k| k.active && k.unit == CurrencyUnit::Sat)
            .ok_or_else(|| AllowanceError::Storage("no active sat keyset".into()))?;
        let keys = self
            .mint
            .keyset(&keyset.id)
            .ok_or_else(|| AllowanceError::Storage("active keyset has no keys".into()))?
            .keys;
        let amounts: Vec<u64> = keys.iter().map(|(a, _)| u64::from(*a)).collect();
        let fee_and_amounts = FeeAndAmounts::from((keyset.input_fee_ppk, amounts));
        let premint = PreMintSecrets::random(
            keyset.id,
            Amount::from(amount),
            &SplitTarget::None,
            &fee_and_amounts,
        )
        .map_err(|e| AllowanceError::Storage(format!("outputs: {e}")))?;
        let mut request = MintRequest {
            quote,
            outputs: premint.blinded_messages(),
            signature: None,
        };
        request
            .sign(&self.internal_key)
            .map_err(|e| AllowanceError::Storage(format!("quote signature: {e}")))?;
        let response = self
            .mint
            .process_mint_request(MintInput::Single(request))
            .await?;
        let proofs = construct_proofs(response.signatures, premint.rs(), premint.secrets(), &keys)
            .map_err(|e| AllowanceError::Storage(format!("unblinding: {e}")))?;
        let mut ys = Vec::with_capacity(proofs.len());
        for p in &proofs {
            let y = p
                .y()
                .map_err(|e| AllowanceError::Storage(format!("proof Y: {e}")))?;
            ys.push((y.to_hex(), u64::from(p.amount)));
        }
        let token = Token::new(self.mint_url.clone(), proofs, memo, CurrencyUnit::Sat);
        Ok((token.to_string(), ys))
    }

    /// The unspent part of a delivered prepaid token, from the mint's proof states (NUT-07).
    pub async fn prepaid_unspent(&self, ys: &[(String, u64)]) -> Result<u64, AllowanceError> {
        if ys.is_empty() {
            return Ok(0);
        }
        let mut keys = Vec::with_capacity(ys.len());
        for (y, _) in ys {
            keys.push(
                cdk::nuts::PublicKey::from_hex(y)
                    .map_err(|e| AllowanceError::Storage(format!("stored Y: {e}")))?,
            );
        }
        let states = self.mint.localstore().get_proofs_states(&keys).await?;
        Ok(ys
            .iter()
            .zip(states)
            .filter(|(_, s)| !matches!(s, Some(State::Spent) | Some(State::Pending)))
            .map(|((_, a), _)| *a)
            .fold(0u64, u64::saturating_add))
    }
}
