//! `cashu-402`: the protocol the three roles speak.
//!
//! The mint, the agent wallet and the merchant share this crate and nothing else: HTTP 402
//! challenge and credential codecs (Cashu NUT-24 `X-Cashu`, L402, x402-style), the allowance
//! policy types, the allowance API's request and response types and the shared error codes.
//! It has no async runtime and no HTTP stack, and re-exports the `cdk` types it builds on
//! instead of redefining them.

pub use cdk::nuts::{CurrencyUnit, PaymentRequest, Token};
pub use cdk::Amount;

pub mod allowance;
pub mod allowance_status;
pub mod error_body;
pub mod nut24;
pub mod seed_file;

pub use nut24::{parse_credential, Challenge, X_CASHU};
