//! Assembles a running cdk `Mint` from the configuration: storage, seed, Lightning backend,
//! limits, fees and what `/v1/info` says.

use std::collections::HashMap;
use std::sync::Arc;

use cdk::mint::{MintBuilder, MintMeltLimits, UnitConfig};
use cdk::nuts::nut17::SupportedMethods;
use cdk::nuts::nut19::{CachedEndpoint, Method, Path as CachePath};
use cdk::nuts::{ContactInfo, CurrencyUnit, MintInfo, MintVersion, PaymentMethod};
use cdk::types::QuoteTTL;
use cdk::Mint;

use cashu_402::allowance::METHOD;
use cdk::cdk_payment::DynMintPayment;

use crate::allowance::{AllowanceProcessor, Registry};
use crate::config::Config;
use crate::data_dir::{DataDirLock, LockError};
use crate::lightning::{
    self, ActiveBackend, Backend, InjectedBackend, LightningError, FAKE_BACKEND_WARNING,
};
use crate::seed::{self, SeedError, SeedSource};
use crate::signatory::DirectSignatory;
use crate::storage::{self, StorageError};

/// How long cdk-axum's response cache keeps swap, mint and melt answers (its default), which
/// NUT-19 advertises so wallets know how long a retried request gets the same answer.
const CACHE_TTL_SECS: u64 = 60;

/// Keyset denominations: powers of two from 1 sat to 2^31 sat.
pub fn keyset_amounts() -> Vec<u64> {
    (0..32).map(|i| 1u64 << i).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error(transparent)]
    Lightning(#[from] LightningError),
    #[error("cannot build the mint: {0}")]
    Mint(#[from] cdk::Error),
    #[error(transparent)]
    StartLock(#[from] crate::start_lock::StartLockError),
}

/// A built mint and what the daemon needs to know about it.
pub struct Assembled {
    pub mint: Arc<Mint>,
    /// The Lightning backend (allowance withdrawals pay through it).
    pub lightning: DynMintPayment,
    /// The allowance registry, in the mint's database.
    pub registry: Registry,
    pub backend: ActiveBackend,
    pub storage: String,
    /// Keeps other processes off the data directory while this mint lives.
    pub lock: DataDirLock,
}

/// Builds the mint from `config` (already validated) without starting its background tasks.
pub async fn assemble(config: &Config) -> Result<Assembled, SetupError> {
    assemble_with(config, None).await
}

/// [`assemble`], paying and receiving through `injected` instead of the configured backend.
pub async fn assemble_with(
    config: &Config,
    injected: Option<InjectedBackend>,
) -> Result<Assembled, SetupError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StorageError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let lock = DataDirLock::acquire(&config.data_dir)?;
    let storage = storage::open(config).await?;
    let (seed, source) = seed::load_or_generate(config.seed.as_ref(), &config.data_dir)?;
    match &source {
        SeedSource::Generated(path) => tracing::warn!(path = %path.display(),
            "generated a new mint seed: back this file up, the mint's keys derive from it"),
        SeedSource::File(path) => tracing::info!(path = %path.display(), "loaded mint seed"),
        SeedSource::Reference(r) => tracing::info!(reference = %r, "loaded mint seed"),
    }
    seed::check_fingerprint(&storage.kv, &seed).await?;

    let (backend, processor, label) = match injected {
        Some(i) => (
            ActiveBackend::Injected(i.name),
            i.processor,
            Some((i.label, i.warning)),
        ),
        None => (
            ActiveBackend::Configured(config.lightning.backend),
            lightning::build(&config.lightning, &config.data_dir, storage.kv.clone()).await?,
            None,
        ),
    };

    // From here to the built mint, other processes on this database wait (start_lock.rs).
    let start_lock = storage.start_lock.acquire().await?;
    let registry = Registry::new(storage.kv.clone());
    let label = label.as_ref().map(|(l, w)| (*l, w.clone()));
    let (builder, info) =
        mint_builder(config, &storage, &processor, &registry, label.clone()).await?;
    let mut mint = build(builder, config, &storage, seed.as_bytes()).await?;
    if !keysets_agree_with_database(&mint, &storage).await? {
        // Another mint process on this database created or rotated a keyset between our
        // look at the keysets and our build without taking the start lock (a version
        // before it): build again from what the database now says, so that every process
        // signs with the same active keyset.
        tracing::warn!(
            "another mint process changed the keysets while this one started; reloading them"
        );
        let (builder, _) =
            mint_builder(config, &storage, &processor, &registry, label.clone()).await?;
        mint = build(builder, config, &storage, seed.as_bytes()).await?;
    }
    let mut info = info;

    // cdk keeps the MintInfo of the first run in its database and ignores the builder's later;
    // write ours back so a changed name, limit or notice takes effect on restart.
    if info.pubkey.is_none() {
        info.pubkey = mint.mint_info().await?.pubkey;
    }
    mint.set_mint_info(info).await?;
    mint.set_quote_ttl(QuoteTTL::new(
        config.limits.mint_quote_ttl_secs,
        config.limits.melt_quote_ttl_secs,
    ))
    .await?;
    start_lock.release().await;

    Ok(Assembled {
        mint: Arc::new(mint),
        lightning: processor,
        registry,
        backend,
        storage: storage.description,
        lock,
    })
}

/// The mint builder for `config`, and the `MintInfo` to write after the build.
async fn mint_builder(
    config: &Config,
    storage: &storage::Storage,
    processor: &DynMintPayment,
    registry: &Registry,
    label: Option<(&str, String)>,
) -> Result<(MintBuilder, MintInfo), SetupError> {
    let mut builder = MintBuilder::new(storage.db.clone())
        .with_urls(vec![config.public_url()])
        .with_limits(config.limits.max_inputs, config.limits.max_outputs)
        .with_version(MintVersion::new(
            "allowance-mint".into(),
            env!("CARGO_PKG_VERSION").into(),
        ))
        .with_supported_websockets(SupportedMethods::default_bolt11(CurrencyUnit::Sat))
        .with_keyset_refresh_interval(config.keyset_refresh_interval())
        .with_cache(
            Some(CACHE_TTL_SECS),
            vec![
                CachedEndpoint::new(Method::Post, CachePath::Swap),
                CachedEndpoint::new(Method::Post, CachePath::custom_mint("bolt11")),
                CachedEndpoint::new(Method::Post, CachePath::custom_melt("bolt11")),
            ],
        );
    builder.configure_unit(
        CurrencyUnit::Sat,
        UnitConfig {
            amounts: keyset_amounts(),
            input_fee_ppk: config.limits.input_fee_ppk,
        },
    )?;
    let limits = MintMeltLimits {
        mint_min: config.limits.mint_min.into(),
        mint_max: config.limits.mint_max.into(),
        melt_min: config.limits.melt_min.into(),
        melt_max: config.limits.melt_max.into(),
    };
    builder
        .add_payment_processor(
            CurrencyUnit::Sat,
            PaymentMethod::BOLT11,
            limits,
            processor.clone(),
        )
        .await?;
    builder
        .add_payment_processor(
            CurrencyUnit::Sat,
            PaymentMethod::from(METHOD.to_string()),
            limits,
            Arc::new(AllowanceProcessor::new(registry.clone())),
        )
        .await?;

    let mut info = configured_info(config, builder.current_mint_info(), label);
    // Draws are mint quotes only: nothing melts through the allowance method.
    info.nuts
        .nut05
        .methods
        .retain(|m| m.method.as_str() != METHOD);
    Ok((builder, info))
}

/// Builds the mint on our signatory instead of `build_with_seed`'s actor (see `signatory`);
/// the units are the ones `mint_builder` configures: sat, with the keyset amounts and the
/// input fee. A fresh signatory each time, so a rebuild reads the keysets anew.
async fn build(
    builder: MintBuilder,
    config: &Config,
    storage: &storage::Storage,
    seed: &[u8],
) -> Result<Mint, SetupError> {
    let signatory = DirectSignatory::new(
        storage.keys.clone(),
        seed,
        HashMap::from([(
            CurrencyUnit::Sat,
            (config.limits.input_fee_ppk, keyset_amounts()),
        )]),
        config.keyset_refresh_interval(),
    )
    .await?;
    Ok(builder.build_with_signatory(Arc::new(signatory)).await?)
}

/// Whether `mint` signs with the active keysets the database names (read under cdk's keyset
/// lock, so not halfway through another process's rotation).
async fn keysets_agree_with_database(
    mint: &Mint,
    storage: &storage::Storage,
) -> Result<bool, SetupError> {
    let mut tx = storage
        .keys
        .begin_transaction()
        .await
        .map_err(cdk::Error::from)?;
    let in_database = tx.get_active_keysets().await.map_err(cdk::Error::from)?;
    tx.commit().await.map_err(cdk::Error::from)?;
    let in_memory: std::collections::HashMap<CurrencyUnit, cdk::nuts::Id> = mint
        .keysets()
        .keysets
        .into_iter()
        .filter(|k| k.active && k.unit != CurrencyUnit::Auth)
        .map(|k| (k.unit, k.id))
        .collect();
    Ok(in_memory
        .iter()
        .all(|(unit, id)| in_database.get(unit) == Some(id)))
}

/// The builder's info with the operator's texts, and the fake-backend label when it applies
/// (or the injected backend's `label`).
fn configured_info(config: &Config, mut info: MintInfo, label: Option<(&str, String)>) -> MintInfo {
    let i = &config.info;
    info.name = Some(i.name.clone());
    info.description = Some(i.description.clone());
    info.description_long = i.long_description.clone();
    info.icon_url = i.icon_url.clone();
    info.tos_url = i.tos_url.clone();
    info.motd = i.motd.clone();
    let mut contact = Vec::new();
    if let Some(email) = &i.contact_email {
        contact.push(ContactInfo::new("email".into(), email.clone()));
    }
    if let Some(npub) = &i.contact_nostr {
        contact.push(ContactInfo::new("nostr".into(), npub.clone()));
    }
    info.contact = (!contact.is_empty()).then_some(contact);
    if let Some((label, warning)) = label {
        info.name = Some(format!("{} [{label}]", i.name));
        info.description = Some(format!("[{label}] {}", i.description));
        info.motd = Some(warning);
    } else if config.lightning.backend == Backend::Fake {
        info.name = Some(format!("{} [FAKE LIGHTNING]", i.name));
        info.description = Some(format!("[FAKE LIGHTNING, NOT MONEY] {}", i.description));
        info.motd = Some(match &i.motd {
            Some(m) => format!("{FAKE_BACKEND_WARNING} {m}"),
            None => FAKE_BACKEND_WARNING.to_string(),
        });
    }
    info
}

/// `allowance-mint keyset rotate`: a new active keyset for sat, with the configured fee.
/// The old keyset stays valid for redemption. Run it while the mint is stopped, then start it.
pub async fn rotate_keyset(config: &Config) -> Result<(String, String), SetupError> {
    let assembled = assemble(config).await?;
    let before = active_keyset(&assembled.mint);
    let info = assembled
        .mint
        .rotate_keyset(
            CurrencyUnit::Sat,
            keyset_amounts(),
            config.limits.input_fee_ppk,
            true,
            None,
        )
        .await?;
    Ok((before, info.id.to_string()))
}

fn active_keyset(mint: &Mint) -> String {
    mint.keysets()
        .keysets
        .iter()
        .find(|k| k.active && k.unit == CurrencyUnit::Sat)
        .map(|k| k.id.to_string())
        .unwrap_or_else(|| "none".into())
}
