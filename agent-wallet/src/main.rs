//! `agent-wallet` command line (filled in by the pay-per-request issue).

use clap::Parser;

/// A Cashu wallet for AI agents that pays HTTP 402 endpoints within a spending policy.
#[derive(Parser)]
#[command(version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    anyhow::bail!("agent-wallet has no commands yet: it arrives with the pay-per-request work")
}
