//! Bounded allowances: a human funds an agent, the mint enforces the bounds.
//!
//! Two forms (`../shared/DESIGN.md` §4):
//! - **prepaid**: the human pays an invoice and gets one `cashuB` token of exactly that value
//!   ([`prepaid`]); the mint keeps only the token's proof Ys to tell how much is unspent;
//! - **metered**: an account the human funds with invoices and the agent draws ecash from
//!   through NUT-04 quotes of the custom method `allowance`, signed with its key ([`draw`]).
//!   Every draw is checked and debited in one atomic step ([`registry`], [`policy`]); the
//!   human can top up, revoke and withdraw to Lightning ([`withdraw`]).
//!
//! The registry lives in the mint's database (cdk's KV store), so it is shared by every mint
//! process on that database. [`books`] checks that the mint's liabilities match its Lightning
//! flows.

pub mod books;
pub mod draw;
pub mod error;
pub mod model;
pub mod policy;
pub mod prepaid;
pub mod processor;
pub mod registry;
pub mod service;
pub mod view;
pub mod withdraw;

pub use error::AllowanceError;
pub use policy::Refusal;
pub use processor::AllowanceProcessor;
pub use registry::Registry;
pub use service::Allowances;
