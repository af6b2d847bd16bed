//! The daemon's configuration: defaults, then a TOML file, then environment variables and flags.
//!
//! Every section has defaults, so an empty file (or none) runs a working mint on SQLite with the
//! fake Lightning backend. Unknown keys are an error, so a typo never silently falls back to a
//! default. Environment variables and flags (handled by clap in `cli`) override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::lightning::LightningConfig;
use crate::secret::SecretRef;

/// The whole configuration. Field names are the TOML keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the public Cashu API.
    pub listen: SocketAddr,
    /// Where the database, the seed and backend state live.
    pub data_dir: PathBuf,
    /// The URL wallets use to reach this mint (advertised in `/v1/info`). Defaults to
    /// `http://<listen>`.
    pub public_url: Option<String>,
    /// The mint's seed: `env:NAME` or `file:PATH` holding a BIP-39 mnemonic. Without it a
    /// mnemonic is generated on first start and kept in `<data_dir>/seed.mnemonic` (mode 0600).
    pub seed: Option<SecretRef>,
    pub info: InfoConfig,
    pub limits: LimitsConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub lightning: LightningConfig,
    pub admin: AdminConfig,
}

/// The admin API and the web page for humans, on their own listener.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Serve the admin API at all.
    pub enabled: bool,
    /// Address of the admin listener. Keep it on loopback (or behind a TLS proxy).
    pub listen: SocketAddr,
    /// The bearer token, by reference (`env:NAME` or `file:PATH`). Without it a token is
    /// generated on first start and kept in `<data_dir>/admin.token` (mode 0600).
    pub token: Option<SecretRef>,
    /// Mark the web page's session cookie `Secure` (browsers still accept it on
    /// http://localhost and http://127.0.0.1).
    pub cookie_secure: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 3339)),
            token: None,
            cookie_secure: true,
        }
    }
}

/// What `/v1/info` says about the mint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InfoConfig {
    pub name: String,
    pub description: String,
    pub long_description: Option<String>,
    pub motd: Option<String>,
    pub icon_url: Option<String>,
    pub tos_url: Option<String>,
    pub contact_email: Option<String>,
    pub contact_nostr: Option<String>,
}

/// Amount and size limits, quote lifetimes and fees.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Smallest and largest mint quote, in sat.
    pub mint_min: u64,
    pub mint_max: u64,
    /// Smallest and largest melt quote, in sat.
    pub melt_min: u64,
    pub melt_max: u64,
    /// Most inputs and outputs one swap, mint or melt request may carry.
    pub max_inputs: usize,
    pub max_outputs: usize,
    /// How long a mint quote stays payable, in seconds.
    pub mint_quote_ttl_secs: u64,
    /// How long a melt quote stays valid. Agents quote, check their policy, then pay: give them
    /// time (cdk's default of 60 s is short for that).
    pub melt_quote_ttl_secs: u64,
    /// Input fee in parts per thousand per proof (NUT-02). A change rotates the keyset on restart.
    pub input_fee_ppk: u64,
}

/// Limits of the HTTP server itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered with 408. Melts wait for the Lightning
    /// payment, so keep this above the slowest payment you expect.
    pub request_timeout_secs: u64,
    /// Longest a client may take to send its request headers before its connection is closed
    /// (a client dribbling its headers would otherwise hold the connection for ever).
    pub header_read_timeout_secs: u64,
}

/// Which database holds the mint's state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub engine: DatabaseEngine,
    /// SQLite file; defaults to `<data_dir>/mint.sqlite`.
    pub sqlite_path: Option<PathBuf>,
    pub postgres: Option<PostgresConfig>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseEngine {
    #[default]
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection string (`host=... user=... dbname=...` or `postgresql://...`), by reference
    /// because it usually carries a password.
    pub url: SecretRef,
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full`.
    #[serde(default = "default_tls_mode")]
    pub tls_mode: String,
    #[serde(default = "default_pg_connections")]
    pub max_connections: usize,
    /// How often this process reloads keysets from the database, so that a keyset rotated by
    /// another mint process on the same database is used here too without a restart
    /// (cdk's periodic keyset refresh). 0 turns it off.
    #[serde(default = "default_keyset_refresh_secs")]
    pub keyset_refresh_secs: u64,
}

fn default_tls_mode() -> String {
    "prefer".into()
}

fn default_pg_connections() -> usize {
    20
}

fn default_keyset_refresh_secs() -> u64 {
    5
}

/// Configuration errors, each saying which key is wrong and why.
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

impl ConfigError {
    pub fn invalid(key: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key,
            reason: reason.into(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3338)),
            data_dir: PathBuf::from("data"),
            public_url: None,
            seed: None,
            info: InfoConfig::default(),
            limits: LimitsConfig::default(),
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            lightning: LightningConfig::default(),
            admin: AdminConfig::default(),
        }
    }
}

impl Default for InfoConfig {
    fn default() -> Self {
        Self {
            name: "allowance-mint".into(),
            description: "A Cashu mint for bounded AI-agent allowances".into(),
            long_description: None,
            motd: None,
            icon_url: None,
            tos_url: None,
            contact_email: None,
            contact_nostr: None,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            mint_min: 1,
            mint_max: 1_000_000,
            melt_min: 1,
            melt_max: 1_000_000,
            max_inputs: 1000,
            max_outputs: 1000,
            mint_quote_ttl_secs: 3600,
            melt_quote_ttl_secs: 600,
            input_fee_ppk: 0,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 120,
            header_read_timeout_secs: 10,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            engine: DatabaseEngine::Sqlite,
            sqlite_path: None,
            postgres: None,
        }
    }
}

impl Config {
    /// How often to reload keysets from a database other mint processes may share (PostgreSQL
    /// only: a SQLite file belongs to one process).
    pub fn keyset_refresh_interval(&self) -> Option<std::time::Duration> {
        match (&self.database.engine, &self.database.postgres) {
            (DatabaseEngine::Postgres, Some(pg)) if pg.keyset_refresh_secs > 0 => {
                Some(std::time::Duration::from_secs(pg.keyset_refresh_secs))
            }
            _ => None,
        }
    }

    /// Parses TOML text (`origin` names it in errors). Missing keys take their defaults.
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

    /// The URL advertised to wallets.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.database
            .sqlite_path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("mint.sqlite"))
    }

    /// Checks what serde cannot: ranges, cross-field rules and the chosen backend's section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if l.mint_min == 0 || l.mint_min > l.mint_max {
            return Err(ConfigError::invalid(
                "limits.mint_min",
                format!(
                    "must be at least 1 and at most limits.mint_max ({})",
                    l.mint_max
                ),
            ));
        }
        if l.melt_min == 0 || l.melt_min > l.melt_max {
            return Err(ConfigError::invalid(
                "limits.melt_min",
                format!(
                    "must be at least 1 and at most limits.melt_max ({})",
                    l.melt_max
                ),
            ));
        }
        if l.max_inputs == 0 || l.max_outputs == 0 {
            return Err(ConfigError::invalid(
                "limits.max_inputs",
                "max_inputs and max_outputs must be at least 1",
            ));
        }
        if l.mint_quote_ttl_secs == 0 || l.melt_quote_ttl_secs == 0 {
            return Err(ConfigError::invalid(
                "limits.melt_quote_ttl_secs",
                "quote lifetimes must be at least 1 second",
            ));
        }
        if l.input_fee_ppk > 100_000 {
            return Err(ConfigError::invalid(
                "limits.input_fee_ppk",
                "above 100000 ppk (100 sat per proof) is surely a mistake",
            ));
        }
        if self.http.body_limit_bytes < 1024 {
            return Err(ConfigError::invalid(
                "http.body_limit_bytes",
                "must be at least 1024 bytes",
            ));
        }
        if self.http.request_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "http.request_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.http.header_read_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "http.header_read_timeout_secs",
                "must be at least 1",
            ));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    "public_url",
                    format!("{url:?} must start with http:// or https://"),
                ));
            }
        }
        if self.admin.enabled && self.admin.listen == self.listen && self.listen.port() != 0 {
            return Err(ConfigError::invalid(
                "admin.listen",
                "must differ from `listen`: the admin API has its own listener",
            ));
        }
        if self.info.name.trim().is_empty() {
            return Err(ConfigError::invalid("info.name", "must not be empty"));
        }
        if self.database.engine == DatabaseEngine::Postgres && self.database.postgres.is_none() {
            return Err(ConfigError::invalid(
                "database.postgres",
                "engine = \"postgres\" needs a [database.postgres] section with `url`",
            ));
        }
        self.lightning.validate(&self.data_dir)
    }
}

/// A commented example file, printed by `allowance-mint config example`.
pub const EXAMPLE: &str = include_str!("config_example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
        Config::default().validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_an_error() {
        let err = parse("listn = \"127.0.0.1:1\"").unwrap_err().to_string();
        assert!(err.contains("unknown field `listn`"), "{err}");
        let err = parse("[limits]\nmint_maxx = 5").unwrap_err().to_string();
        assert!(err.contains("mint_maxx"), "{err}");
    }

    #[test]
    fn file_values_override_defaults() {
        let c = parse(
            "listen = \"0.0.0.0:9999\"\n[limits]\nmint_max = 5000\ninput_fee_ppk = 100\n[info]\nname = \"x\"",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.limits.mint_max, 5000);
        assert_eq!(c.limits.mint_min, 1, "unset keys keep their default");
        assert_eq!(c.limits.input_fee_ppk, 100);
        assert_eq!(c.info.name, "x");
    }

    #[test]
    fn garbage_values_get_clear_errors() {
        assert!(parse("listen = \"not an address\"").is_err());
        assert!(parse("[limits]\nmint_max = -1").is_err());
        assert!(parse("seed = \"abandon abandon abandon\"")
            .unwrap_err()
            .to_string()
            .contains("env:NAME"));
        let c = parse("[limits]\nmint_min = 10\nmint_max = 5").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("limits.mint_min"));
        let c = parse("public_url = \"ftp://x\"").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("public_url"));
        let c = parse("[database]\nengine = \"postgres\"").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("database.postgres"));
        assert!(parse("[database]\nengine = \"mysql\"").is_err());
    }

    #[test]
    fn the_printed_example_parses_and_validates() {
        let c = parse(EXAMPLE).unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn public_url_defaults_to_the_listen_address() {
        let c = Config::default();
        assert_eq!(c.public_url(), "http://127.0.0.1:3338");
        let c = parse("public_url = \"https://mint.example.com/\"").unwrap();
        assert_eq!(c.public_url(), "https://mint.example.com");
    }
}
