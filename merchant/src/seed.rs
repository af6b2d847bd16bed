//! The merchant wallet's seed and the P2PK key agents lock their tokens to.
//!
//! The seed is a BIP-39 mnemonic generated on first start in `<data_dir>/seed.mnemonic`
//! (mode 0600). The P2PK key derives from it deterministically, so a restored seed restores both
//! the ecash (NUT-13) and the key that unlocks tokens sent to the merchant.

use std::fmt;
use std::path::Path;

use cdk::nuts::{PublicKey, SecretKey};
use cdk::secp256k1::hashes::{sha256, Hash};

/// File name of the mnemonic inside the data directory.
pub const SEED_FILE: &str = "seed.mnemonic";

/// Domain tag for the P2PK key derivation; changing it changes every merchant's key.
const P2PK_TAG: &[u8] = b"cashu-402 merchant p2pk key v1";

/// The 64-byte BIP-39 seed. `Debug` prints nothing of it.
#[derive(Clone)]
pub struct Seed([u8; 64]);

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    File(#[from] cashu_402::seed_file::SeedFileError),
    #[error("cannot derive the P2PK key from the seed: {0}")]
    Key(String),
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

    /// The merchant's P2PK signing key: `sha256(tag || seed)`, a valid secp256k1 scalar with
    /// overwhelming probability (the derivation fails loudly otherwise).
    pub fn p2pk_key(&self) -> Result<SecretKey, SeedError> {
        let mut tagged = P2PK_TAG.to_vec();
        tagged.extend_from_slice(&self.0);
        let digest = sha256::Hash::hash(&tagged);
        SecretKey::from_slice(digest.as_byte_array()).map_err(|e| SeedError::Key(e.to_string()))
    }

    /// The public half of [`Seed::p2pk_key`].
    pub fn p2pk_pubkey(&self) -> Result<PublicKey, SeedError> {
        Ok(self.p2pk_key()?.public_key())
    }
}

/// Loads the seed from `<data_dir>/seed.mnemonic`, generating it (mode 0600) on first start.
/// Returns the seed and whether it was generated now.
pub fn load_or_generate(data_dir: &Path) -> Result<(Seed, bool), SeedError> {
    let path = data_dir.join(SEED_FILE);
    let file = cashu_402::seed_file::load_or_create(&path)?;
    if file.readable_by_others {
        tracing::warn!(path = %path.display(), "seed file is readable by other users; chmod 600 it");
    }
    Ok((Seed(file.seed), file.created))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_seed_is_0600_and_reloads_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let (first, generated) = load_or_generate(dir.path()).unwrap();
        assert!(generated);
        let mode = std::fs::metadata(dir.path().join(SEED_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, generated) = load_or_generate(dir.path()).unwrap();
        assert!(!generated);
        assert_eq!(first.as_bytes(), second.as_bytes());
        assert_eq!(
            first.p2pk_pubkey().unwrap(),
            second.p2pk_pubkey().unwrap(),
            "the P2PK key is derived deterministically"
        );
    }

    #[test]
    fn seed_never_appears_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let (seed, _) = load_or_generate(dir.path()).unwrap();
        let words = std::fs::read_to_string(dir.path().join(SEED_FILE)).unwrap();
        let printed = format!("{seed:?}");
        assert!(!printed.contains(words.split_whitespace().next().unwrap()));
    }

    #[test]
    fn a_corrupt_seed_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SEED_FILE), "not a mnemonic").unwrap();
        assert!(matches!(
            load_or_generate(dir.path()),
            Err(SeedError::File(
                cashu_402::seed_file::SeedFileError::Mnemonic { .. }
            ))
        ));
    }
}
