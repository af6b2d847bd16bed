//! `merchant` command-line flags (the binary in `main.rs` runs them).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The payee side of agent payments: the wallet behind the paywall, and its settlements.
#[derive(Debug, Parser)]
#[command(name = "merchant", version, about)]
pub struct Cli {
    /// The merchant's data directory (seed, wallet, replay record, settlements).
    #[arg(
        long,
        env = "MERCHANT_DATA_DIR",
        default_value = "merchant-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// The mint to act on (settle); defaults to the only mint holding a balance.
    #[arg(long = "mint", env = "MERCHANT_MINT_URL", global = true)]
    pub mint: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ecash held, by mint and unit (from the local database; no network).
    Balance,
    /// Pay a Lightning invoice by melting collected ecash at the mint (the fee reserve is
    /// held back; change returns to the wallet). Logged in `settlements`.
    Settle {
        /// The BOLT11 invoice to pay (with an amount).
        #[arg(long)]
        invoice: String,
        /// Unit of the ecash to melt.
        #[arg(long, default_value = "sat")]
        unit: String,
    },
    /// List settlements, newest first.
    Settlements {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Print the P2PK public key agents lock their tokens to.
    Pubkey,
    /// Finish or roll back wallet operations a crash interrupted and resolve redemptions left
    /// in doubt. Servers do this at start-up; run it only while no server uses the data dir.
    Recover,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_needs_an_invoice_and_flags_are_global() {
        assert!(Cli::try_parse_from(["merchant", "settle"]).is_err());
        let c = Cli::try_parse_from([
            "merchant",
            "settle",
            "--invoice",
            "lnbc1",
            "--data-dir",
            "/d",
            "--json",
        ])
        .unwrap();
        assert!(c.json);
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert!(matches!(c.command, Command::Settle { ref invoice, .. } if invoice == "lnbc1"));
        assert!(
            Cli::try_parse_from(["merchant"]).is_err(),
            "a command is required"
        );
    }
}
