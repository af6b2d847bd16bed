//! The simulated network: named nodes with balances and signing keys, BOLT11 invoices with
//! real payment hashes and preimages, and payments between nodes that can be delayed (pending,
//! then settled), fail, or cost a routing fee.
//!
//! A payment finds its payee by the key that signed the invoice, as a real node would from the
//! invoice's recovered payee key. Funds move only on settlement; a pending payment holds the
//! payer's amount and fee until then, and a failed one gives them back.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cdk_common::bitcoin::hashes::{sha256, Hash};
use cdk_common::bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use cdk_common::lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use rand::RngCore;
use tokio::sync::Notify;

use crate::api::{
    CreateInvoice, InvoiceBehaviour, InvoiceState, InvoiceView, NodeSettings, NodeView,
    PaymentStatus, PaymentView, SettledFeed,
};

mod pay;

/// What a new node may spend: 10 BTC.
pub const DEFAULT_BALANCE_MSAT: u64 = 1_000_000_000_000;
const DEFAULT_EXPIRY_SECS: u64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("no node named {0:?}")]
    UnknownNode(String),
    #[error("node {node:?} has no invoice {hash}")]
    UnknownInvoice { node: String, hash: String },
    #[error("node {node:?} made no payment {hash}")]
    UnknownPayment { node: String, hash: String },
    #[error("not a BOLT11 invoice: {0}")]
    BadInvoice(String),
    #[error("invalid request: {0}")]
    BadRequest(String),
    #[error("cannot sign the invoice: {0}")]
    Sign(String),
}

struct Invoice {
    bolt11: String,
    hash: [u8; 32],
    preimage: [u8; 32],
    amount_msat: u64,
    expires_at: u64,
    behaviour: InvoiceBehaviour,
    settled_index: Option<u64>,
}

struct Payment {
    hash: [u8; 32],
    payee: String,
    amount_msat: u64,
    fee_msat: u64,
    status: PaymentStatus,
    preimage: Option<[u8; 32]>,
    failure: Option<String>,
}

struct Node {
    secret: SecretKey,
    pubkey: PublicKey,
    balance_msat: u64,
    pay_delay_ms: u64,
    fail_payments: bool,
    fee_base_msat: u64,
    fee_ppm: u64,
    invoices: HashMap<[u8; 32], Invoice>,
    payments: HashMap<[u8; 32], Payment>,
    /// Hashes of paid invoices, in the order they settled.
    settled: Vec<[u8; 32]>,
}

#[derive(Default)]
struct State {
    nodes: BTreeMap<String, Node>,
}

/// The whole network. Cloning shares it.
#[derive(Clone, Default)]
pub struct Network {
    state: Arc<Mutex<State>>,
    /// Woken whenever an invoice settles or a payment ends.
    changed: Arc<Notify>,
}

impl Network {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave half a payment behind: every change is
        // made after all checks. Keep serving rather than poisoning every later request.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates `name` if it is new, then applies the settings given.
    pub fn put_node(&self, name: &str, settings: &NodeSettings) -> NodeView {
        let mut state = self.lock();
        let node = state.nodes.entry(name.to_string()).or_insert_with(|| {
            let mut bytes = [0u8; 32];
            let secret = loop {
                rand::thread_rng().fill_bytes(&mut bytes);
                if let Ok(key) = SecretKey::from_slice(&bytes) {
                    break key;
                }
            };
            Node {
                pubkey: secret.public_key(&Secp256k1::new()),
                secret,
                balance_msat: DEFAULT_BALANCE_MSAT,
                pay_delay_ms: 0,
                fail_payments: false,
                fee_base_msat: 0,
                fee_ppm: 0,
                invoices: HashMap::new(),
                payments: HashMap::new(),
                settled: Vec::new(),
            }
        });
        if let Some(v) = settings.pay_delay_ms {
            node.pay_delay_ms = v;
        }
        if let Some(v) = settings.fail_payments {
            node.fail_payments = v;
        }
        if let Some(v) = settings.fee_base_msat {
            node.fee_base_msat = v;
        }
        if let Some(v) = settings.fee_ppm {
            node.fee_ppm = v;
        }
        if let Some(v) = settings.balance_msat {
            node.balance_msat = v;
        }
        node_view(name, node)
    }

    pub fn node(&self, name: &str) -> Result<NodeView, NetworkError> {
        let state = self.lock();
        let node = state
            .nodes
            .get(name)
            .ok_or_else(|| NetworkError::UnknownNode(name.into()))?;
        Ok(node_view(name, node))
    }

    /// A new invoice of `name`, signed with its key.
    pub fn create_invoice(
        &self,
        name: &str,
        req: &CreateInvoice,
    ) -> Result<InvoiceView, NetworkError> {
        if req.amount_msat == 0 {
            return Err(NetworkError::BadRequest(
                "amount_msat must be positive (amountless invoices are not simulated)".into(),
            ));
        }
        let mut state = self.lock();
        let node = state
            .nodes
            .get_mut(name)
            .ok_or_else(|| NetworkError::UnknownNode(name.into()))?;
        let mut preimage = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut preimage);
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let hash = sha256::Hash::hash(&preimage);
        let expiry = req.expiry_secs.unwrap_or(DEFAULT_EXPIRY_SECS);
        let key = node.secret;
        let invoice = InvoiceBuilder::new(Currency::Regtest)
            .description(req.description.clone())
            .payment_hash(hash)
            .payment_secret(PaymentSecret(secret))
            .amount_milli_satoshis(req.amount_msat)
            .current_timestamp()
            .min_final_cltv_expiry_delta(18)
            .expiry_time(Duration::from_secs(expiry))
            .build_signed(|h| Secp256k1::new().sign_ecdsa_recoverable(h, &key))
            .map_err(|e| NetworkError::Sign(e.to_string()))?;
        let record = Invoice {
            bolt11: invoice.to_string(),
            hash: hash.to_byte_array(),
            preimage,
            amount_msat: req.amount_msat,
            expires_at: now_secs() + expiry,
            behaviour: req.behaviour.clone(),
            settled_index: None,
        };
        let view = invoice_view(&record);
        node.invoices.insert(record.hash, record);
        Ok(view)
    }

    pub fn invoice(&self, name: &str, hash_hex: &str) -> Result<InvoiceView, NetworkError> {
        let hash = parse_hash(hash_hex)?;
        let state = self.lock();
        let node = state
            .nodes
            .get(name)
            .ok_or_else(|| NetworkError::UnknownNode(name.into()))?;
        node.invoices
            .get(&hash)
            .map(invoice_view)
            .ok_or_else(|| NetworkError::UnknownInvoice {
                node: name.into(),
                hash: hash_hex.into(),
            })
    }

    /// Invoices of `name` settled after position `after`, waiting up to `wait` for one.
    pub async fn settled(
        &self,
        name: &str,
        after: u64,
        wait: Duration,
    ) -> Result<SettledFeed, NetworkError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Register before looking, so a settlement between the look and the wait wakes us.
            notified.as_mut().enable();
            {
                let state = self.lock();
                let node = state
                    .nodes
                    .get(name)
                    .ok_or_else(|| NetworkError::UnknownNode(name.into()))?;
                let start = usize::try_from(after).unwrap_or(usize::MAX);
                let invoices: Vec<InvoiceView> = node
                    .settled
                    .iter()
                    .skip(start)
                    .filter_map(|h| node.invoices.get(h).map(invoice_view))
                    .collect();
                let next = node.settled.len() as u64;
                if !invoices.is_empty() || tokio::time::Instant::now() >= deadline {
                    return Ok(SettledFeed {
                        next: next.max(after),
                        invoices,
                    });
                }
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

fn node_view(name: &str, node: &Node) -> NodeView {
    NodeView {
        name: name.to_string(),
        pubkey: node.pubkey.to_string(),
        balance_msat: node.balance_msat,
        pay_delay_ms: node.pay_delay_ms,
        fail_payments: node.fail_payments,
        fee_base_msat: node.fee_base_msat,
        fee_ppm: node.fee_ppm,
    }
}

fn invoice_view(inv: &Invoice) -> InvoiceView {
    InvoiceView {
        bolt11: inv.bolt11.clone(),
        payment_hash: hex::encode(inv.hash),
        amount_msat: inv.amount_msat,
        state: if inv.settled_index.is_some() {
            InvoiceState::Paid
        } else {
            InvoiceState::Open
        },
        expires_at: inv.expires_at,
        preimage: inv.settled_index.map(|_| hex::encode(inv.preimage)),
        settled_index: inv.settled_index,
    }
}

fn payment_view(p: &Payment) -> PaymentView {
    PaymentView {
        payment_hash: hex::encode(p.hash),
        status: p.status,
        amount_msat: p.amount_msat,
        fee_msat: p.fee_msat,
        preimage: p.preimage.map(hex::encode),
        failure: p.failure.clone(),
    }
}

fn parse_hash(hex_str: &str) -> Result<[u8; 32], NetworkError> {
    let bytes = hex::decode(hex_str)
        .map_err(|_| NetworkError::BadRequest(format!("not a hex payment hash: {hex_str}")))?;
    bytes
        .try_into()
        .map_err(|_| NetworkError::BadRequest(format!("not a 32-byte payment hash: {hex_str}")))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
