//! Prepaid allowances: once the invoice is paid, the mint mints the token itself, through the
//! Mint API with blinded messages it makes (the quote is locked to the mint's own key), and
//! hands it out once. It keeps the proofs' Y values, never the token.
//!
//! The outputs' secrets and blinding factors are derived (NUT-13) from a seed that only the
//! mint can make (its internal key and the allowance id), so a crash between the signing and
//! the handing out loses nothing: the next claim makes the same outputs and, the quote being
//! issued already, reads their signatures back (NUT-09 restore) instead of signing again.
//! (The mint could re-derive the token later; it gives it no power it lacks: it minted the
//! token, and it decides what it redeems.)

use std::str::FromStr;

use cdk::amount::{FeeAndAmounts, SplitTarget};
use cdk::dhke::construct_proofs;
use cdk::mint::MintInput;
use cdk::nuts::{
    CurrencyUnit, Id, MintQuoteState, MintRequest, PreMintSecrets, RestoreRequest, State, Token,
};
use cdk::util::unix_time;
use cdk::Amount;
use cdk_common::bitcoin::hashes::hmac::{Hmac, HmacEngine};
use cdk_common::bitcoin::hashes::{sha512, Hash, HashEngine};
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
        if !claimable {
            return Ok((account, None));
        }
        match self.quote_state(&p.quote_id).await? {
            Some(MintQuoteState::Paid) => {}
            // Signed by a claim that died before handing the token out.
            Some(MintQuoteState::Issued) if matches!(p.state, PrepaidState::Issuing { .. }) => {}
            _ => return Ok((account, None)),
        }
        let active = self.active_sat_keyset()?;
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
                if p.keyset.is_none() {
                    p.keyset = Some(active.to_string());
                }
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
        let keyset = match &p.keyset {
            Some(k) => Id::from_str(k)
                .map_err(|e| AllowanceError::Storage(format!("stored keyset id: {e}")))?,
            None => active,
        };
        let (token, ys) = match self
            .issue(
                &claimed.id,
                &p.quote_id,
                p.amount,
                keyset,
                claimed.memo.clone(),
            )
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

    fn active_sat_keyset(&self) -> Result<Id, AllowanceError> {
        self.mint
            .keysets()
            .keysets
            .into_iter()
            .find(|k| k.active && k.unit == CurrencyUnit::Sat)
            .map(|k| k.id)
            .ok_or_else(|| AllowanceError::Storage("no active sat keyset".into()))
    }

    /// The NUT-13 seed of allowance `id`'s token: only this mint can make it.
    fn prepaid_seed(&self, id: &str) -> [u8; 64] {
        let mut engine = HmacEngine::<sha512::Hash>::new(&self.internal_key.to_secret_bytes());
        engine.input(b"allowance-mint/prepaid-token/v1/");
        engine.input(id.as_bytes());
        Hmac::<sha512::Hash>::from_engine(engine).to_byte_array()
    }

    /// Mints `amount` on the quote `quote_id` (locked to the mint's own key) with the outputs
    /// derived for allowance `id` on `keyset`, or, if a claim that died signed them already,
    /// reads their signatures back. Returns the token and its proofs' (Y, amount).
    async fn issue(
        &self,
        id: &str,
        quote_id: &str,
        amount: u64,
        keyset: Id,
        memo: Option<String>,
    ) -> Result<(String, Vec<(String, u64)>), AllowanceError> {
        let quote = QuoteId::from_str(quote_id)
            .map_err(|e| AllowanceError::Storage(format!("quote id: {e}")))?;
        let info = self
            .mint
            .keysets()
            .keysets
            .into_iter()
            .find(|k| k.id == keyset)
            .ok_or_else(|| AllowanceError::Storage(format!("unknown keyset {keyset}")))?;
        let keys = self
            .mint
            .keyset(&keyset)
            .ok_or_else(|| AllowanceError::Storage("keyset has no keys".into()))?
            .keys;
        let amounts: Vec<u64> = keys.iter().map(|(a, _)| u64::from(*a)).collect();
        let fee_and_amounts = FeeAndAmounts::from((info.input_fee_ppk, amounts));
        let premint = PreMintSecrets::from_seed(
            keyset,
            0,
            &self.prepaid_seed(id),
            Amount::from(amount),
            &SplitTarget::None,
            &fee_and_amounts,
        )
        .map_err(|e| AllowanceError::Storage(format!("outputs: {e}")))?;
        let signatures = if self.quote_state(quote_id).await? == Some(MintQuoteState::Issued) {
            let restored = self
                .mint
                .restore(RestoreRequest {
                    outputs: premint.blinded_messages(),
                })
                .await?;
            if restored.signatures.len() != premint.len() {
                return Err(AllowanceError::Storage(format!(
                    "quote {quote_id} is issued but {} of its {} outputs are signed",
                    restored.signatures.len(),
                    premint.len()
                )));
            }
            tracing::warn!(allowance = %id, "prepaid token recovered from a claim that died");
            restored.signatures
        } else {
            let mut request = MintRequest {
                quote,
                outputs: premint.blinded_messages(),
                signature: None,
            };
            request
                .sign(&self.internal_key)
                .map_err(|e| AllowanceError::Storage(format!("quote signature: {e}")))?;
            self.mint
                .process_mint_request(MintInput::Single(request))
                .await?
                .signatures
        };
        let proofs = construct_proofs(signatures, premint.rs(), premint.secrets(), &keys)
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

#[cfg(test)]
#[path = "prepaid_tests.rs"]
mod tests;
