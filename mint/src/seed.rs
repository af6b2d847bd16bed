//! The mint's seed: every keyset's private keys derive from it.
//!
//! Generated on first start as a BIP-39 mnemonic in `<data_dir>/seed.mnemonic` (mode 0600), or
//! read from a reference (`env:NAME` / `file:PATH`). A fingerprint (a hash, not the seed) is kept
//! in the database so that a mint started with the wrong seed refuses to run instead of signing
//! with keys no wallet can verify.

use std::fmt;
use std::path::{Path, PathBuf};

use bip39::Mnemonic;
use cdk_common::bitcoin::hashes::{sha256, Hash};
use cdk_common::database::DynKVStore;

use crate::secret::{SecretError, SecretRef};

pub const SEED_FILE: &str = "seed.mnemonic";
const KV_NAMESPACE: &str = "allowance_mint";
const KV_SECONDARY: &str = "identity";
const KV_KEY: &str = "seed_fingerprint";

/// The 64-byte BIP-39 seed. `Debug` prints nothing of it.
pub struct Seed([u8; 64]);

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("seed reference: {0}")]
    Reference(#[from] SecretError),
    #[error("the seed is not a valid BIP-39 mnemonic: {0}")]
    Mnemonic(bip39::Error),
    #[error(transparent)]
    File(#[from] cashu_402::seed_file::SeedFileError),
    #[error(
        "this database was created with a different seed: refusing to start, because the mint \
         would sign with keys that no wallet can verify. Start it with the original seed."
    )]
    Mismatch,
    #[error("cannot check the seed fingerprint in the database: {0}")]
    Database(String),
}

/// Where the seed came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedSource {
    Generated(PathBuf),
    File(PathBuf),
    Reference(String),
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed([REDACTED])")
    }
}

impl Seed {
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    fn from_words(words: &str) -> Result<Self, SeedError> {
        let mnemonic = Mnemonic::parse(words.trim()).map_err(SeedError::Mnemonic)?;
        Ok(Self(mnemonic.to_seed_normalized("")))
    }

    /// A stable, one-way fingerprint of the seed.
    fn fingerprint(&self) -> String {
        let mut tagged = b"allowance-mint seed fingerprint".to_vec();
        tagged.extend_from_slice(&self.0);
        sha256::Hash::hash(&tagged).to_string()
    }
}

/// Loads the seed from the reference when one is configured, else from the data dir, generating
/// and storing it there on first start.
pub fn load_or_generate(
    reference: Option<&SecretRef>,
    data_dir: &Path,
) -> Result<(Seed, SeedSource), SeedError> {
    if let Some(reference) = reference {
        let words = reference.resolve()?;
        return Ok((
            Seed::from_words(words.expose())?,
            SeedSource::Reference(reference.to_string()),
        ));
    }
    let path = data_dir.join(SEED_FILE);
    let file = cashu_402::seed_file::load_or_create(&path)?;
    if file.readable_by_others {
        tracing::warn!(path = %path.display(), "seed file is readable by other users; chmod 600 it");
    }
    let source = if file.created {
        SeedSource::Generated(path)
    } else {
        SeedSource::File(path)
    };
    Ok((Seed(file.seed), source))
}

/// Records the seed's fingerprint on first start and refuses a different seed afterwards.
pub async fn check_fingerprint(kv: &DynKVStore, seed: &Seed) -> Result<(), SeedError> {
    let db = |e: cdk_common::database::Error| SeedError::Database(e.to_string());
    let fingerprint = seed.fingerprint();
    let mut tx = kv.begin_transaction().await.map_err(db)?;
    let written = tx
        .kv_write_if_absent(KV_NAMESPACE, KV_SECONDARY, KV_KEY, fingerprint.as_bytes())
        .await
        .map_err(db)?;
    let stored = if written {
        None
    } else {
        tx.kv_read(KV_NAMESPACE, KV_SECONDARY, KV_KEY)
            .await
            .map_err(db)?
    };
    tx.commit().await.map_err(db)?;
    match stored {
        Some(stored) if stored != fingerprint.as_bytes() => Err(SeedError::Mismatch),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    #[test]
    fn generated_seed_is_stored_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = load_or_generate(None, dir.path()).unwrap();
        assert!(matches!(source, SeedSource::Generated(_)));
        let path = dir.path().join(SEED_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, source) = load_or_generate(None, dir.path()).unwrap();
        assert!(matches!(source, SeedSource::File(_)));
        assert_eq!(first.as_bytes(), second.as_bytes());
    }

    #[test]
    fn seed_never_appears_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let (seed, _) = load_or_generate(None, dir.path()).unwrap();
        let words = std::fs::read_to_string(dir.path().join(SEED_FILE)).unwrap();
        let printed = format!("{seed:?}");
        assert!(!printed.contains(words.split_whitespace().next().unwrap()));
        assert!(!printed.contains(&hex::encode(&seed.as_bytes()[..8])));
    }

    #[test]
    fn seed_by_reference_and_bad_mnemonics() {
        let words = Mnemonic::generate(12).unwrap().to_string();
        std::env::set_var("ALLOWANCE_MINT_TEST_SEED_WORDS", &words);
        let r = SecretRef::parse("env:ALLOWANCE_MINT_TEST_SEED_WORDS").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (seed, _) = load_or_generate(Some(&r), dir.path()).unwrap();
        assert_eq!(
            seed.as_bytes(),
            &Mnemonic::parse(&words).unwrap().to_seed_normalized("")
        );
        assert!(
            !dir.path().join(SEED_FILE).exists(),
            "a referenced seed is not copied to disk"
        );

        std::env::set_var("ALLOWANCE_MINT_TEST_SEED_BAD", "not a mnemonic at all");
        let r = SecretRef::parse("env:ALLOWANCE_MINT_TEST_SEED_BAD").unwrap();
        assert!(matches!(
            load_or_generate(Some(&r), dir.path()),
            Err(SeedError::Mnemonic(_))
        ));
    }

    #[tokio::test]
    async fn a_different_seed_on_the_same_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(
            cdk_sqlite::MintSqliteDatabase::new(dir.path().join("m.sqlite"))
                .await
                .unwrap(),
        );
        let kv: DynKVStore = db;
        let a = Seed::from_words(&Mnemonic::generate(12).unwrap().to_string()).unwrap();
        let b = Seed::from_words(&Mnemonic::generate(12).unwrap().to_string()).unwrap();
        check_fingerprint(&kv, &a).await.unwrap();
        check_fingerprint(&kv, &a).await.unwrap();
        assert!(matches!(
            check_fingerprint(&kv, &b).await,
            Err(SeedError::Mismatch)
        ));
    }
}
