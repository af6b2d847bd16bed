//! `merchant`: what a seller runs.
//!
//! A tower/axum paywall layer and the `paywall-gateway` reverse proxy that answer `402 Payment
//! Required`, verify and redeem the ecash an agent sends at the mint before the request is served,
//! and settle collected ecash to Lightning. The pay-per-request issue builds it out.

pub use cashu_402;
