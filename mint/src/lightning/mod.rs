//! Lightning backends: the node that receives the invoices humans pay and pays merchants'.
//!
//! `settings` parses and validates the `[lightning]` section; this module turns it into a cdk
//! payment processor. The real backends (LND, CLN, LDK-node) are behind cargo features of the
//! same names; a config that picks a backend this binary lacks gets a clear error.

mod settings;
#[cfg(test)]
mod settings_tests;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use cdk::cdk_payment::DynMintPayment;
use cdk::nuts::CurrencyUnit;
use cdk::types::FeeReserve;
use cdk::Amount;
use cdk_common::database::DynKVStore;

pub use settings::{Backend, ClnConfig, FakeConfig, LdkNodeConfig, LightningConfig, LndConfig};

/// A payment backend that a program embedding the mint supplies in place of the configured one.
/// The configuration cannot name it: the `allowance-mint` binary never injects one. The test
/// support crate uses it to run the real mint on a simulated Lightning network.
#[derive(Clone)]
pub struct InjectedBackend {
    /// Names the backend in `/ready`, metrics and logs.
    pub name: &'static str,
    /// A short label for the mint's name and description in `/v1/info` (e.g. `SIMULATED
    /// LIGHTNING`), as `FAKE LIGHTNING` labels the fake backend.
    pub label: &'static str,
    /// The notice in `/v1/info`'s motd and the start-up log.
    pub warning: String,
    pub processor: DynMintPayment,
}

/// The backend a running mint uses: the configured one, or an injected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveBackend {
    Configured(Backend),
    Injected(&'static str),
}

impl ActiveBackend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Configured(backend) => backend.name(),
            Self::Injected(name) => name,
        }
    }
}

/// The warning that labels a mint running on the fake backend, at start-up and in `/v1/info`.
pub const FAKE_BACKEND_WARNING: &str = "FAKE LIGHTNING BACKEND: invoices are never really paid \
and this ecash is worth nothing. For testing only.";

#[derive(Debug, thiserror::Error)]
pub enum LightningError {
    #[error(
        "lightning.backend = \"{0}\" but this binary was built without it: rebuild with \
         `cargo build -p allowance-mint --features {0}`"
    )]
    NotCompiled(&'static str),
    #[error("invalid Lightning configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot start the {backend} backend: {message}")]
    Start {
        backend: &'static str,
        message: String,
    },
}

/// Builds the configured backend. `kv` is the mint database's key-value store, which the real
/// backends use for their own bookkeeping.
pub async fn build(
    cfg: &LightningConfig,
    data_dir: &Path,
    kv: DynKVStore,
) -> Result<DynMintPayment, LightningError> {
    cfg.validate(data_dir)?;
    let fee_reserve = FeeReserve {
        min_fee_reserve: Amount::from(cfg.reserve_fee_min),
        percent_fee_reserve: cfg.fee_percent,
    };
    match cfg.backend {
        Backend::Fake => {
            let _ = kv;
            Ok(Arc::new(cdk_fake_wallet::FakeWallet::new(
                fee_reserve,
                HashMap::new(),
                HashSet::new(),
                cfg.fake.delay_secs,
                CurrencyUnit::Sat,
            )))
        }
        Backend::Lnd => build_lnd(cfg, fee_reserve, kv).await,
        Backend::Cln => build_cln(cfg, fee_reserve, kv).await,
        Backend::LdkNode => build_ldk_node(cfg, data_dir, fee_reserve, kv).await,
    }
}

#[cfg(any(feature = "lnd", feature = "cln", feature = "ldk-node"))]
fn start_error(backend: &'static str, e: impl std::fmt::Display) -> LightningError {
    LightningError::Start {
        backend,
        message: e.to_string(),
    }
}

#[cfg(feature = "lnd")]
async fn build_lnd(
    cfg: &LightningConfig,
    fee_reserve: FeeReserve,
    kv: DynKVStore,
) -> Result<DynMintPayment, LightningError> {
    let lnd = cfg.lnd.as_ref().ok_or(LightningError::NotCompiled("lnd"))?;
    let backend = cdk_lnd::Lnd::new(
        lnd.address.clone(),
        lnd.cert_file.clone(),
        lnd.macaroon_file.clone(),
        fee_reserve,
        kv,
    )
    .await
    .map_err(|e| start_error("lnd", e))?;
    Ok(Arc::new(backend))
}

#[cfg(not(feature = "lnd"))]
async fn build_lnd(
    _: &LightningConfig,
    _: FeeReserve,
    _: DynKVStore,
) -> Result<DynMintPayment, LightningError> {
    Err(LightningError::NotCompiled("lnd"))
}

#[cfg(feature = "cln")]
async fn build_cln(
    cfg: &LightningConfig,
    fee_reserve: FeeReserve,
    kv: DynKVStore,
) -> Result<DynMintPayment, LightningError> {
    let cln = cfg.cln.as_ref().ok_or(LightningError::NotCompiled("cln"))?;
    let backend = cdk_cln::Cln::new(
        cln.rpc_path.clone(),
        fee_reserve,
        cln.expose_private_channels,
        kv,
    )
    .await
    .map_err(|e| start_error("cln", e))?
    .with_bolt12(cln.bolt12);
    Ok(Arc::new(backend))
}

#[cfg(not(feature = "cln"))]
async fn build_cln(
    _: &LightningConfig,
    _: FeeReserve,
    _: DynKVStore,
) -> Result<DynMintPayment, LightningError> {
    Err(LightningError::NotCompiled("cln"))
}

#[cfg(feature = "ldk-node")]
async fn build_ldk_node(
    cfg: &LightningConfig,
    data_dir: &Path,
    fee_reserve: FeeReserve,
    kv: DynKVStore,
) -> Result<DynMintPayment, LightningError> {
    use std::str::FromStr;

    use cdk_ldk_node::{BitcoinRpcConfig, CdkLdkNodeBuilder, ChainSource, GossipSource};
    use ldk_node::bitcoin::Network;
    use ldk_node::lightning::ln::msgs::SocketAddress;

    let ldk = cfg
        .ldk_node
        .as_ref()
        .ok_or(LightningError::NotCompiled("ldk-node"))?;
    let err = |e: String| start_error("ldk-node", e);
    let network = Network::from_str(&ldk.network).map_err(|e| err(e.to_string()))?;
    let missing = |k: &str| err(format!("lightning.ldk_node.{k} is missing"));
    let chain_source = match ldk.chain_source.as_str() {
        "esplora" => ChainSource::Esplora(
            ldk.esplora_url
                .clone()
                .ok_or_else(|| missing("esplora_url"))?,
        ),
        "electrum" => ChainSource::Electrum(
            ldk.electrum_url
                .clone()
                .ok_or_else(|| missing("electrum_url"))?,
        ),
        _ => ChainSource::BitcoinRpc(BitcoinRpcConfig {
            host: ldk
                .bitcoind_rpc_host
                .clone()
                .ok_or_else(|| missing("bitcoind_rpc_host"))?,
            port: ldk
                .bitcoind_rpc_port
                .ok_or_else(|| missing("bitcoind_rpc_port"))?,
            user: ldk
                .bitcoind_rpc_user
                .clone()
                .ok_or_else(|| missing("bitcoind_rpc_user"))?,
            password: ldk
                .bitcoind_rpc_password
                .as_ref()
                .ok_or_else(|| missing("bitcoind_rpc_password"))?
                .resolve()
                .map_err(|e| err(e.to_string()))?
                .expose()
                .to_string(),
        }),
    };
    let gossip = match &ldk.rgs_url {
        Some(url) => GossipSource::RapidGossipSync(url.clone()),
        None => GossipSource::P2P,
    };
    let listen = ldk
        .listen
        .iter()
        .map(|a| SocketAddress::from_str(a).map_err(|e| err(format!("listen {a:?}: {e:?}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let words = ldk.mnemonic.resolve().map_err(|e| err(e.to_string()))?;
    let mnemonic = bip39::Mnemonic::parse(words.expose()).map_err(|e| {
        err(format!(
            "lightning.ldk_node.mnemonic is not a BIP-39 mnemonic: {e}"
        ))
    })?;
    let storage = ldk.storage_dir(data_dir);
    std::fs::create_dir_all(&storage).map_err(|e| err(e.to_string()))?;
    let node = CdkLdkNodeBuilder::new(
        network,
        chain_source,
        gossip,
        storage.to_string_lossy().into_owned(),
        fee_reserve,
        listen,
        kv,
    )
    .with_seed(mnemonic)
    .build()
    .map_err(|e| err(e.to_string()))?;
    Ok(Arc::new(node))
}

#[cfg(not(feature = "ldk-node"))]
async fn build_ldk_node(
    _: &LightningConfig,
    _: &Path,
    _: FeeReserve,
    _: DynKVStore,
) -> Result<DynMintPayment, LightningError> {
    Err(LightningError::NotCompiled("ldk-node"))
}
