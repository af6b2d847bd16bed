//! The wallet seed: a BIP-39 mnemonic in `seed` in the data dir, made on first start with mode
//! 0600. It is never printed or logged; whoever reads the file holds the ecash.

use std::path::Path;

use cashu_402::seed_file::SeedFileError;

use crate::error::WalletError;

/// The file name inside the data dir.
pub const SEED_FILE: &str = "seed";

/// Loads the seed, or makes one if the file does not exist. Returns the 64-byte BIP-39 seed.
pub fn load_or_create(data_dir: &Path) -> Result<[u8; 64], WalletError> {
    let path = data_dir.join(SEED_FILE);
    let file = cashu_402::seed_file::load_or_create(&path).map_err(|e| match e {
        SeedFileError::Io { path, source, .. } => WalletError::io(&path, source),
        other => WalletError::Config {
            detail: other.to_string(),
        },
    })?;
    if file.created {
        tracing::info!(path = %path.display(), "made a new wallet seed");
    }
    if file.readable_by_others {
        tracing::warn!(path = %path.display(), "the seed file is readable by other users; chmod 600 it");
    }
    Ok(file.seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_made_once_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SEED_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        assert_ne!(a, load_or_create(other.path()).unwrap());
    }

    #[test]
    fn a_garbled_seed_file_is_an_error_not_a_new_seed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SEED_FILE), "not words").unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(WalletError::Config { .. })
        ));
    }
}
