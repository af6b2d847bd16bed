//! cdk's `MintPayment` on a node of the simulated network: the mint's invoices are that node's,
//! its melts are that node's payments, and a melt's proof of payment is the payee's preimage.
//!
//! Incoming payments reach the mint through a long poll of the node's settled feed. A payment
//! that is still pending when `make_payment` returns is watched until it ends, and its outcome
//! is announced on the same event stream (`PaymentSuccessful` / `PaymentFailed`), as cdk expects
//! of asynchronous backends; `check_outgoing_payment` answers from the node at any time.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cdk_common::bitcoin::hashes::Hash;
use cdk_common::common::FeeReserve;
use cdk_common::nuts::{CurrencyUnit, MeltOptions, MeltQuoteState};
use cdk_common::payment::{
    self, Bolt11Settings, CreateIncomingPaymentResponse, Event, IncomingPaymentOptions,
    MakePaymentResponse, MintPayment, OutgoingPaymentOptions, PaymentIdentifier,
    PaymentQuoteResponse, SettingsResponse, WaitPaymentResponse,
};
use cdk_common::{Amount, QuoteId};
use futures::Stream;
use tokio::sync::{broadcast, watch};

use crate::api::{CreateInvoice, InvoiceState, InvoiceView, PayInvoice, PaymentStatus};
use crate::client::{ClientError, NodeClient};

/// How long one long poll of the settled feed waits.
const FEED_WAIT: Duration = Duration::from_secs(10);
/// Pause after the network did not answer, before asking again.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// How often a pending outgoing payment is looked at.
const WATCH_INTERVAL: Duration = Duration::from_millis(50);

fn backend_error(e: ClientError) -> payment::Error {
    payment::Error::Backend(Box::new(e))
}

/// The mint's node on the simulated network.
#[derive(Clone)]
pub struct LnsimBackend {
    client: NodeClient,
    fee_reserve: FeeReserve,
    /// Position in the node's settled feed that the mint has seen.
    cursor: Arc<AtomicU64>,
    outgoing: broadcast::Sender<Event>,
    active: Arc<AtomicBool>,
    cancel: Arc<watch::Sender<bool>>,
}

impl LnsimBackend {
    pub fn new(client: NodeClient, fee_reserve: FeeReserve) -> Self {
        let (outgoing, _) = broadcast::channel(64);
        let (cancel, _) = watch::channel(false);
        Self {
            client,
            fee_reserve,
            cursor: Arc::new(AtomicU64::new(0)),
            outgoing,
            active: Arc::new(AtomicBool::new(false)),
            cancel: Arc::new(cancel),
        }
    }

    fn fee_for(&self, amount_sat: u64) -> u64 {
        let percent = (amount_sat as f64 * f64::from(self.fee_reserve.percent_fee_reserve)).ceil();
        u64::from(self.fee_reserve.min_fee_reserve).max(percent as u64)
    }

    /// Watches a pending payment until it ends and announces the outcome to the mint.
    fn watch(&self, hash: String, quote_id: QuoteId) {
        let client = self.client.clone();
        let events = self.outgoing.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH_INTERVAL).await;
                let view = match client.payment(&hash).await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "lnsim: cannot look at a pending payment");
                        continue;
                    }
                };
                let event = match view.status {
                    PaymentStatus::Pending => continue,
                    PaymentStatus::Succeeded => Event::PaymentSuccessful {
                        quote_id,
                        details: outgoing_response(&view),
                    },
                    PaymentStatus::Failed => Event::PaymentFailed {
                        quote_id,
                        reason: view.failure.unwrap_or_else(|| "payment failed".into()),
                    },
                };
                // Nobody listening is fine: the mint also asks `check_outgoing_payment`.
                let _ = events.send(event);
                return;
            }
        });
    }
}

fn hash_of(id: &PaymentIdentifier) -> Result<String, payment::Error> {
    match id {
        PaymentIdentifier::PaymentHash(h) => Ok(hex::encode(h)),
        _ => Err(payment::Error::UnsupportedPaymentOption),
    }
}

fn sat_up(msat: u64) -> u64 {
    msat.div_ceil(1000)
}

fn outgoing_response(view: &crate::api::PaymentView) -> MakePaymentResponse {
    let (status, spent) = match view.status {
        PaymentStatus::Succeeded => (
            MeltQuoteState::Paid,
            sat_up(view.amount_msat + view.fee_msat),
        ),
        PaymentStatus::Pending => (MeltQuoteState::Pending, 0),
        PaymentStatus::Failed => (MeltQuoteState::Failed, 0),
    };
    let hash = hex::decode(&view.payment_hash)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .unwrap_or_default();
    MakePaymentResponse {
        payment_lookup_id: PaymentIdentifier::PaymentHash(hash),
        payment_proof: view.preimage.clone(),
        status,
        total_spent: Amount::new(spent, CurrencyUnit::Sat),
    }
}

fn received(inv: &InvoiceView) -> Result<WaitPaymentResponse, payment::Error> {
    let hash = hex::decode(&inv.payment_hash).map_err(|_| payment::Error::InvalidHash)?;
    let hash: [u8; 32] = hash.try_into().map_err(|_| payment::Error::InvalidHash)?;
    Ok(WaitPaymentResponse {
        payment_identifier: PaymentIdentifier::PaymentHash(hash),
        payment_amount: Amount::new(inv.amount_msat / 1000, CurrencyUnit::Sat),
        payment_id: inv.payment_hash.clone(),
    })
}

fn check_unit(unit: &CurrencyUnit) -> Result<(), payment::Error> {
    if *unit == CurrencyUnit::Sat {
        Ok(())
    } else {
        Err(payment::Error::UnsupportedUnit)
    }
}

/// The amount a BOLT11 melt pays, in msat.
fn outgoing_msat(opts: &payment::Bolt11OutgoingPaymentOptions) -> Result<u64, payment::Error> {
    let invoice = opts.bolt11.amount_milli_satoshis();
    match (&opts.melt_options, invoice) {
        (None, Some(msat)) => Ok(msat),
        (Some(MeltOptions::Amountless { amountless }), Some(msat))
            if u64::from(amountless.amount_msat) == msat =>
        {
            Ok(msat)
        }
        (Some(MeltOptions::Amountless { .. }), Some(_)) => Err(payment::Error::AmountMismatch),
        // The simulated network has neither amountless invoices nor multi-part payments.
        _ => Err(payment::Error::UnsupportedPaymentOption),
    }
}

struct FeedState {
    backend: LnsimBackend,
    outgoing: broadcast::Receiver<Event>,
    cancel: watch::Receiver<bool>,
    ready: VecDeque<Event>,
}

#[async_trait]
impl MintPayment for LnsimBackend {
    type Err = payment::Error;

    async fn stop(&self) -> Result<(), Self::Err> {
        self.cancel_payment_event_stream();
        Ok(())
    }

    async fn get_settings(&self) -> Result<SettingsResponse, Self::Err> {
        Ok(SettingsResponse {
            unit: CurrencyUnit::Sat.to_string(),
            bolt11: Some(Bolt11Settings {
                mpp: false,
                amountless: false,
                invoice_description: true,
            }),
            bolt12: None,
            onchain: None,
            custom: Default::default(),
        })
    }

    async fn create_incoming_payment_request(
        &self,
        options: IncomingPaymentOptions,
    ) -> Result<CreateIncomingPaymentResponse, Self::Err> {
        let IncomingPaymentOptions::Bolt11(opts) = options else {
            return Err(payment::Error::UnsupportedPaymentOption);
        };
        check_unit(opts.amount.unit())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let expiry_secs = opts.unix_expiry.map(|t| t.saturating_sub(now).max(1));
        let invoice = self
            .client
            .create_invoice(&CreateInvoice {
                amount_msat: opts.amount.value() * 1000,
                description: opts.description.unwrap_or_default(),
                expiry_secs,
                behaviour: Default::default(),
            })
            .await
            .map_err(backend_error)?;
        let lookup = received(&invoice)?.payment_identifier;
        Ok(CreateIncomingPaymentResponse {
            request_lookup_id: lookup,
            request: invoice.bolt11,
            expiry: Some(invoice.expires_at),
            extra_json: None,
        })
    }

    async fn get_payment_quote(
        &self,
        unit: &CurrencyUnit,
        options: OutgoingPaymentOptions,
    ) -> Result<PaymentQuoteResponse, Self::Err> {
        check_unit(unit)?;
        let OutgoingPaymentOptions::Bolt11(opts) = options else {
            return Err(payment::Error::UnsupportedPaymentOption);
        };
        let amount = sat_up(outgoing_msat(&opts)?);
        Ok(PaymentQuoteResponse {
            request_lookup_id: Some(PaymentIdentifier::PaymentHash(
                opts.bolt11.payment_hash().to_byte_array(),
            )),
            amount: Amount::new(amount, CurrencyUnit::Sat),
            fee: Amount::new(self.fee_for(amount), CurrencyUnit::Sat),
            state: MeltQuoteState::Unpaid,
            extra_json: None,
            estimated_blocks: None,
            fee_options: None,
        })
    }

    async fn make_payment(
        &self,
        unit: &CurrencyUnit,
        options: OutgoingPaymentOptions,
    ) -> Result<MakePaymentResponse, Self::Err> {
        check_unit(unit)?;
        let OutgoingPaymentOptions::Bolt11(opts) = options else {
            return Err(payment::Error::UnsupportedPaymentOption);
        };
        outgoing_msat(&opts)?;
        let view = self
            .client
            .pay(&PayInvoice {
                bolt11: opts.bolt11.to_string(),
                max_fee_msat: opts.max_fee_amount.map(|a| a.value() * 1000),
            })
            .await
            .map_err(backend_error)?;
        if view.status == PaymentStatus::Pending {
            self.watch(view.payment_hash.clone(), opts.quote_id);
        }
        Ok(outgoing_response(&view))
    }

    async fn wait_payment_event(
        &self,
    ) -> Result<Pin<Box<dyn Stream<Item = Event> + Send>>, Self::Err> {
        self.cancel.send_replace(false);
        self.active.store(true, Ordering::SeqCst);
        let state = FeedState {
            backend: self.clone(),
            outgoing: self.outgoing.subscribe(),
            cancel: self.cancel.subscribe(),
            ready: VecDeque::new(),
        };
        Ok(Box::pin(futures::stream::unfold(state, next_event)))
    }

    fn is_payment_event_stream_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    fn cancel_payment_event_stream(&self) {
        self.cancel.send_replace(true);
    }

    async fn check_incoming_payment_status(
        &self,
        payment_identifier: &PaymentIdentifier,
    ) -> Result<Vec<WaitPaymentResponse>, Self::Err> {
        let invoice = match self.client.invoice(&hash_of(payment_identifier)?).await {
            Ok(inv) => inv,
            Err(e) if e.is_not_found() => return Ok(vec![]),
            Err(e) => return Err(backend_error(e)),
        };
        if invoice.state == InvoiceState::Paid {
            Ok(vec![received(&invoice)?])
        } else {
            Ok(vec![])
        }
    }

    async fn check_outgoing_payment(
        &self,
        payment_identifier: &PaymentIdentifier,
    ) -> Result<MakePaymentResponse, Self::Err> {
        match self.client.payment(&hash_of(payment_identifier)?).await {
            Ok(view) => Ok(outgoing_response(&view)),
            // The network knows every payment its nodes ever tried: none means never tried,
            // which is final.
            Err(e) if e.is_not_found() => Ok(MakePaymentResponse {
                payment_lookup_id: payment_identifier.clone(),
                payment_proof: None,
                status: MeltQuoteState::Unpaid,
                total_spent: Amount::new(0, CurrencyUnit::Sat),
            }),
            Err(e) => Err(backend_error(e)),
        }
    }
}

/// The next event for the mint: an outgoing payment's end, or an invoice of ours settled.
async fn next_event(mut st: FeedState) -> Option<(Event, FeedState)> {
    loop {
        if let Some(event) = st.ready.pop_front() {
            return Some((event, st));
        }
        let stopped = *st.cancel.borrow_and_update();
        if stopped {
            st.backend.active.store(false, Ordering::SeqCst);
            return None;
        }
        let after = st.backend.cursor.load(Ordering::SeqCst);
        let mut pause = false;
        tokio::select! {
            changed = st.cancel.changed() => {
                if changed.is_err() {
                    return None;
                }
            }
            event = st.outgoing.recv() => match event {
                Ok(event) => st.ready.push_back(event),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            feed = st.backend.client.settled(after, FEED_WAIT) => match feed {
                Ok(feed) => {
                    for invoice in &feed.invoices {
                        match received(invoice) {
                            Ok(r) => st.ready.push_back(Event::PaymentReceived(r)),
                            Err(e) => tracing::warn!(error = %e, "lnsim: bad settled invoice"),
                        }
                    }
                    st.backend.cursor.store(feed.next, Ordering::SeqCst);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lnsim: cannot read the settled feed");
                    pause = true;
                }
            },
        }
        if pause {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}
