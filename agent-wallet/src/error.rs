//! The wallet's error type, and how each error maps to a CLI exit code.

use std::path::{Path, PathBuf};

use cdk::mint_url::MintUrl;

use crate::http::HttpResponse;
use crate::policy::PolicyViolation;

/// Exit codes of the `agent-wallet` command (also in its `--help`).
pub mod exit_code {
    /// Success: the command did what it was asked (for `fetch`: the final answer is < 400).
    pub const OK: i32 = 0;
    /// Any other failure: the mint cannot be reached, storage trouble, a bad token.
    pub const FAILURE: i32 = 1;
    /// Usage or configuration error (bad flags, bad config file, bad policy value).
    pub const USAGE: i32 = 2;
    /// The spending policy refused the payment; nothing was spent.
    pub const POLICY_REFUSED: i32 = 3;
    /// The payment could not be made or its outcome is unknown (insufficient funds, the mint
    /// refused, no answer to the paid request).
    pub const PAYMENT_FAILED: i32 = 4;
    /// HTTP error: the final answer's status is >= 400 (after paying, without a payment, or a
    /// 402 the wallet cannot pay).
    pub const HTTP_ERROR: i32 = 5;
}

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The policy refused the payment. `response` is the 402 answer (absent for a plain send).
    #[error("refused by policy: {violation}")]
    PolicyRefused {
        violation: PolicyViolation,
        response: Option<Box<HttpResponse>>,
    },
    /// The server asked for payment in a way this wallet cannot pay (no or bad `X-Cashu`,
    /// another unit, only mints the wallet holds no ecash at).
    #[error("the 402 answer cannot be paid: {reason}")]
    NotPayable {
        reason: String,
        response: Box<HttpResponse>,
    },
    /// A payment was attempted and did not go through, or its outcome is unknown. The ledger
    /// row `payment_id` (if any) says what happened to the ecash.
    #[error("payment failed: {reason}")]
    PaymentFailed {
        reason: String,
        payment_id: Option<String>,
    },
    #[error("insufficient funds at {mint}: need {needed}, have {available}")]
    InsufficientFunds {
        mint: String,
        needed: u64,
        available: u64,
    },
    #[error("the wallet holds no ecash at {0} and knows no such mint")]
    UnknownMint(MintUrl),
    #[error("the token was already spent by someone else")]
    TokenSpent,
    /// The mint refused a draw from the allowance (the code is in `shared/src/error_body.rs`).
    #[error("the mint refused the allowance draw: {detail} (code {code})")]
    DrawRefused { code: u32, detail: String },
    /// The mint refused to tell the allowance's status (unknown allowance, bad signature, clock).
    #[error("the mint refused the allowance status request: {detail} (code {code})")]
    StatusRefused { code: u32, detail: String },
    #[error("no allowance connected (run `agent-wallet allowance connect CREDENTIAL`)")]
    NoAllowance,
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("config error: {detail}")]
    Config { detail: String },
    #[error("HTTP request failed: {0}")]
    Http(#[source] reqwest::Error),
    #[error("Cashu wallet error: {0}")]
    Cdk(#[from] cdk::Error),
    #[error("wallet database error: {0}")]
    Database(#[from] cdk::cdk_database::Error),
    #[error("ledger database error: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl WalletError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The CLI exit code for this error (see [`exit_code`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::PolicyRefused { .. } => exit_code::POLICY_REFUSED,
            Self::NotPayable { .. } => exit_code::HTTP_ERROR,
            Self::PaymentFailed { .. }
            | Self::InsufficientFunds { .. }
            | Self::DrawRefused { .. } => exit_code::PAYMENT_FAILED,
            Self::Config { .. } | Self::Invalid(_) | Self::NoAllowance => exit_code::USAGE,
            _ => exit_code::FAILURE,
        }
    }

    /// The 402 answer this error surfaces, if any.
    pub fn response(&self) -> Option<&HttpResponse> {
        match self {
            Self::PolicyRefused { response, .. } => response.as_deref(),
            Self::NotPayable { response, .. } => Some(response),
            _ => None,
        }
    }

    /// A stable machine-readable name for JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::PolicyRefused { .. } => "policy_refused",
            Self::NotPayable { .. } => "not_payable",
            Self::PaymentFailed { .. } => "payment_failed",
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::UnknownMint(_) => "unknown_mint",
            Self::TokenSpent => "token_spent",
            Self::DrawRefused { .. } => "draw_refused",
            Self::StatusRefused { .. } => "status_refused",
            Self::NoAllowance => "no_allowance",
            Self::Invalid(_) => "invalid_input",
            Self::Config { .. } => "config",
            Self::Http(_) => "http",
            Self::Cdk(_) => "cashu",
            Self::Database(_) | Self::Store(_) | Self::Io { .. } => "storage",
        }
    }
}
