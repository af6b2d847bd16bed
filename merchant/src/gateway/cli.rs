//! `paywall-gateway` flags. Flags override environment variables (clap merges the two), which
//! override the config file, which overrides the defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use super::config::{ConfigError, GatewayConfig, Unpriced};

/// A reverse proxy that charges Cashu ecash (NUT-24, HTTP 402) for an upstream HTTP server.
#[derive(Debug, Parser)]
#[command(name = "paywall-gateway", version)]
pub struct GatewayArgs {
    /// TOML config file (`merchant/examples/gateway.toml` shows every key).
    #[arg(long, short = 'c', env = "MERCHANT_GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8402].
    #[arg(long, env = "MERCHANT_GATEWAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Upstream base URL, e.g. http://127.0.0.1:9000.
    #[arg(long, env = "MERCHANT_GATEWAY_UPSTREAM")]
    pub upstream: Option<String>,
    /// The merchant's data directory [default: ./merchant-data].
    #[arg(long, env = "MERCHANT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Accepted mint (repeat, or separate with commas); replaces the file's `mints`.
    #[arg(long = "mint", env = "MERCHANT_MINT_URL", value_delimiter = ',')]
    pub mints: Vec<String>,
    /// Require tokens P2PK-locked to the merchant's key (`--lock` or `--lock=false`).
    #[arg(long, env = "MERCHANT_GATEWAY_LOCK", num_args = 0..=1, default_missing_value = "true")]
    pub lock: Option<bool>,
    /// Serve locked tokens after offline checks and redeem them in the background
    /// (`--offline=false` swaps every token before serving).
    #[arg(long, env = "MERCHANT_GATEWAY_OFFLINE", num_args = 0..=1, default_missing_value = "true")]
    pub offline: Option<bool>,
    /// Offer and accept L402 (`--l402` or `--l402=false`).
    #[arg(long, env = "MERCHANT_GATEWAY_L402", num_args = 0..=1, default_missing_value = "true")]
    pub l402: Option<bool>,
    /// Offer and accept x402 `cashu` (`--x402=false` to turn it off).
    #[arg(long, env = "MERCHANT_GATEWAY_X402", num_args = 0..=1, default_missing_value = "true")]
    pub x402: Option<bool>,
    /// What to do with requests no price rule matches.
    #[arg(long, env = "MERCHANT_GATEWAY_UNPRICED")]
    pub unpriced: Option<Unpriced>,
    /// Log format: `text` or `json` (levels: RUST_LOG, default `info`); logs go to stderr.
    #[arg(long, env = "MERCHANT_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Print the effective configuration and exit.
    #[arg(long)]
    pub check_config: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl GatewayArgs {
    /// Defaults, then the file, then environment variables and flags.
    pub fn load_config(&self) -> Result<GatewayConfig, ConfigError> {
        let mut config = GatewayConfig::load(self.config.as_deref())?;
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(upstream) = &self.upstream {
            config.upstream = Some(upstream.clone());
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if !self.mints.is_empty() {
            config.mints = self.mints.clone();
        }
        if let Some(lock) = self.lock {
            config.lock = lock;
        }
        if let Some(offline) = self.offline {
            config.offline = offline;
        }
        if let Some(l402) = self.l402 {
            config.l402 = l402;
        }
        if let Some(x402) = self.x402 {
            config.x402 = x402;
        }
        if let Some(unpriced) = self.unpriced {
            config.unpriced = unpriced;
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> GatewayArgs {
        GatewayArgs::try_parse_from(std::iter::once("paywall-gateway").chain(a.iter().copied()))
            .unwrap()
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("g.toml");
        std::fs::write(
            &file,
            "upstream = \"http://127.0.0.1:1\"\nmints = [\"http://a\"]\ndata_dir = \"/from/file\"\n",
        )
        .unwrap();
        let c = args(&[
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--mint",
            "http://b,http://c",
            "--lock",
            "--unpriced",
            "refuse",
            "--offline=false",
        ])
        .load_config()
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(
            c.mints,
            vec!["http://b".to_string(), "http://c".to_string()]
        );
        assert!(c.lock);
        assert!(!c.offline);
        assert_eq!(c.unpriced, Unpriced::Refuse);
        assert_eq!(c.retry_after_secs, 5, "default kept");
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(GatewayArgs::try_parse_from(["paywall-gateway", "--bogus"]).is_err());
        assert!(GatewayArgs::try_parse_from(["paywall-gateway", "--listen", "nowhere"]).is_err());
        let missing = args(&["--mint", "http://a"]).load_config().unwrap_err();
        assert!(missing.to_string().contains("upstream"), "{missing}");
    }
}
