//! `agent-wallet`: the wallet an AI agent carries.
//!
//! It holds the agent's allowance as Cashu ecash (cdk's wallet, SQLite storage, a seed in its
//! data dir), enforces the spending policy a human set, and pays HTTP 402 endpoints by itself
//! (Cashu NUT-24 `X-Cashu`), recording every payment in a spend ledger.
//!
//! # Embedding it
//!
//! A Rust agent needs [`AgentWallet`] (open, [`receive`](AgentWallet::receive) an allowance)
//! and the paying client [`AgentWallet::fetch`] with a [`PayRequest`]. The runnable version,
//! with argument handling, is `agent-wallet/examples/pay_api.rs`
//! (`cargo run -p agent-wallet --example pay_api -- MINT_URL URL`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), agent_wallet::WalletError> {
//! use agent_wallet::{AgentWallet, PayRequest, WalletOptions};
//!
//! let mut options = WalletOptions::new("/var/lib/agent-wallet");
//! options.policy = Some(agent_wallet::Policy { max_per_request: Some(50), ..Default::default() });
//! let wallet = AgentWallet::open_with(options).await?;    // recovers payments a crash left
//! wallet.receive("cashuB...").await?;                     // import an allowance (idempotent)
//! let url = url::Url::parse("https://api.example.com/v1/search?q=rust").expect("url");
//! let answer = wallet.fetch(PayRequest::get(url).max_cost(Some(21))).await?;
//! println!("{} cost {}", answer.response.status, answer.cost());
//! let left = wallet.budget(Some("api.example.com")).await?; // what the policy still allows
//! println!("next request may cost up to {}", left.next_request_max);
//! for row in wallet.recent_payments(None, 10)? {               // newest first
//!     println!("{} {} {}", row.host, row.cost(), row.outcome);
//! }
//! # Ok(()) }
//! ```
//!
//! A refused payment is [`WalletError::PolicyRefused`] (nothing spent); see
//! [`WalletError::kind`] and [`WalletError::exit_code`] for the rest.
//!
//! # From an MCP client
//!
//! `agent-wallet mcp` serves the same wallet to any Model Context Protocol client over stdio
//! (tools `fetch`, `balance`, `budget`, `ledger`, `receive`): see [`mcp`] and the README
//! section "Use the wallet from an MCP client".
//!
//! # How a payment goes
//!
//! 1. The request is sent. Anything but `402` is returned as it is.
//! 2. Every offer of the 402 is gathered ([`cashu_402::Offers`]: `X-Cashu`, L402, x402 `cashu`)
//!    and tried in the policy's `schemes` order (default Cashu, then L402, then x402-cashu); an
//!    L402 invoice is paid by melting ecash (`pay_l402.rs`), the x402 token travels in
//!    `PAYMENT-SIGNATURE`/`X-PAYMENT`. For an `X-Cashu` challenge ([`cashu_402::Challenge`]) the
//!    policy checks the host,
//!    the mints (only mints the wallet holds ecash at and the policy allows, picked among the
//!    challenge's `m`), the per-request cap and `max_cost`, the rolling 24 h per-host cap and
//!    the total ([`Policy`]). A refusal is [`WalletError::PolicyRefused`] carrying the 402
//!    answer; nothing is spent.
//! 3. A token worth exactly the price to the payee (`include_fee: true`) is prepared: offline
//!    from proofs the wallet holds when their denominations allow (`SendKind::OfflineExact`),
//!    else with one swap (`OnlineExact`). If the challenge asks for a P2PK lock, the proofs are
//!    locked to the payee's key; cdk keeps the mint's DLEQ proofs on them.
//! 4. Policy check and the pending ledger row are one SQLite transaction, so concurrent
//!    payments cannot overshoot a cap. The token is written to the outbox before it is sent.
//! 5. The request is retried with `X-Cashu: cashuB...`. An answer < 400 marks the payment
//!    `paid`. An answer >= 400 (for example `503` code 50300, or a `400` before redemption)
//!    makes the wallet take the token back at once if the server did not redeem it
//!    (`refused-by-server`). No answer: the mint is asked (NUT-07); an unspent token is taken
//!    back (`failed`), a spent one is `unknown` (paid, answer lost).
//!
//! # Crash safety
//!
//! Every [`AgentWallet::open`] recovers: cdk's interrupted sagas first, then every payment left
//! in the outbox (see [`AgentWallet::recover`]). Nothing is lost (unspent tokens come back) and
//! nothing is counted twice (a payment leaves the outbox and gets its outcome in one
//! transaction). Recovery never touches a payment another live process has in flight: those
//! hold a shared lock on `ops.lock` in the data dir.
//!
//! # Data dir
//!
//! `seed` (BIP-39 mnemonic, mode 0600, never printed), `wallet.sqlite` (cdk's proofs and
//! sagas), `agent.sqlite` (ledger, outbox, imported tokens), `config.toml` (home mint and
//! policy, see [`Config`]), `ops.lock`.
//!
//! # The `agent-wallet` command
//!
//! `agent-wallet [--data-dir DIR] [--mint URL] [--policy KEY=VALUE]... [--json] COMMAND`, with
//! `init`, `receive TOKEN|-`, `balance`, `send AMOUNT`, `fetch URL [-X METHOD] [-d BODY]
//! [-H HEADER]... [--max-cost N]`, `ledger [--json|--csv]`, `policy show|set KEY VALUE`,
//! `mcp [--timeout SECS]`.
//! Environment: `AGENT_WALLET_DATA_DIR`, `AGENT_WALLET_MINT`, and `AGENT_WALLET_TOKEN`
//! (a `cashuB` allowance imported at every start; importing it again is a no-op).
//!
//! Exit codes ([`exit_code`]):
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success (`fetch`: the final answer is < 400) |
//! | 1 | any other failure (mint unreachable, storage, a token spent by someone else) |
//! | 2 | usage or configuration error |
//! | 3 | the spending policy refused the payment; nothing was spent |
//! | 4 | the payment failed or its outcome is unknown (insufficient funds, no answer) |
//! | 5 | HTTP error: the final answer is >= 400 (after paying, without paying, or a 402 this wallet cannot pay) |

// Unit tests may unwrap (DESIGN §7); the lint stays on for the library itself.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub use cashu_402;

mod allowance;
mod budget;
mod config;
mod draw;
mod error;
mod http;
mod l402_store;
mod ledger;
pub mod mcp;
mod oplock;
mod outbox;
mod pay;
mod pay_l402;
mod policy;
mod reconcile;
mod recovery;
mod seed;
mod settle;
mod store;
mod tokens;
mod wallet;

pub use allowance::{AllowanceInfo, AGENT_KEY_FILE, ALLOWANCE_FILE};
pub use budget::{AllowanceDrawRoom, Budget, ConnectedRoom, HostBudget, UnavailableRoom};
pub use config::{AllowanceSettings, Config, CONFIG_FILE};
pub use error::{exit_code, WalletError};
pub use http::{FetchResponse, HttpResponse, PayRequest, MAX_BODY_BYTES};
pub use ledger::{
    csv_field, rfc3339, to_csv, to_json, LedgerEntry, Outcome, SCHEME_CASHU, SCHEME_L402,
    SCHEME_X402_CASHU,
};
pub use outbox::OutboxState;
pub use policy::{host_matches, Policy, PolicySetError, PolicyViolation, Spent};
pub use reconcile::Reconciled;
pub use recovery::RecoveryReport;
pub use seed::SEED_FILE;
pub use wallet::{
    AgentWallet, Balances, ReceiveOutcome, SentToken, WalletOptions, AGENT_DB_FILE, WALLET_DB_FILE,
};
