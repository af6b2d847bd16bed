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
pub mod status;
pub mod view;
pub mod withdraw;

pub use error::AllowanceError;
pub use policy::Refusal;
pub use processor::AllowanceProcessor;
pub use registry::Registry;
pub use service::Allowances;

/// Runs a request without tokio's cooperative budget.
///
/// cdk's SQLite store runs its statements synchronously and holds the database's write lock
/// from `BEGIN IMMEDIATE` to `COMMIT`. If the budget runs out inside a transaction (after many
/// reads earlier in the same poll, as listing allowances does), the task yields while holding
/// the lock, and the other worker threads block on `BEGIN IMMEDIATE` until SQLite gives up
/// ("database is locked"). Without the budget a transaction is never suspended halfway.
pub async fn unconstrained(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    tokio::task::unconstrained(next.run(request)).await
}
