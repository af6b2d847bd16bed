//! The wallet seed: a BIP-39 mnemonic in `seed` in the data dir, made on first start with mode
//! 0600. It is never printed or logged; whoever reads the file holds the ecash.

use std::io::Write;
use std::path::Path;

use bip39::Mnemonic;

use crate::error::WalletError;

/// The file name inside the data dir.
pub const SEED_FILE: &str = "seed";

/// Loads the seed, or makes one if the file does not exist. Returns the 64-byte BIP-39 seed.
pub fn load_or_create(data_dir: &Path) -> Result<[u8; 64], WalletError> {
    let path = data_dir.join(SEED_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            warn_if_readable_by_others(&path);
            let mnemonic =
                Mnemonic::parse_normalized(text.trim()).map_err(|e| WalletError::Config {
                    detail: format!("{} is not a BIP-39 mnemonic: {e}", path.display()),
                })?;
            Ok(mnemonic.to_seed_normalized(""))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path),
        Err(e) => Err(WalletError::io(&path, e)),
    }
}

fn create(path: &Path) -> Result<[u8; 64], WalletError> {
    let mnemonic = Mnemonic::generate(24).map_err(|e| WalletError::Config {
        detail: format!("cannot generate a seed: {e}"),
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return load_or_create(path.parent().unwrap_or(Path::new(".")));
        }
        Err(e) => return Err(WalletError::io(path, e)),
    };
    file.write_all(format!("{mnemonic}\n").as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| WalletError::io(path, e))?;
    tracing::info!(path = %path.display(), "made a new wallet seed");
    Ok(mnemonic.to_seed_normalized(""))
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "the seed file is readable by other users; chmod 600 it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
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
