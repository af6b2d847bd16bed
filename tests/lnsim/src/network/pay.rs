//! Payments between nodes: the checks a real node makes before sending, then settlement (the
//! payee is paid, the payer learns the preimage) or failure (the payer gets its funds back),
//! at once or after a delay.

use std::time::Duration;

use cdk_common::bitcoin::hashes::Hash;
use cdk_common::bitcoin::secp256k1::PublicKey;
use cdk_common::lightning_invoice::Bolt11Invoice;

use super::{now_secs, parse_hash, payment_view, Network, NetworkError, Payment, State};
use crate::api::{PayInvoice, PaymentStatus, PaymentView};

impl Network {
    /// `payer` pays `req.bolt11`. Paying an invoice again returns the first attempt. A payment
    /// with a delay comes back pending and settles (or fails) by itself later.
    pub fn pay(&self, payer: &str, req: &PayInvoice) -> Result<PaymentView, NetworkError> {
        let invoice: Bolt11Invoice = req
            .bolt11
            .trim()
            .parse()
            .map_err(|e| NetworkError::BadInvoice(format!("{e}")))?;
        let hash = invoice.payment_hash().to_byte_array();
        let payee_key = invoice.recover_payee_pub_key();
        let mut state = self.lock();
        if !state.nodes.contains_key(payer) {
            return Err(NetworkError::UnknownNode(payer.into()));
        }
        if let Some(existing) = state.nodes.get(payer).and_then(|n| n.payments.get(&hash)) {
            if existing.status != PaymentStatus::Failed {
                return Ok(payment_view(existing));
            }
        }
        let attempt = plan(&state, payer, &invoice, payee_key, req.max_fee_msat);
        let payer_node = state
            .nodes
            .get_mut(payer)
            .ok_or_else(|| NetworkError::UnknownNode(payer.into()))?;
        let (payment, delay) = match attempt {
            Err(failure) => (
                Payment {
                    hash,
                    payee: String::new(),
                    amount_msat: invoice.amount_milli_satoshis().unwrap_or(0),
                    fee_msat: 0,
                    status: PaymentStatus::Failed,
                    preimage: None,
                    failure: Some(failure),
                },
                None,
            ),
            Ok(plan) => {
                // Held from now until it settles or fails.
                payer_node.balance_msat -= plan.amount_msat + plan.fee_msat;
                (
                    Payment {
                        hash,
                        payee: plan.payee,
                        amount_msat: plan.amount_msat,
                        fee_msat: plan.fee_msat,
                        status: PaymentStatus::Pending,
                        preimage: None,
                        failure: None,
                    },
                    Some((plan.delay, plan.fail)),
                )
            }
        };
        payer_node.payments.insert(hash, payment);
        match delay {
            Some((delay, fail)) if delay.is_zero() => {
                finish(&mut state, payer, hash, fail);
                drop(state);
                self.changed.notify_waiters();
            }
            Some((delay, fail)) => {
                drop(state);
                let network = self.clone();
                let payer = payer.to_string();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    finish(&mut network.lock(), &payer, hash, fail);
                    network.changed.notify_waiters();
                });
            }
            None => drop(state),
        }
        self.payment(payer, &hex::encode(hash))
    }

    pub fn payment(&self, payer: &str, hash_hex: &str) -> Result<PaymentView, NetworkError> {
        let hash = parse_hash(hash_hex)?;
        let state = self.lock();
        let node = state
            .nodes
            .get(payer)
            .ok_or_else(|| NetworkError::UnknownNode(payer.into()))?;
        node.payments
            .get(&hash)
            .map(payment_view)
            .ok_or_else(|| NetworkError::UnknownPayment {
                node: payer.into(),
                hash: hash_hex.into(),
            })
    }
}

/// A payment that passed every check, and how it will end.
struct Plan {
    payee: String,
    amount_msat: u64,
    fee_msat: u64,
    delay: Duration,
    fail: bool,
}

/// Checks a payment as a real node would before sending it; `Err` is the failure reason.
fn plan(
    state: &State,
    payer: &str,
    invoice: &Bolt11Invoice,
    payee_key: PublicKey,
    max_fee_msat: Option<u64>,
) -> Result<Plan, String> {
    let payer_node = state.nodes.get(payer).ok_or("unknown payer")?;
    let (payee, payee_node) = state
        .nodes
        .iter()
        .find(|(_, n)| n.pubkey == payee_key)
        .ok_or_else(|| format!("no route to {payee_key}"))?;
    let hash = invoice.payment_hash().to_byte_array();
    let target = payee_node
        .invoices
        .get(&hash)
        .ok_or("the payee does not know this invoice")?;
    if target.settled_index.is_some() {
        return Err("invoice already paid".into());
    }
    if target.expires_at <= now_secs() {
        return Err("invoice expired".into());
    }
    let amount_msat = target.amount_msat;
    let fee_msat = target.behaviour.fee_msat.unwrap_or_else(|| {
        payer_node.fee_base_msat + amount_msat.saturating_mul(payer_node.fee_ppm) / 1_000_000
    });
    if let Some(max) = max_fee_msat {
        if fee_msat > max {
            return Err(format!(
                "no route within the fee limit ({fee_msat} msat > {max} msat)"
            ));
        }
    }
    if payer_node.balance_msat < amount_msat + fee_msat {
        return Err("insufficient balance".into());
    }
    let delay_ms = target
        .behaviour
        .settle_delay_ms
        .unwrap_or(payer_node.pay_delay_ms);
    Ok(Plan {
        payee: payee.clone(),
        amount_msat,
        fee_msat,
        delay: Duration::from_millis(delay_ms),
        fail: target.behaviour.fail || payer_node.fail_payments,
    })
}

/// Ends a pending payment: settles it (the payee is paid, the payer learns the preimage) or
/// fails it (the payer gets the held amount and fee back).
fn finish(state: &mut State, payer: &str, hash: [u8; 32], fail: bool) {
    let Some(payment) = state.nodes.get(payer).and_then(|n| n.payments.get(&hash)) else {
        return;
    };
    if payment.status != PaymentStatus::Pending {
        return;
    }
    let (payee, amount, fee) = (payment.payee.clone(), payment.amount_msat, payment.fee_msat);
    // The invoice may have been paid by someone else meanwhile: then this payment fails.
    let preimage = match state.nodes.get_mut(&payee) {
        Some(node) if !fail => match node.invoices.get_mut(&hash) {
            Some(inv) if inv.settled_index.is_none() => {
                node.settled.push(hash);
                inv.settled_index = Some(node.settled.len() as u64);
                node.balance_msat += amount;
                Some(inv.preimage)
            }
            _ => None,
        },
        _ => None,
    };
    let Some(node) = state.nodes.get_mut(payer) else {
        return;
    };
    if preimage.is_none() {
        node.balance_msat += amount + fee;
    }
    if let Some(payment) = node.payments.get_mut(&hash) {
        match preimage {
            Some(p) => {
                payment.status = PaymentStatus::Succeeded;
                payment.preimage = Some(p);
            }
            None => {
                payment.status = PaymentStatus::Failed;
                payment.failure = Some(if fail {
                    "payment failed (simulated)".into()
                } else {
                    "invoice already paid".into()
                });
            }
        }
    }
}
