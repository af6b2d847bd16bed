//! The payment processor of the custom NUT-04 method `allowance`.
//!
//! A draw quote is "paid" by the allowance account, not by Lightning: the draw route debits the
//! account first and stores a draw record; this processor then only vouches for that record.
//! `create_incoming_payment_request` accepts a quote only for a live draw record of the same
//! amount and agent key, and names the record as the quote's request lookup id;
//! `check_incoming_payment_status` reports the draw as a payment while the record is live. cdk
//! asks that when the quote is checked or minted, so the quote is paid exactly when the debit
//! stands. Melts of this method are not supported.

use std::collections::HashMap;
use std::pin::Pin;

use async_trait::async_trait;
use cashu_402::allowance::{DrawAuth, METHOD};
use cdk::cdk_payment::{
    self, CreateIncomingPaymentResponse, Event, IncomingPaymentOptions, MakePaymentResponse,
    MintPayment, OutgoingPaymentOptions, PaymentIdentifier, PaymentQuoteResponse, SettingsResponse,
    WaitPaymentResponse,
};
use cdk::nuts::CurrencyUnit;
use futures::Stream;

use super::registry::Registry;

/// The processor registered for (sat, `allowance`).
pub struct AllowanceProcessor {
    registry: Registry,
}

impl AllowanceProcessor {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }
}

/// The draw record key of a draw: `<allowance id>-<nonce>`.
pub fn draw_key(allowance: &str, nonce: &str) -> String {
    format!("{allowance}-{nonce}")
}

fn refuse(reason: impl Into<String>) -> cdk_payment::Error {
    cdk_payment::Error::Custom(reason.into())
}

#[async_trait]
impl MintPayment for AllowanceProcessor {
    type Err = cdk_payment::Error;

    async fn get_settings(&self) -> Result<SettingsResponse, Self::Err> {
        Ok(SettingsResponse {
            unit: CurrencyUnit::Sat.to_string(),
            bolt11: None,
            bolt12: None,
            onchain: None,
            custom: HashMap::from([(METHOD.to_string(), "{}".to_string())]),
        })
    }

    async fn create_incoming_payment_request(
        &self,
        options: IncomingPaymentOptions,
    ) -> Result<CreateIncomingPaymentResponse, Self::Err> {
        let IncomingPaymentOptions::Custom(c) = options else {
            return Err(cdk_payment::Error::UnsupportedPaymentOption);
        };
        let extra = c.extra_json.as_deref().unwrap_or("{}");
        let auth: DrawAuth = serde_json::from_str(extra)?;
        let key = draw_key(&auth.allowance, &auth.nonce);
        let record = self
            .registry
            .draw(&key)
            .await
            .map_err(|e| refuse(e.to_string()))?
            .ok_or_else(|| refuse("no debited draw for this quote"))?;
        let amount = c.amount.as_ref().map(|a| a.value()).unwrap_or(0);
        let pubkey = c.pubkey.map(|p| p.to_hex()).unwrap_or_default();
        if !record.live || record.amount != amount || record.pubkey != pubkey {
            return Err(refuse("the quote does not match its debited draw"));
        }
        Ok(CreateIncomingPaymentResponse {
            request_lookup_id: PaymentIdentifier::CustomId(key.clone()),
            request: format!("{METHOD}:{key}"),
            expiry: c.unix_expiry,
            extra_json: None,
        })
    }

    async fn get_payment_quote(
        &self,
        _unit: &CurrencyUnit,
        _options: OutgoingPaymentOptions,
    ) -> Result<PaymentQuoteResponse, Self::Err> {
        Err(cdk_payment::Error::UnsupportedPaymentOption)
    }

    async fn make_payment(
        &self,
        _unit: &CurrencyUnit,
        _options: OutgoingPaymentOptions,
    ) -> Result<MakePaymentResponse, Self::Err> {
        Err(cdk_payment::Error::UnsupportedPaymentOption)
    }

    async fn wait_payment_event(
        &self,
    ) -> Result<Pin<Box<dyn Stream<Item = Event> + Send>>, Self::Err> {
        // Draws are reported by `check_incoming_payment_status` only.
        Ok(Box::pin(futures::stream::pending()))
    }

    fn is_payment_event_stream_active(&self) -> bool {
        true
    }

    fn cancel_payment_event_stream(&self) {}

    async fn check_incoming_payment_status(
        &self,
        payment_identifier: &PaymentIdentifier,
    ) -> Result<Vec<WaitPaymentResponse>, Self::Err> {
        let PaymentIdentifier::CustomId(key) = payment_identifier else {
            return Ok(vec![]);
        };
        let record = self
            .registry
            .draw(key)
            .await
            .map_err(|e| refuse(e.to_string()))?;
        Ok(match record {
            Some(r) if r.live => vec![WaitPaymentResponse {
                payment_identifier: payment_identifier.clone(),
                payment_amount: cdk::Amount::new(r.amount, CurrencyUnit::Sat),
                payment_id: key.clone(),
            }],
            _ => vec![],
        })
    }

    async fn check_outgoing_payment(
        &self,
        _payment_identifier: &PaymentIdentifier,
    ) -> Result<MakePaymentResponse, Self::Err> {
        Err(cdk_payment::Error::UnsupportedPaymentOption)
    }
}
