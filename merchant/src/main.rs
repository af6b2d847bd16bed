//! `merchant` command line (filled in by the pay-per-request issue).

use clap::Parser;

/// The payee side: a paywall layer and gateway that answers 402 and redeems ecash.
#[derive(Parser)]
#[command(version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    anyhow::bail!("merchant has no commands yet: it arrives with the pay-per-request work")
}
