//! The simulated network over HTTP, and the mint backend on it, on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cdk_common::bitcoin::hashes::{sha256, Hash};
use cdk_common::common::FeeReserve;
use cdk_common::nuts::{CurrencyUnit, MeltQuoteState};
use cdk_common::payment::{
    Bolt11IncomingPaymentOptions, Bolt11OutgoingPaymentOptions, Event, IncomingPaymentOptions,
    MintPayment, OutgoingPaymentOptions, PaymentIdentifier,
};
use cdk_common::{Amount, Bolt11Invoice, QuoteId};
use futures::StreamExt;
use lnsim::api::{
    CreateInvoice, InvoiceBehaviour, InvoiceState, NodeSettings, PayInvoice, PaymentStatus,
};
use lnsim::backend::LnsimBackend;
use lnsim::client::NodeClient;

const DEADLINE: Duration = Duration::from_secs(10);

async fn network() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = lnsim::server::router(lnsim::network::Network::new());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

async fn node(url: &str, name: &str) -> NodeClient {
    let c = NodeClient::new(url, name).unwrap();
    c.put(&NodeSettings::default()).await.unwrap();
    c
}

fn invoice(amount_sat: u64, behaviour: InvoiceBehaviour) -> CreateInvoice {
    CreateInvoice {
        amount_msat: amount_sat * 1000,
        description: "test".into(),
        expiry_secs: None,
        behaviour,
    }
}

fn pay(bolt11: &str) -> PayInvoice {
    PayInvoice {
        bolt11: bolt11.into(),
        max_fee_msat: None,
    }
}

#[tokio::test]
async fn a_payment_moves_funds_and_reveals_the_preimage_of_the_hash() {
    let url = network().await;
    let (alice, bob) = (node(&url, "alice").await, node(&url, "bob").await);
    alice
        .put(&NodeSettings {
            fee_base_msat: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    let (a0, b0) = (
        alice.info().await.unwrap().balance_msat,
        bob.info().await.unwrap().balance_msat,
    );
    let inv = bob
        .create_invoice(&invoice(21, Default::default()))
        .await
        .unwrap();
    // A real, signed BOLT11 invoice whose payee key is bob's.
    let parsed: Bolt11Invoice = inv.bolt11.parse().unwrap();
    assert_eq!(parsed.amount_milli_satoshis(), Some(21_000));
    assert_eq!(
        parsed.recover_payee_pub_key().to_string(),
        bob.info().await.unwrap().pubkey
    );
    assert_eq!(inv.preimage, None, "the preimage stays secret until paid");

    let paid = alice.pay(&pay(&inv.bolt11)).await.unwrap();
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    assert_eq!(paid.fee_msat, 1000);
    let preimage = hex::decode(paid.preimage.unwrap()).unwrap();
    assert_eq!(
        sha256::Hash::hash(&preimage).to_byte_array(),
        *parsed.payment_hash().as_byte_array()
    );
    assert_eq!(alice.info().await.unwrap().balance_msat, a0 - 22_000);
    assert_eq!(bob.info().await.unwrap().balance_msat, b0 + 21_000);
    assert_eq!(
        bob.invoice(&inv.payment_hash).await.unwrap().state,
        InvoiceState::Paid
    );
    // Paying again returns the same payment; nobody else can pay it twice.
    assert_eq!(
        alice.pay(&pay(&inv.bolt11)).await.unwrap().status,
        PaymentStatus::Succeeded
    );
    let carol = node(&url, "carol").await;
    let again = carol.pay(&pay(&inv.bolt11)).await.unwrap();
    assert_eq!(again.status, PaymentStatus::Failed);
    assert_eq!(alice.info().await.unwrap().balance_msat, a0 - 22_000);
}

#[tokio::test]
async fn a_delayed_payment_is_pending_then_settles_and_the_feed_reports_it() {
    let url = network().await;
    let (alice, bob) = (node(&url, "alice").await, node(&url, "bob").await);
    let inv = bob
        .create_invoice(&invoice(
            5,
            InvoiceBehaviour {
                settle_delay_ms: Some(300),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let first = alice.pay(&pay(&inv.bolt11)).await.unwrap();
    assert_eq!(first.status, PaymentStatus::Pending);
    assert_eq!(first.preimage, None);
    // The long poll wakes when the invoice settles.
    let feed = bob.settled(0, DEADLINE).await.unwrap();
    assert_eq!(feed.next, 1);
    assert_eq!(feed.invoices[0].payment_hash, inv.payment_hash);
    let done = alice.payment(&inv.payment_hash).await.unwrap();
    assert_eq!(done.status, PaymentStatus::Succeeded);
    assert_eq!(done.preimage, feed.invoices[0].preimage);
    // Nothing new after position 1.
    let empty = bob.settled(1, Duration::from_millis(50)).await.unwrap();
    assert!(empty.invoices.is_empty());
    assert_eq!(empty.next, 1);
}

#[tokio::test]
async fn a_failed_payment_returns_the_funds_and_unknown_payees_have_no_route() {
    let url = network().await;
    let (alice, bob) = (node(&url, "alice").await, node(&url, "bob").await);
    let a0 = alice.info().await.unwrap().balance_msat;
    let inv = bob
        .create_invoice(&invoice(
            7,
            InvoiceBehaviour {
                fail: true,
                settle_delay_ms: Some(100),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(
        alice.pay(&pay(&inv.bolt11)).await.unwrap().status,
        PaymentStatus::Pending
    );
    let start = Instant::now();
    loop {
        let p = alice.payment(&inv.payment_hash).await.unwrap();
        if p.status == PaymentStatus::Failed {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "payment never failed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(alice.info().await.unwrap().balance_msat, a0);
    assert_eq!(
        bob.invoice(&inv.payment_hash).await.unwrap().state,
        InvoiceState::Open
    );

    let foreign = cdk_fake_invoice();
    let p = alice.pay(&pay(&foreign)).await.unwrap();
    assert_eq!(p.status, PaymentStatus::Failed);
    assert!(p.failure.unwrap().contains("no route"));

    // A fee above the payer's limit fails before anything moves.
    let fee = bob
        .create_invoice(&invoice(
            3,
            InvoiceBehaviour {
                fee_msat: Some(5000),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let p = alice
        .pay(&PayInvoice {
            bolt11: fee.bolt11,
            max_fee_msat: Some(4000),
        })
        .await
        .unwrap();
    assert_eq!(p.status, PaymentStatus::Failed);
    assert_eq!(alice.info().await.unwrap().balance_msat, a0);
}

/// An invoice signed by a key no node of the network holds.
fn cdk_fake_invoice() -> String {
    use cdk_common::bitcoin::secp256k1::{Secp256k1, SecretKey};
    use cdk_common::lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
    let key = SecretKey::from_slice(&[3u8; 32]).unwrap();
    InvoiceBuilder::new(Currency::Regtest)
        .description("elsewhere".into())
        .payment_hash(sha256::Hash::hash(b"x"))
        .payment_secret(PaymentSecret([1; 32]))
        .amount_milli_satoshis(1000)
        .current_timestamp()
        .min_final_cltv_expiry_delta(18)
        .build_signed(|h| Secp256k1::new().sign_ecdsa_recoverable(h, &key))
        .unwrap()
        .to_string()
}

fn backend(url: &str, name: &str) -> LnsimBackend {
    LnsimBackend::new(
        NodeClient::new(url, name).unwrap(),
        FeeReserve {
            min_fee_reserve: Amount::from(2),
            percent_fee_reserve: 0.02,
        },
    )
}

#[tokio::test]
async fn the_backend_announces_incoming_payments_and_pays_with_preimages() {
    let url = network().await;
    let (_mint, merchant) = (node(&url, "mint").await, node(&url, "merchant").await);
    let payer = node(&url, "payer").await;
    let mint = backend(&url, "mint");
    let mut events = mint.wait_payment_event().await.unwrap();

    // Incoming: a mint quote's invoice paid by another node reaches the event stream.
    let created = mint
        .create_incoming_payment_request(IncomingPaymentOptions::Bolt11(
            Bolt11IncomingPaymentOptions {
                description: Some("quote".into()),
                amount: Amount::new(100, CurrencyUnit::Sat),
                unix_expiry: None,
            },
        ))
        .await
        .unwrap();
    assert!(mint
        .check_incoming_payment_status(&created.request_lookup_id)
        .await
        .unwrap()
        .is_empty());
    payer.pay(&pay(&created.request)).await.unwrap();
    let event = tokio::time::timeout(DEADLINE, events.next())
        .await
        .unwrap()
        .unwrap();
    let Event::PaymentReceived(r) = event else {
        panic!("expected a received payment, got {event:?}")
    };
    assert_eq!(r.payment_identifier, created.request_lookup_id);
    assert_eq!(r.payment_amount, Amount::new(100, CurrencyUnit::Sat));
    assert_eq!(
        mint.check_incoming_payment_status(&created.request_lookup_id)
            .await
            .unwrap()
            .len(),
        1
    );

    // Outgoing: the quote's fee reserve, then a payment whose proof is the preimage.
    let inv = merchant
        .create_invoice(&invoice(50, Default::default()))
        .await
        .unwrap();
    let bolt11: Bolt11Invoice = inv.bolt11.parse().unwrap();
    let opts = || {
        OutgoingPaymentOptions::Bolt11(Box::new(Bolt11OutgoingPaymentOptions {
            bolt11: bolt11.clone(),
            max_fee_amount: Some(Amount::new(2, CurrencyUnit::Sat)),
            timeout_secs: None,
            melt_options: None,
            quote_id: QuoteId::new(),
        }))
    };
    let quote = mint
        .get_payment_quote(&CurrencyUnit::Sat, opts())
        .await
        .unwrap();
    assert_eq!(quote.amount, Amount::new(50, CurrencyUnit::Sat));
    assert_eq!(quote.fee, Amount::new(2, CurrencyUnit::Sat));
    let paid = mint.make_payment(&CurrencyUnit::Sat, opts()).await.unwrap();
    assert_eq!(paid.status, MeltQuoteState::Paid);
    let preimage = hex::decode(paid.payment_proof.unwrap()).unwrap();
    assert_eq!(
        sha256::Hash::hash(&preimage).to_byte_array(),
        *bolt11.payment_hash().as_byte_array()
    );
    let lookup = PaymentIdentifier::PaymentHash(*bolt11.payment_hash().as_byte_array());
    assert_eq!(
        mint.check_outgoing_payment(&lookup).await.unwrap().status,
        MeltQuoteState::Paid
    );
    // Never tried: final, not paid.
    let never = PaymentIdentifier::PaymentHash([9; 32]);
    assert_eq!(
        mint.check_outgoing_payment(&never).await.unwrap().status,
        MeltQuoteState::Unpaid
    );
}

#[tokio::test]
async fn a_pending_melt_is_announced_when_it_settles() {
    let url = network().await;
    let (_mint, merchant) = (node(&url, "mint").await, node(&url, "merchant").await);
    let mint = backend(&url, "mint");
    let mut events = mint.wait_payment_event().await.unwrap();
    let inv = merchant
        .create_invoice(&invoice(
            10,
            InvoiceBehaviour {
                settle_delay_ms: Some(200),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let quote_id = QuoteId::new();
    let paid = mint
        .make_payment(
            &CurrencyUnit::Sat,
            OutgoingPaymentOptions::Bolt11(Box::new(Bolt11OutgoingPaymentOptions {
                bolt11: inv.bolt11.parse().unwrap(),
                max_fee_amount: Some(Amount::new(2, CurrencyUnit::Sat)),
                timeout_secs: None,
                melt_options: None,
                quote_id: quote_id.clone(),
            })),
        )
        .await
        .unwrap();
    assert_eq!(paid.status, MeltQuoteState::Pending);
    let event = tokio::time::timeout(DEADLINE, events.next())
        .await
        .unwrap()
        .unwrap();
    let Event::PaymentSuccessful {
        quote_id: q,
        details,
    } = event
    else {
        panic!("expected a successful payment, got {event:?}")
    };
    assert_eq!(q, quote_id);
    assert_eq!(details.status, MeltQuoteState::Paid);
    assert_eq!(details.total_spent, Amount::new(10, CurrencyUnit::Sat));
    assert!(details.payment_proof.is_some());
}
