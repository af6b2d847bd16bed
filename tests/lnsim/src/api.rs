//! What the simulated network's HTTP API takes and answers (JSON). Amounts are millisatoshi;
//! hashes and preimages are lower-case hex.

use serde::{Deserialize, Serialize};

/// How a node behaves when it pays. Every field is optional in a `PUT /v1/nodes/{node}`: only
/// the fields given change.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSettings {
    /// A payment stays pending this long before it settles (or fails).
    pub pay_delay_ms: Option<u64>,
    /// Every payment this node makes fails (no route).
    pub fail_payments: Option<bool>,
    /// Routing fee of each payment: a base ...
    pub fee_base_msat: Option<u64>,
    /// ... plus parts per million of the amount.
    pub fee_ppm: Option<u64>,
    /// Sets the node's spendable balance.
    pub balance_msat: Option<u64>,
}

/// A node as the network sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    /// The key that signs its invoices (hex, compressed).
    pub pubkey: String,
    pub balance_msat: u64,
    pub pay_delay_ms: u64,
    pub fail_payments: bool,
    pub fee_base_msat: u64,
    pub fee_ppm: u64,
}

/// What happens to payments of one invoice, whoever pays it. Overrides the payer's settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct InvoiceBehaviour {
    /// Payments of this invoice fail (after `settle_delay_ms` if given).
    pub fail: bool,
    /// Payments stay pending this long, then settle (or fail).
    pub settle_delay_ms: Option<u64>,
    /// The routing fee of a payment, in place of the payer's fee settings.
    pub fee_msat: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInvoice {
    pub amount_msat: u64,
    #[serde(default)]
    pub description: String,
    /// Seconds until the invoice expires [default: 3600].
    #[serde(default)]
    pub expiry_secs: Option<u64>,
    #[serde(default)]
    pub behaviour: InvoiceBehaviour,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceState {
    Open,
    Paid,
}

/// An invoice as its issuing node sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InvoiceView {
    pub bolt11: String,
    pub payment_hash: String,
    pub amount_msat: u64,
    pub state: InvoiceState,
    /// Unix seconds.
    pub expires_at: u64,
    /// Known to the payee from the start; shown once the invoice is paid.
    pub preimage: Option<String>,
    /// Position in the node's feed of settled invoices (from 1), once paid.
    pub settled_index: Option<u64>,
}

/// Invoices settled after a position in the node's feed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettledFeed {
    /// Ask with `after = next` for what comes later.
    pub next: u64,
    pub invoices: Vec<InvoiceView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayInvoice {
    pub bolt11: String,
    /// Refuse to pay a higher routing fee than this.
    #[serde(default)]
    pub max_fee_msat: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
}

/// An outgoing payment as the paying node sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PaymentView {
    pub payment_hash: String,
    pub status: PaymentStatus,
    pub amount_msat: u64,
    pub fee_msat: u64,
    /// The payee's preimage: the proof of payment, once it succeeded.
    pub preimage: Option<String>,
    pub failure: Option<String>,
}

/// Every error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
