//! Test support only, never a product default and never in the release mint binary: a small
//! simulated Lightning network.
//!
//! - [`network`]: named nodes with signing keys and balances; BOLT11 invoices with real payment
//!   hashes and preimages (cdk's `lightning-invoice`); payments between nodes with configurable
//!   delay (pending, then settled), failure and routing fee, per node or per invoice.
//! - [`server`] / [`client`]: the network over HTTP (`lnsim` binary), so the mint process, a
//!   merchant process and a test each talk to their own node on loopback.
//! - [`backend`]: cdk's `MintPayment` on a node; the `allowance-mint-lnsim` binary runs the real
//!   mint with it injected.
//! - [`l402_server`] / [`macaroon`]: an aperture-like L402 server (`l402-fixture` binary) whose
//!   invoices come from its own node, to show our agent pays third-party L402 APIs.

pub mod api;
pub mod backend;
pub mod client;
pub mod l402_server;
pub mod macaroon;
pub mod network;
pub mod server;

use std::io::Write;
use std::net::SocketAddr;

/// Binds, prints the `listening on http://ADDR` line tests wait for, and serves until killed.
pub async fn serve_router(listen: SocketAddr, router: axum::Router) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    axum::serve(listener, router).await
}

/// The payment hash (hex) a preimage (hex) unlocks: `sha256(preimage)`; `None` if not hex.
pub fn payment_hash_of(preimage_hex: &str) -> Option<String> {
    use cdk_common::bitcoin::hashes::{sha256, Hash};
    let preimage = hex::decode(preimage_hex).ok()?;
    Some(hex::encode(sha256::Hash::hash(&preimage).to_byte_array()))
}
