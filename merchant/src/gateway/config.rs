//! The gateway's configuration: defaults, then a TOML file, then environment variables, then
//! flags (the last two merged by clap). Unknown keys are an error.
//!
//! ```toml
//! listen = "127.0.0.1:8402"
//! upstream = "http://127.0.0.1:9000"
//! data_dir = "merchant-data"
//! mints = ["https://mint.example.com"]
//! lock = false              # require tokens P2PK-locked to the merchant's key
//! offline = true            # serve locked tokens after offline checks, redeem them later
//! offline_lock_margin_secs = 3600 # a lock must hold this long for offline acceptance
//! unpriced = "free"         # or "refuse": what happens to paths no [[price]] matches
//! cashu = true              # offer/accept NUT-24 X-Cashu
//! x402 = true               # offer/accept x402 `cashu` (PAYMENT-REQUIRED, v1 body)
//! l402 = false              # offer/accept L402 (one mint quote per challenge)
//! l402_service = "paywall"  # service name in L402 macaroon caveats
//! l402_validity_secs = 3600 # how long a paid L402 credential may be reused
//!
//! [[price]]
//! method = "GET"            # optional: any method when absent
//! path_prefix = "/weather"  # longest prefix wins
//! amount = 5
//! unit = "sat"
//!
//! [settle]                  # optional automatic settlement
//! threshold_sat = 1000
//! lightning_address = "me@example.com"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cdk::mint_url::MintUrl;
use serde::{Deserialize, Serialize};

use crate::auto_settle::AutoSettleConfig;

/// What happens to a request no `[[price]]` rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Unpriced {
    /// Forwarded without payment.
    #[default]
    Free,
    /// Refused with 404.
    Refuse,
}

/// The whole configuration. Field names are the TOML keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address the gateway listens on.
    pub listen: SocketAddr,
    /// Base URL of the upstream HTTP server (`http://host:port`, optionally with a path prefix).
    pub upstream: Option<String>,
    /// The merchant's data directory (seed, wallet, replay record, settlements).
    pub data_dir: PathBuf,
    /// Accepted mints.
    pub mints: Vec<String>,
    /// Require tokens P2PK-locked to the merchant's key (and with them DLEQ proofs).
    pub lock: bool,
    /// Require DLEQ proofs; defaults to `lock`.
    pub require_dleq: Option<bool>,
    /// Serve tokens only the merchant's key can spend (locked rules) after the offline checks
    /// and the replay record, and redeem them at the mint in the background.
    pub offline: bool,
    /// How long a token's lock must still hold for offline acceptance, in seconds; a lock
    /// ending sooner is redeemed online before serving.
    pub offline_lock_margin_secs: u64,
    pub unpriced: Unpriced,
    /// Offer and accept NUT-24 `X-Cashu`.
    pub cashu: bool,
    /// Offer and accept x402 with the `cashu` scheme.
    pub x402: bool,
    /// Offer and accept L402 (each challenge creates a mint quote at the first mint).
    pub l402: bool,
    /// Service name in L402 macaroon caveats.
    pub l402_service: String,
    /// How long a paid L402 credential may be reused, in seconds.
    pub l402_validity_secs: u64,
    /// `Retry-After` of a 503 when the mint is unreachable, in seconds.
    pub retry_after_secs: u64,
    /// Longest a redemption at the mint may take before the request gets a 503, in seconds.
    pub redeem_timeout_secs: u64,
    /// Largest request body forwarded, in bytes.
    pub body_limit_bytes: usize,
    /// Longest wait for upstream bytes (connect, headers, each read), in seconds.
    pub upstream_timeout_secs: u64,
    /// Longest a client may take to send its request headers before its connection is closed.
    pub header_read_timeout_secs: u64,
    /// Price rules.
    #[serde(rename = "price")]
    pub prices: Vec<PriceRule>,
    /// Automatic settlement.
    pub settle: AutoSettleConfig,
}

/// One `[[price]]` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceRule {
    /// HTTP method (`GET`, `POST`, ...); any method when absent or `*`.
    #[serde(default)]
    pub method: Option<String>,
    /// The rule covers every path starting with this string; the longest matching prefix wins.
    pub path_prefix: String,
    pub amount: u64,
    #[serde(default = "default_unit")]
    pub unit: String,
    /// Overrides the gateway-wide `lock` for this rule.
    #[serde(default)]
    pub lock: Option<bool>,
}

fn default_unit() -> String {
    "sat".into()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8402)),
            upstream: None,
            data_dir: PathBuf::from("merchant-data"),
            mints: Vec::new(),
            lock: false,
            require_dleq: None,
            offline: true,
            offline_lock_margin_secs: crate::offline::DEFAULT_LOCK_MARGIN.as_secs(),
            unpriced: Unpriced::Free,
            cashu: true,
            x402: true,
            l402: false,
            l402_service: "paywall".into(),
            l402_validity_secs: 3600,
            retry_after_secs: 5,
            redeem_timeout_secs: 30,
            body_limit_bytes: 10 * 1024 * 1024,
            upstream_timeout_secs: 60,
            header_read_timeout_secs: 10,
            prices: Vec::new(),
            settle: AutoSettleConfig::default(),
        }
    }
}

impl GatewayConfig {
    /// Parses TOML text (`origin` names it in errors).
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Defaults, overlaid by the file at `path` when one is given.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => Ok(Self::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Self::from_toml(&text, path)
            }
        }
    }

    /// The accepted mints, parsed.
    pub fn mint_urls(&self) -> Result<Vec<MintUrl>, ConfigError> {
        self.mints
            .iter()
            .map(|m| MintUrl::from_str(m).map_err(|e| invalid("mints", format!("{m}: {e}"))))
            .collect()
    }

    /// The upstream base URL, parsed.
    pub fn upstream_url(&self) -> Result<url::Url, ConfigError> {
        let raw = self.upstream.as_deref().ok_or_else(|| {
            invalid(
                "upstream",
                "required (the server to put the paywall in front of)",
            )
        })?;
        let url = url::Url::parse(raw).map_err(|e| invalid("upstream", e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(invalid("upstream", "must be an http:// or https:// URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("upstream", "must not carry a query or fragment"));
        }
        Ok(url)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.upstream_url()?;
        if self.mints.is_empty() {
            return Err(invalid("mints", "name at least one accepted mint"));
        }
        self.mint_urls()?;
        if !(self.cashu || self.x402 || self.l402) {
            return Err(invalid("cashu", "enable at least one of cashu, x402, l402"));
        }
        if self.l402_service.is_empty()
            || !self
                .l402_service
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid("l402_service", "letters, digits and - only"));
        }
        if self.l402_validity_secs == 0 {
            return Err(invalid("l402_validity_secs", "must be positive"));
        }
        for rule in &self.prices {
            if !rule.path_prefix.starts_with('/') {
                return Err(invalid(
                    "price.path_prefix",
                    format!("{:?} must start with /", rule.path_prefix),
                ));
            }
            if rule.amount == 0 {
                return Err(invalid(
                    "price.amount",
                    format!("{} has amount 0", rule.path_prefix),
                ));
            }
            if rule.unit.trim().is_empty() {
                return Err(invalid("price.unit", "must not be empty"));
            }
            if let Some(m) = &rule.method {
                if m != "*" && axum::http::Method::from_str(&m.to_ascii_uppercase()).is_err() {
                    return Err(invalid(
                        "price.method",
                        format!("{m} is not an HTTP method"),
                    ));
                }
            }
        }
        if self.offline_lock_margin_secs < 60 {
            return Err(invalid(
                "offline_lock_margin_secs",
                "must be at least 60: a lock that opens sooner protects nothing",
            ));
        }
        if self.retry_after_secs == 0 {
            return Err(invalid("retry_after_secs", "must be at least 1"));
        }
        if self.redeem_timeout_secs == 0 {
            return Err(invalid("redeem_timeout_secs", "must be at least 1"));
        }
        if self.upstream_timeout_secs == 0 {
            return Err(invalid("upstream_timeout_secs", "must be at least 1"));
        }
        if self.header_read_timeout_secs == 0 {
            return Err(invalid("header_read_timeout_secs", "must be at least 1"));
        }
        self.settle
            .validate()
            .map_err(|e| invalid("settle", e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
upstream = "http://127.0.0.1:9000"
mints = ["http://127.0.0.1:3338"]
unpriced = "refuse"

[[price]]
method = "GET"
path_prefix = "/weather"
amount = 5
unit = "sat"

[[price]]
path_prefix = "/translate"
amount = 20

[settle]
threshold_sat = 100
command = "cat invoice.txt"
"#;

    #[test]
    fn scheme_switches_default_and_validate() {
        let c = GatewayConfig::from_toml(EXAMPLE, Path::new("x.toml")).unwrap();
        assert_eq!((c.cashu, c.x402, c.l402), (true, true, false));
        assert_eq!(c.l402_validity_secs, 3600);
        assert!(
            c.offline,
            "offline acceptance of locked tokens is on by default"
        );
        assert_eq!(c.offline_lock_margin_secs, 3600);
        let off = GatewayConfig::from_toml(
            &format!("offline = false\noffline_lock_margin_secs = 7200\n{EXAMPLE}"),
            Path::new("x.toml"),
        )
        .unwrap();
        assert!(!off.offline);
        assert_eq!(off.offline_lock_margin_secs, 7200);
        let short = GatewayConfig {
            offline_lock_margin_secs: 10,
            ..off
        };
        assert!(short
            .validate()
            .unwrap_err()
            .to_string()
            .contains("offline_lock_margin_secs"));
        let text = format!("{EXAMPLE}\n");
        let text = text.replacen(
            "unpriced = \"refuse\"",
            "unpriced = \"refuse\"\nl402 = true\nl402_service = \"weather-api\"\nl402_validity_secs = 60",
            1,
        );
        let c = GatewayConfig::from_toml(&text, Path::new("x.toml")).unwrap();
        c.validate().unwrap();
        assert!(c.l402);
        assert_eq!(c.l402_service, "weather-api");
        let none = GatewayConfig {
            cashu: false,
            x402: false,
            l402: false,
            ..c.clone()
        };
        assert!(none.validate().is_err(), "at least one scheme");
        let bad = GatewayConfig {
            l402_service: "a b".into(),
            ..c
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn the_documented_shape_parses_and_validates() {
        let c = GatewayConfig::from_toml(EXAMPLE, Path::new("x.toml")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.prices.len(), 2);
        assert_eq!(c.prices[1].unit, "sat");
        assert_eq!(c.unpriced, Unpriced::Refuse);
        assert_eq!(c.settle.threshold_sat, 100);
    }

    #[test]
    fn the_example_config_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gateway.toml");
        let c = GatewayConfig::load(Some(&path)).unwrap();
        c.validate().unwrap();
        assert_eq!(c.prices.len(), 2);
        assert_eq!(c.prices[1].lock, Some(true));
        assert!(!c.settle.enabled());
    }

    #[test]
    fn unknown_keys_are_an_error_at_every_level() {
        for bad in [
            "upstrem = \"http://x\"",
            "[[price]]\npath_prefix = \"/a\"\namount = 1\ncost = 2",
            "[settle]\nthreshold = 1",
        ] {
            let e = GatewayConfig::from_toml(bad, Path::new("bad.toml")).unwrap_err();
            assert!(e.to_string().contains("bad.toml"), "{e}");
        }
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = GatewayConfig::from_toml(EXAMPLE, Path::new("x.toml")).unwrap();
        c.mints.clear();
        assert!(c.validate().unwrap_err().to_string().contains("mints"));
        let mut c = GatewayConfig::from_toml(EXAMPLE, Path::new("x.toml")).unwrap();
        c.upstream = Some("ftp://x".into());
        assert!(c.validate().unwrap_err().to_string().contains("upstream"));
        let mut c = GatewayConfig::from_toml(EXAMPLE, Path::new("x.toml")).unwrap();
        c.prices[0].path_prefix = "weather".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("path_prefix"));
        let mut c = GatewayConfig::from_toml(EXAMPLE, Path::new("x.toml")).unwrap();
        c.settle.command = None;
        assert!(c.validate().unwrap_err().to_string().contains("settle"));
    }
}
