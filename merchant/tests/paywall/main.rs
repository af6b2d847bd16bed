//! Integration tests of the merchant: an in-process cdk mint (fake Lightning), a paywalled axum
//! app on port 0, cdk wallets as paying agents, and the binaries as processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binaries;
mod challenge;
mod gateway;
mod hangup;
mod l402;
mod outage;
mod payments;
mod process;
mod settlement;
mod support;
mod x402;
