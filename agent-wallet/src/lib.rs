//! `agent-wallet`: the wallet an AI agent carries.
//!
//! It holds the agent's allowance as Cashu ecash, enforces the spending policy a human set, and
//! pays HTTP 402 endpoints by itself (Cashu NUT-24, L402 by melting at the mint, x402-style),
//! recording every payment in a spend ledger. The pay-per-request issue builds it out; for now the
//! crate holds its name and purpose.

pub use cashu_402;
