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
pub mod l402;
pub mod macaroon;
pub mod nut24;
pub mod offers;
pub mod seed_file;
#[cfg(feature = "server")]
pub mod server;
pub mod www_auth;
pub mod x402;

pub use l402::{L402Challenge, L402Credential, Preimage};
pub use nut24::{parse_credential, Challenge, X_CASHU};
pub use offers::{Offer, Offers, SchemeKind};
