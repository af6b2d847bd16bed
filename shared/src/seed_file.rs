//! The seed file every role keeps: a BIP-39 mnemonic, generated on first start with mode 0600.
//!
//! The mint, the merchant and the agent wallet each derive their keys from such a file in their
//! data directory. Creation uses `create_new`, so two processes starting at once never overwrite
//! each other's seed: the second one reads the first one's. Callers log (they know their own
//! logger) and map errors into their own types.

use std::io::Write;
use std::path::{Path, PathBuf};

use bip39::Mnemonic;

/// A loaded (or just created) seed file.
pub struct SeedFile {
    /// The 64-byte BIP-39 seed (empty passphrase).
    pub seed: [u8; 64],
    /// The file was created by this call.
    pub created: bool,
    /// Group or others may read the file (unix): callers should warn.
    pub readable_by_others: bool,
}

impl std::fmt::Debug for SeedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedFile")
            .field("seed", &"[REDACTED]")
            .field("created", &self.created)
            .field("readable_by_others", &self.readable_by_others)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeedFileError {
    #[error("cannot {action} seed file {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("seed file {path} is not a BIP-39 mnemonic: {source}")]
    Mnemonic { path: PathBuf, source: bip39::Error },
    #[error("cannot generate a seed: {0}")]
    Generate(bip39::Error),
}

/// Reads the mnemonic at `path`, or generates and stores one (mode 0600) if there is none.
pub fn load_or_create(path: &Path) -> Result<SeedFile, SeedFileError> {
    match read(path)? {
        Some(loaded) => Ok(loaded),
        None => match create(path)? {
            Some(created) => Ok(created),
            // Another process created it between our read and our create: use theirs.
            None => read(path)?.ok_or_else(|| SeedFileError::Io {
                action: "read",
                path: path.to_path_buf(),
                source: std::io::ErrorKind::NotFound.into(),
            }),
        },
    }
}

fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> SeedFileError + 'a {
    move |source| SeedFileError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn read(path: &Path) -> Result<Option<SeedFile>, SeedFileError> {
    let words = match std::fs::read_to_string(path) {
        Ok(words) => words,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read", path)(e)),
    };
    let mnemonic =
        Mnemonic::parse_normalized(words.trim()).map_err(|source| SeedFileError::Mnemonic {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Some(SeedFile {
        seed: mnemonic.to_seed_normalized(""),
        created: false,
        readable_by_others: readable_by_others(path),
    }))
}

/// `Ok(None)` when the file appeared meanwhile.
fn create(path: &Path) -> Result<Option<SeedFile>, SeedFileError> {
    let mnemonic = Mnemonic::generate(24).map_err(SeedFileError::Generate)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(io("create", path)(e)),
    };
    writeln!(file, "{mnemonic}").map_err(io("write", path))?;
    file.sync_all().map_err(io("sync", path))?;
    Ok(Some(SeedFile {
        seed: mnemonic.to_seed_normalized(""),
        created: true,
        readable_by_others: false,
    }))
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_mode_0600_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed");
        let first = load_or_create(&path).unwrap();
        assert!(first.created && !first.readable_by_others);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = load_or_create(&path).unwrap();
        assert!(!again.created);
        assert_eq!(first.seed, again.seed);
        assert!(format!("{again:?}").contains("[REDACTED]"));
    }

    #[test]
    fn a_garbled_file_is_an_error_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed");
        std::fs::write(&path, "not a mnemonic").unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(SeedFileError::Mnemonic { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a mnemonic");
    }

    #[cfg(unix)]
    #[test]
    fn a_loose_mode_is_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed");
        load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create(&path).unwrap().readable_by_others);
    }
}
