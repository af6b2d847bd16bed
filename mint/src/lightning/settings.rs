//! The `[lightning]` section: which backend pays and receives, and each backend's settings.
//!
//! Parsing and validation live here and are always compiled, so a config for any backend is
//! checked the same way whichever backends this binary was built with.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::secret::SecretRef;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LightningConfig {
    pub backend: Backend,
    /// Fee reserve asked of melts: a fraction of the amount (0.02 = 2 %) ...
    pub fee_percent: f32,
    /// ... but at least this many sat.
    pub reserve_fee_min: u64,
    pub fake: FakeConfig,
    pub lnd: Option<LndConfig>,
    pub cln: Option<ClnConfig>,
    pub ldk_node: Option<LdkNodeConfig>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// cdk's fake backend: every invoice is "paid" by itself. For trying things out, never money.
    #[default]
    Fake,
    Lnd,
    Cln,
    LdkNode,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Fake => "fake",
            Self::Lnd => "lnd",
            Self::Cln => "cln",
            Self::LdkNode => "ldk-node",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FakeConfig {
    /// Seconds before a fake invoice counts as paid, and before a fake payment completes.
    pub delay_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LndConfig {
    /// gRPC address, `https://host:10009`.
    pub address: String,
    /// LND's `tls.cert`.
    pub cert_file: PathBuf,
    /// A macaroon allowed to create invoices and send payments (`admin.macaroon` or a baked one).
    pub macaroon_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClnConfig {
    /// Core Lightning's RPC socket, e.g. `~/.lightning/bitcoin/lightning-rpc`.
    pub rpc_path: PathBuf,
    #[serde(default)]
    pub bolt12: bool,
    #[serde(default)]
    pub expose_private_channels: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LdkNodeConfig {
    /// `bitcoin`, `testnet`, `signet` or `regtest`.
    pub network: String,
    /// `esplora`, `electrum` or `bitcoind`.
    pub chain_source: String,
    pub esplora_url: Option<String>,
    pub electrum_url: Option<String>,
    pub bitcoind_rpc_host: Option<String>,
    pub bitcoind_rpc_port: Option<u16>,
    pub bitcoind_rpc_user: Option<String>,
    pub bitcoind_rpc_password: Option<SecretRef>,
    /// Rapid Gossip Sync server; without it the node learns gossip peer to peer.
    pub rgs_url: Option<String>,
    /// Node state; defaults to `<data_dir>/ldk-node`.
    pub storage_dir: Option<PathBuf>,
    /// Lightning P2P listen addresses.
    #[serde(default = "default_ldk_listen")]
    pub listen: Vec<String>,
    /// The node's own mnemonic (separate from the mint's seed).
    pub mnemonic: SecretRef,
}

fn default_ldk_listen() -> Vec<String> {
    vec!["0.0.0.0:9735".into()]
}

impl Default for LightningConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Fake,
            fee_percent: 0.02,
            reserve_fee_min: 2,
            fake: FakeConfig::default(),
            lnd: None,
            cln: None,
            ldk_node: None,
        }
    }
}

impl LightningConfig {
    /// Checks the chosen backend's section: that it exists, that the files it names are there and
    /// readable, that URLs and networks are well formed.
    pub fn validate(&self, data_dir: &Path) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.fee_percent) || self.fee_percent.is_nan() {
            return Err(ConfigError::invalid(
                "lightning.fee_percent",
                "must be a fraction between 0 and 1 (0.02 means 2 %)",
            ));
        }
        match self.backend {
            Backend::Fake => Ok(()),
            Backend::Lnd => self
                .lnd
                .as_ref()
                .ok_or_else(|| {
                    missing_section("lightning.lnd", "address, cert_file, macaroon_file")
                })?
                .validate(),
            Backend::Cln => self
                .cln
                .as_ref()
                .ok_or_else(|| missing_section("lightning.cln", "rpc_path"))?
                .validate(),
            Backend::LdkNode => self
                .ldk_node
                .as_ref()
                .ok_or_else(|| {
                    missing_section("lightning.ldk_node", "network, chain_source, mnemonic")
                })?
                .validate(data_dir),
        }
    }
}

fn missing_section(key: &'static str, needs: &str) -> ConfigError {
    ConfigError::invalid(
        key,
        format!("the chosen backend needs a [{key}] section with {needs}"),
    )
}

/// A file the backend must read: present, a regular file, not empty.
fn readable_file(key: &'static str, what: &str, path: &Path) -> Result<(), ConfigError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        ConfigError::invalid(
            key,
            format!("{what} {} cannot be read: {e}", path.display()),
        )
    })?;
    if !meta.is_file() {
        return Err(ConfigError::invalid(
            key,
            format!("{what} {} is not a regular file", path.display()),
        ));
    }
    if meta.len() == 0 {
        return Err(ConfigError::invalid(
            key,
            format!("{what} {} is empty", path.display()),
        ));
    }
    std::fs::File::open(path).map_err(|e| {
        ConfigError::invalid(
            key,
            format!("{what} {} cannot be opened: {e}", path.display()),
        )
    })?;
    Ok(())
}

fn url_with_scheme(key: &'static str, url: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let ok = schemes.iter().any(|s| {
        url.strip_prefix(s)
            .and_then(|r| r.strip_prefix("://"))
            .is_some_and(|r| !r.is_empty())
    });
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!(
                "{url:?} must be a URL starting with {}",
                schemes.join("://, ") + "://"
            ),
        ))
    }
}

impl LndConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        url_with_scheme("lightning.lnd.address", &self.address, &["https"])?;
        readable_file(
            "lightning.lnd.cert_file",
            "LND TLS certificate",
            &self.cert_file,
        )?;
        readable_file(
            "lightning.lnd.macaroon_file",
            "LND macaroon",
            &self.macaroon_file,
        )
    }
}

impl ClnConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        use std::os::unix::fs::FileTypeExt;
        let key = "lightning.cln.rpc_path";
        let meta = std::fs::metadata(&self.rpc_path).map_err(|e| {
            ConfigError::invalid(
                key,
                format!(
                    "Core Lightning RPC socket {} is not there: {e}",
                    self.rpc_path.display()
                ),
            )
        })?;
        if !meta.file_type().is_socket() {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "{} is not a unix socket (is lightningd running?)",
                    self.rpc_path.display()
                ),
            ));
        }
        Ok(())
    }
}

impl LdkNodeConfig {
    pub fn validate(&self, data_dir: &Path) -> Result<(), ConfigError> {
        if !matches!(
            self.network.as_str(),
            "bitcoin" | "testnet" | "signet" | "regtest"
        ) {
            return Err(ConfigError::invalid(
                "lightning.ldk_node.network",
                format!(
                    "{:?} is not one of bitcoin, testnet, signet, regtest",
                    self.network
                ),
            ));
        }
        match self.chain_source.as_str() {
            "esplora" => {
                let url = self.esplora_url.as_deref().ok_or_else(|| {
                    ConfigError::invalid(
                        "lightning.ldk_node.esplora_url",
                        "needed for chain_source = \"esplora\"",
                    )
                })?;
                url_with_scheme("lightning.ldk_node.esplora_url", url, &["http", "https"])?;
            }
            "electrum" => {
                let url = self.electrum_url.as_deref().ok_or_else(|| {
                    ConfigError::invalid(
                        "lightning.ldk_node.electrum_url",
                        "needed for chain_source = \"electrum\"",
                    )
                })?;
                url_with_scheme("lightning.ldk_node.electrum_url", url, &["tcp", "ssl"])?;
            }
            "bitcoind" => {
                if self.bitcoind_rpc_host.is_none()
                    || self.bitcoind_rpc_port.is_none()
                    || self.bitcoind_rpc_user.is_none()
                    || self.bitcoind_rpc_password.is_none()
                {
                    return Err(ConfigError::invalid(
                        "lightning.ldk_node.bitcoind_rpc_host",
                        "chain_source = \"bitcoind\" needs bitcoind_rpc_host, _port, _user and _password",
                    ));
                }
            }
            other => {
                return Err(ConfigError::invalid(
                    "lightning.ldk_node.chain_source",
                    format!("{other:?} is not one of esplora, electrum, bitcoind"),
                ))
            }
        }
        if let Some(url) = &self.rgs_url {
            url_with_scheme("lightning.ldk_node.rgs_url", url, &["http", "https"])?;
        }
        if self.listen.is_empty() {
            return Err(ConfigError::invalid(
                "lightning.ldk_node.listen",
                "needs at least one address",
            ));
        }
        for addr in &self.listen {
            if addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(ConfigError::invalid(
                    "lightning.ldk_node.listen",
                    format!("{addr:?} is not host:port"),
                ));
            }
        }
        let _ = self.storage_dir(data_dir);
        Ok(())
    }

    pub fn storage_dir(&self, data_dir: &Path) -> PathBuf {
        self.storage_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("ldk-node"))
    }
}
