//! The command line. Flags override environment variables, which override the config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError};

/// A Cashu mint backed by Lightning, for bounded AI-agent allowances.
///
/// With no subcommand it serves the Cashu API. Settings come from built-in defaults, then the
/// config file, then environment variables, then flags.
#[derive(Debug, Parser)]
#[command(name = "allowance-mint", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML config file (see `allowance-mint config example`).
    #[arg(long, short = 'c', env = "ALLOWANCE_MINT_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address the public Cashu API listens on [default: 127.0.0.1:3338].
    #[arg(long, env = "ALLOWANCE_MINT_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// Directory for the database, the seed and backend state [default: ./data].
    #[arg(long, env = "ALLOWANCE_MINT_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// URL wallets use to reach the mint [default: http://<listen>].
    #[arg(long, env = "ALLOWANCE_MINT_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Address of the admin API and web page [default: 127.0.0.1:3339].
    #[arg(long, env = "ALLOWANCE_MINT_ADMIN_LISTEN", global = true)]
    pub admin_listen: Option<SocketAddr>,
    /// Log format: `text` or `json`. Levels follow RUST_LOG (default `info`).
    #[arg(
        long,
        env = "ALLOWANCE_MINT_LOG_FORMAT",
        global = true,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Cashu API (the default).
    Serve,
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage keysets.
    #[command(subcommand)]
    Keyset(KeysetCommand),
    /// Fund agents: prepaid tokens and metered allowances (talks to the running mint's admin
    /// API; the token comes from `admin.token` or `<data_dir>/admin.token`).
    Allowance(AllowanceArgs),
}

#[derive(Debug, Args)]
pub struct AllowanceArgs {
    /// Admin API URL [default: http://<admin.listen>].
    #[arg(long, env = "ALLOWANCE_MINT_ADMIN_URL")]
    pub admin_url: Option<String>,
    /// Print JSON instead of text (and no QR code).
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AllowanceCommand,
}

#[derive(Debug, Subcommand)]
pub enum AllowanceCommand {
    /// Create an allowance: prints the invoice (and its QR code), waits for the payment, then
    /// prints the token (prepaid) or the agent credential (metered). Both are shown once.
    New {
        /// Amount in sat (prepaid: the token's value; metered: the first funding).
        #[arg(long)]
        amount: u64,
        #[arg(long)]
        memo: Option<String>,
        /// A metered allowance (an account the agent draws from) instead of a prepaid token.
        #[arg(long)]
        metered: bool,
        /// Metered: most one draw may take, in sat.
        #[arg(long, requires = "metered")]
        per_draw: Option<u64>,
        /// Metered: most the draws of any rolling 24 hours may add up to, in sat.
        #[arg(long, requires = "metered")]
        per_day: Option<u64>,
        /// Metered: no draws after this many days.
        #[arg(long, requires = "metered")]
        expires_days: Option<u64>,
        /// Metered: the agent's own public key (hex); the credential then carries no key.
        #[arg(long, requires = "metered")]
        agent_pubkey: Option<String>,
        /// Print the invoice and return without waiting for the payment.
        #[arg(long)]
        no_wait: bool,
    },
    /// Show one allowance: balance, drawn in the last 24 h, history (and a prepaid token if
    /// its invoice was paid and the token not yet handed out).
    Show { id: String },
    /// List allowances.
    List,
    /// A new funding invoice for a metered allowance.
    Topup {
        id: String,
        #[arg(long)]
        amount: u64,
        #[arg(long)]
        no_wait: bool,
    },
    /// Revoke a metered allowance at once.
    Revoke { id: String },
    /// Pay a Lightning invoice from a metered allowance's balance.
    Withdraw {
        id: String,
        #[arg(long)]
        invoice: String,
    },
    /// The mint's books (ecash outstanding, allowance balances, received, paid out, fees).
    Books,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented example config file.
    Example,
    /// Load and validate the configuration, then print the effective settings.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum KeysetCommand {
    /// Make a new active sat keyset (with the configured input fee). The old one stays
    /// redeemable. Stop the mint first; start it again afterwards.
    Rotate,
    /// List the mint's keysets.
    List,
}

impl GlobalArgs {
    /// Defaults, then the file, then environment variables and flags (clap merged those two).
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.public_url {
            config.public_url = Some(url.clone());
        }
        if let Some(admin) = self.admin_listen {
            config.admin.listen = admin;
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("allowance-mint").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn no_subcommand_means_serve() {
        assert!(cli(&[]).command.is_none());
        assert!(matches!(cli(&["serve"]).command, Some(Command::Serve)));
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1111\"\ndata_dir = \"/from/file\"\n[limits]\nmint_max = 77",
        )
        .unwrap();
        let c = cli(&[
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:2222",
        ])
        .global
        .load_config()
        .unwrap();
        assert_eq!(c.listen.port(), 2222, "flag beats file");
        assert_eq!(
            c.data_dir,
            PathBuf::from("/from/file"),
            "file beats default"
        );
        assert_eq!(c.limits.mint_max, 77);
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(Cli::try_parse_from(["allowance-mint", "--listen", "nowhere"]).is_err());
        assert!(Cli::try_parse_from(["allowance-mint", "--bogus"]).is_err());
        let c = cli(&["--public-url", "mint.example"]).global.load_config();
        assert!(c.unwrap_err().to_string().contains("public_url"));
    }
}
