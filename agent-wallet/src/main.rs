//! `agent-wallet` command line: a Cashu wallet for AI agents that pays HTTP 402 endpoints
//! within a spending policy. See the crate documentation for the exit codes.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use agent_wallet::{exit_code, WalletError};
use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit codes:
  0  success (fetch: the final answer is < 400)
  1  any other failure (mint unreachable, storage, a token spent by someone else)
  2  usage or configuration error
  3  the spending policy refused the payment; nothing was spent
  4  the payment failed or its outcome is unknown (insufficient funds, no answer)
  5  HTTP error: the final answer is >= 400 (after paying, without paying, or a 402 this
     wallet cannot pay)

Environment:
  AGENT_WALLET_DATA_DIR  data dir (seed, wallet and ledger databases, config.toml)
  AGENT_WALLET_MINT      home mint URL
  AGENT_WALLET_TOKEN     a cashuB allowance imported at every start (again is a no-op)
  AGENT_WALLET_LOG       log filter for stderr (default: warn)

Policy keys (config.toml [policy], `policy set`, --policy KEY=VALUE):
  max_per_request, max_per_host_per_day (rolling 24 h), max_total: sat, or \"unlimited\"
  allowed_hosts: comma-separated patterns: api.example.com, *.example.com, host:port, *
  allowed_mints: comma-separated mint URLs, or *
  schemes: 402 schemes to pay, most preferred first (default cashu,l402,x402-cashu)

Allowance: `allowance connect CREDENTIAL` once; when a payment needs more than the wallet
holds at the allowance's mint, the wallet draws the shortfall plus [allowance] float (default
100 sat). Draws are ledger rows with method DRAW and outcome drawn.";

/// A Cashu wallet for AI agents that pays HTTP 402 endpoints within a spending policy.
#[derive(Parser, Debug)]
#[command(version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Data dir [default: $XDG_DATA_HOME/agent-wallet or ~/.local/share/agent-wallet]
    #[arg(long, global = true, env = "AGENT_WALLET_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Home mint URL (where `send` draws from; registered with the wallet)
    #[arg(long, global = true, env = "AGENT_WALLET_MINT")]
    pub mint: Option<String>,
    /// Override a policy key for this run (repeatable)
    #[arg(long = "policy", global = true, value_name = "KEY=VALUE")]
    pub policy_overrides: Vec<String>,
    /// Machine-readable JSON on stdout (errors too)
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the data dir, seed and config (safe to run again)
    Init,
    /// Import a cashuB/cashuA token (`-` reads it from stdin)
    Receive { token: String },
    /// Show the balance at each mint
    Balance,
    /// Make a cashuB token worth AMOUNT sat and print it
    Send { amount: u64 },
    /// Send an HTTP request, paying a 402 (X-Cashu, L402 or x402 cashu) within the policy
    Fetch {
        url: String,
        /// HTTP method
        #[arg(short = 'X', long = "request", default_value = "GET")]
        method: String,
        /// Request body (`@FILE` reads a file, `@-` stdin)
        #[arg(short = 'd', long = "data")]
        data: Option<String>,
        /// Request header, `Name: value` (repeatable)
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// Most this request may cost in sat (price plus fees)
        #[arg(long)]
        max_cost: Option<u64>,
        /// Seconds to wait for each answer
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// What the spending policy (and a connected allowance) still allows
    Budget {
        /// Also what this host may still be paid in the rolling 24 hours
        #[arg(long)]
        host: Option<String>,
    },
    /// List the spend ledger
    Ledger {
        /// As a JSON array
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// As CSV
        #[arg(long)]
        csv: bool,
    },
    /// Serve the wallet to an MCP client over stdin/stdout (tools: fetch, balance, budget,
    /// ledger, receive); logs go to stderr
    Mcp {
        /// Seconds to wait for each answer to a fetch
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Show or change the spending policy
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Draw from a metered allowance a human funded at a mint
    Allowance {
        #[command(subcommand)]
        action: AllowanceAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum AllowanceAction {
    /// Store the credential the human got from the mint (`callowA...`). Payments that need
    /// more than the wallet holds then draw from it (plus the float in config.toml
    /// `[allowance] float`).
    Connect { credential: String },
    /// Make the agent's own key (once) and print its public key, for `allowance-mint
    /// allowance new --metered --agent-pubkey`
    Keygen,
    /// Show the connected allowance (mint, id, public key)
    Show,
    /// Ask the mint what the allowance still lets this wallet draw (state, balance, caps)
    Status,
    /// Draw AMOUNT sat now
    Draw { amount: u64 },
}

#[derive(Subcommand, Debug)]
pub enum PolicyAction {
    /// Print the policy in force
    Show,
    /// Set one key in config.toml
    Set { key: String, value: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agent-wallet: cannot start the runtime: {e}");
            return ExitCode::from(exit_code::FAILURE as u8);
        }
    };
    let code = match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => report(&e, json),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Prints an error (as JSON on stdout with `--json`, always on stderr) and picks the exit code.
fn report(e: &anyhow::Error, json: bool) -> i32 {
    let wallet_error = e.downcast_ref::<WalletError>();
    let code = wallet_error.map_or(exit_code::FAILURE, WalletError::exit_code);
    if json {
        let mut v = serde_json::json!({
            "error": wallet_error.map_or("error", WalletError::kind),
            "message": format!("{e:#}"),
        });
        if let Some(WalletError::PolicyRefused { violation, .. }) = wallet_error {
            v["violation"] = violation.code().into();
        }
        if let Some(WalletError::PaymentFailed {
            payment_id: Some(id),
            ..
        }) = wallet_error
        {
            v["payment_id"] = id.clone().into();
        }
        if let Some(resp) = wallet_error.and_then(WalletError::response) {
            v["status"] = resp.status.as_u16().into();
            v["body"] = resp.text().into();
        }
        println!("{v}");
    } else if let Some(resp) = wallet_error.and_then(WalletError::response) {
        // Surface the 402 like curl would: its body on stdout.
        cli::write_stdout(&resp.body);
    }
    eprintln!("agent-wallet: {e:#}");
    code
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGENT_WALLET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
