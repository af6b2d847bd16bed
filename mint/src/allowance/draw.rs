//! A draw: `POST /v1/mint/quote/allowance`, a NUT-04 mint quote of the custom method
//! `allowance`, checked and debited in one atomic step, then created and marked paid.
//!
//! 1. The request is parsed as a custom mint quote request plus [`DrawAuth`]; the quote's NUT-20
//!    `pubkey` must be the allowance's agent key and the draw signature must verify with it.
//! 2. One compare-and-swap on the account checks every bound and debits, together with a draw
//!    record keyed by the nonce (so a replayed request is refused).
//! 3. cdk creates the quote; the processor ties it to the draw record.
//! 4. The quote is checked once, which makes cdk ask the processor and mark it paid; the
//!    answer already says `PAID`. The agent mints it with a NUT-20 signed mint request.
//!
//! If cdk refuses the quote, the draw is given back at once. If the process dies between 2 and
//! 3, the sweeper gives it back later (no quote refers to it).
//!
//! The same signed request again (same nonce and amount) is answered with the same quote and
//! debits nothing: that is how an agent that crashed before it stored the answer gets it back.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cashu_402::allowance::{DrawAuth, DRAW_CLOCK_SKEW_SECS, METHOD};
use cdk::mint::{MintQuoteRequest, MintQuoteResponse};
use cdk::nuts::{CurrencyUnit, MintQuoteCustomRequest, PaymentMethod};
use cdk::util::unix_time;
use cdk_common::payment::PaymentIdentifier;
use cdk_common::QuoteId;

use super::error::AllowanceError;
use super::model::{event, DrawRecord};
use super::policy::{self, Refusal};
use super::processor::draw_key;
use super::registry::Effects;
use super::service::{metered_mut, Allowances};

/// A debited draw whose quote does not exist this long after is given back by the sweeper.
pub const STALE_DRAW_SECS: u64 = 120;

/// The route handler.
pub async fn handler(
    State(allowances): State<Allowances>,
    Json(body): Json<serde_json::Value>,
) -> Response {
    match allowances.draw(body).await {
        Ok(response) => Json(response).into_response(),
        Err(e) => e.into_response(),
    }
}

impl Allowances {
    /// Checks, debits and creates a paid draw quote (see the module docs).
    pub async fn draw(
        &self,
        body: serde_json::Value,
    ) -> Result<cdk::nuts::MintQuoteCustomResponse<QuoteId>, AllowanceError> {
        let request: MintQuoteCustomRequest = serde_json::from_value(body.clone())
            .map_err(|e| AllowanceError::Invalid(format!("not a mint quote request: {e}")))?;
        let auth: DrawAuth = serde_json::from_value(body).map_err(|e| {
            Refusal::BadSignature(format!("missing allowance, nonce, time or signature ({e})"))
        })?;
        if request.unit != CurrencyUnit::Sat {
            return Err(AllowanceError::Invalid("allowances are in sat".into()));
        }
        let amount = request.amount.map(u64::from).unwrap_or(0);
        if amount == 0 {
            return Err(AllowanceError::Invalid(
                "amount must be at least 1 sat".into(),
            ));
        }
        let Some(pubkey) = request.pubkey else {
            return Err(Refusal::BadSignature(
                "the quote must be locked (NUT-20 pubkey) to the agent key".into(),
            )
            .into());
        };
        let account = self
            .registry
            .get(&auth.allowance)
            .await?
            .filter(|a| a.metered.is_some())
            .ok_or(Refusal::Unknown)?;
        let agent = account
            .metered
            .as_ref()
            .map(|m| m.agent_pubkey.clone())
            .unwrap_or_default();
        if pubkey.to_hex() != agent {
            return Err(
                Refusal::BadSignature("the quote pubkey is not the agent key".into()).into(),
            );
        }
        auth.verify(amount, &CurrencyUnit::Sat.to_string(), &pubkey)
            .map_err(|e| Refusal::BadSignature(e.to_string()))?;
        let key = draw_key(&auth.allowance, &auth.nonce);
        if let Some(record) = self.registry.draw(&key).await? {
            // The agent key signed this very draw before: an agent that lost the answer (a
            // crash, a dropped connection) asks again and gets the same quote, at any age.
            return self.replayed_draw(&key, &record, amount).await;
        }
        let now = unix_time();
        if now.abs_diff(auth.time) > DRAW_CLOCK_SKEW_SECS {
            return Err(Refusal::BadSignature(format!(
                "time is more than {DRAW_CLOCK_SKEW_SECS} s from the mint's clock"
            ))
            .into());
        }

        let record = DrawRecord {
            allowance: auth.allowance.clone(),
            amount,
            pubkey: agent,
            time: now,
            live: true,
        };
        self.registry
            .update(&auth.allowance, |a| {
                let m = metered_mut(a)?;
                policy::debit_draw(m, amount, now, &key)?;
                let effects = Effects {
                    events: vec![event(now, "draw", amount, 0, "")],
                    new_draw: Some((key.clone(), record.clone())),
                    put_draws: vec![],
                };
                Ok(((), effects))
            })
            .await?;
        tracing::info!(allowance = %auth.allowance, amount, "draw debited");

        let quote = self
            .mint
            .get_mint_quote(MintQuoteRequest::Custom {
                method: PaymentMethod::from(METHOD.to_string()),
                request,
            })
            .await;
        let quote_id = match quote {
            Ok(MintQuoteResponse::Custom { response, .. }) => response.quote,
            Ok(_) => {
                self.release_draw(&auth.allowance, &key).await?;
                return Err(AllowanceError::Storage("not a custom quote".into()));
            }
            Err(e) => {
                self.release_draw(&auth.allowance, &key).await?;
                return Err(e.into());
            }
        };
        let checked = self.mint.check_mint_quote(&quote_id).await?;
        if let Err(e) = self.bind_draw(&auth.allowance, &key).await {
            tracing::warn!(error = %e, "draw not marked bound; the sweeper will");
        }
        match checked {
            MintQuoteResponse::Custom { response, .. } => Ok(response),
            _ => Err(AllowanceError::Storage("not a custom quote".into())),
        }
    }

    /// The answer to a draw request signed before: the quote it made, checked again. A draw
    /// that was given back, or a different amount under the same nonce, is refused.
    async fn replayed_draw(
        &self,
        key: &str,
        record: &DrawRecord,
        amount: u64,
    ) -> Result<cdk::nuts::MintQuoteCustomResponse<QuoteId>, AllowanceError> {
        if !record.live || record.amount != amount {
            return Err(Refusal::BadSignature("this nonce was used before".into()).into());
        }
        let lookup = PaymentIdentifier::CustomId(key.to_string());
        let Some(quote) = self
            .mint
            .localstore()
            .get_mint_quote_by_request_lookup_id(&lookup)
            .await?
        else {
            // The first request is still making its quote.
            return Err(Refusal::Busy.into());
        };
        match self.mint.check_mint_quote(&quote.id).await? {
            MintQuoteResponse::Custom { response, .. } => Ok(response),
            _ => Err(AllowanceError::Storage("not a custom quote".into())),
        }
    }

    /// Gives a debited draw back: its quote was never made. Its record stops paying.
    pub async fn release_draw(&self, id: &str, key: &str) -> Result<(), AllowanceError> {
        let Some(mut record) = self.registry.draw(key).await? else {
            return Ok(());
        };
        record.live = false;
        let (_, released) = self
            .registry
            .update(id, |a| {
                let m = metered_mut(a)?;
                match policy::release_draw(m, key) {
                    Some(amount) => Ok((
                        Some(amount),
                        Effects {
                            events: vec![event(unix_time(), "draw_released", amount, 0, "")],
                            new_draw: None,
                            put_draws: vec![(key.to_string(), record.clone())],
                        },
                    )),
                    None => Ok((None, Effects::default())),
                }
            })
            .await?;
        if let Some(amount) = released {
            tracing::info!(allowance = %id, amount, "draw given back");
        }
        Ok(())
    }

    /// The draw's quote exists: it stays debited for good.
    async fn bind_draw(&self, id: &str, key: &str) -> Result<(), AllowanceError> {
        self.registry
            .update(id, |a| {
                let m = metered_mut(a)?;
                m.pending_draws.retain(|d| d.key != key);
                Ok(((), Effects::default()))
            })
            .await?;
        Ok(())
    }

    /// Binds or gives back the draws of `id` left pending longer than [`STALE_DRAW_SECS`].
    pub async fn settle_stale_draws(&self, id: &str) -> Result<(), AllowanceError> {
        let Some(account) = self.registry.get(id).await? else {
            return Ok(());
        };
        let now = unix_time();
        let stale: Vec<String> = account
            .metered
            .iter()
            .flat_map(|m| m.pending_draws.iter())
            .filter(|d| d.time + STALE_DRAW_SECS < now)
            .map(|d| d.key.clone())
            .collect();
        for key in stale {
            let lookup = PaymentIdentifier::CustomId(key.clone());
            let quote = self
                .mint
                .localstore()
                .get_mint_quote_by_request_lookup_id(&lookup)
                .await?;
            if quote.is_some() {
                self.bind_draw(id, &key).await?;
            } else {
                self.release_draw(id, &key).await?;
            }
        }
        Ok(())
    }
}
