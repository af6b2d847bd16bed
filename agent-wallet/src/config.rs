//! The wallet's config file, `config.toml` in its data dir: the home mint and the policy.
//!
//! ```toml
//! mint = "https://mint.example.com"   # optional: where `send` draws from by default
//!
//! [policy]
//! max_per_request = 100
//! max_per_host_per_day = 1000
//! max_total = "unlimited"
//! allowed_hosts = ["*"]
//! allowed_mints = ["*"]
//! schemes = ["cashu", "l402", "x402-cashu"]   # 402 schemes paid, most preferred first
//! ```
//!
//! Unknown keys are an error. Flags and environment variables override the file per run.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use cdk::mint_url::MintUrl;
use serde::{Deserialize, Serialize};

use crate::error::WalletError;
use crate::policy::Policy;

/// The file name inside the data dir.
pub const CONFIG_FILE: &str = "config.toml";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The home mint: where `send` draws from when the wallet holds ecash at several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mint: Option<String>,
    #[serde(default)]
    pub policy: Policy,
    /// Drawing from a metered allowance (see `agent-wallet allowance connect`).
    #[serde(default)]
    pub allowance: AllowanceSettings,
}

/// How the wallet draws from a connected allowance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllowanceSettings {
    /// Sat to hold beyond what a payment needs after a draw, so that not every payment draws.
    /// Keep it small: it is what a compromised agent could lose at once.
    pub float: u64,
}

impl Default for AllowanceSettings {
    fn default() -> Self {
        Self { float: 100 }
    }
}

impl Config {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(CONFIG_FILE)
    }

    /// Reads the config, or the defaults when the file does not exist.
    pub fn load(data_dir: &Path) -> Result<Self, WalletError> {
        let path = Self::path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(WalletError::io(&path, e)),
        };
        let config: Config = toml::from_str(&text).map_err(|e| WalletError::Config {
            detail: format!("{}: {e}", path.display()),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Writes the config (atomically: a temporary file renamed over the old one).
    pub fn save(&self, data_dir: &Path) -> Result<(), WalletError> {
        self.validate()?;
        let path = Self::path(data_dir);
        let text = toml::to_string_pretty(self).map_err(|e| WalletError::Config {
            detail: e.to_string(),
        })?;
        let tmp = data_dir.join(format!("{CONFIG_FILE}.tmp"));
        std::fs::write(&tmp, text).map_err(|e| WalletError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| WalletError::io(&path, e))
    }

    pub fn validate(&self) -> Result<(), WalletError> {
        self.home_mint()?;
        self.policy.validate().map_err(|e| WalletError::Config {
            detail: e.to_string(),
        })
    }

    /// The home mint, parsed.
    pub fn home_mint(&self) -> Result<Option<MintUrl>, WalletError> {
        self.mint
            .as_deref()
            .map(|m| {
                MintUrl::from_str(m).map_err(|e| WalletError::Config {
                    detail: format!("mint {m:?}: {e}"),
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_gives_defaults_and_save_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::load(dir.path()).unwrap();
        assert_eq!(c, Config::default());
        c.mint = Some("http://127.0.0.1:3338".into());
        c.policy.set("max_total", "42").unwrap();
        c.save(dir.path()).unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), c);
    }

    #[test]
    fn unknown_keys_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            Config::path(dir.path()),
            "mint = \"http://m\"\nsurprise = 1\n",
        )
        .unwrap();
        assert!(matches!(
            Config::load(dir.path()),
            Err(WalletError::Config { .. })
        ));
        std::fs::write(
            Config::path(dir.path()),
            "[policy]\nallowed_hosts = [\"a.*.b\"]\n",
        )
        .unwrap();
        assert!(Config::load(dir.path()).is_err());
    }
}
