//! The admin token: generated on first start into `<data_dir>/admin.token` (mode 0600), or
//! given by reference. Compared in constant time; never logged.

use std::io::Write;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

use crate::secret::{Secret, SecretError, SecretRef};

pub const TOKEN_FILE: &str = "admin.token";
/// The web page's session cookie.
pub const COOKIE: &str = "allowance_admin";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Reference(#[from] SecretError),
    #[error("cannot write the admin token to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the admin token at {0} is empty")]
    Empty(PathBuf),
}

/// Where the token came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Generated(PathBuf),
    File(PathBuf),
    Reference(String),
}

#[derive(Clone)]
pub struct AdminToken {
    token: Secret,
    /// What the session cookie carries: derived from the token, so a stolen cookie does not
    /// reveal the token (and a new token ends every session).
    session: String,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken([REDACTED])")
    }
}

impl AdminToken {
    pub fn new(token: Secret) -> Self {
        use cdk::secp256k1::hashes::{sha256, Hash};
        let digest =
            sha256::Hash::hash(format!("allowance-admin-session:{}", token.expose()).as_bytes());
        Self {
            token,
            session: digest.to_string(),
        }
    }

    /// The token from `reference`, or the one in the data dir (made now if missing).
    pub fn load_or_generate(
        reference: Option<&SecretRef>,
        data_dir: &Path,
    ) -> Result<(Self, TokenSource), TokenError> {
        if let Some(r) = reference {
            return Ok((
                Self::new(r.resolve()?),
                TokenSource::Reference(r.to_string()),
            ));
        }
        let path = data_dir.join(TOKEN_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => {
                return Ok((
                    Self::new(Secret::new(text.trim().to_string())),
                    TokenSource::File(path),
                ))
            }
            Ok(_) => return Err(TokenError::Empty(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(TokenError::Write { path, source }),
        }
        let bytes: [u8; 32] = rand::random();
        let token = hex::encode(bytes);
        write_private(&path, &token).map_err(|source| TokenError::Write {
            path: path.clone(),
            source,
        })?;
        Ok((Self::new(Secret::new(token)), TokenSource::Generated(path)))
    }

    /// True when `candidate` is the token (constant time).
    pub fn verify(&self, candidate: &str) -> bool {
        ct_eq(candidate, self.token.expose())
    }

    /// True when `candidate` is a valid session cookie value (constant time).
    pub fn verify_session(&self, candidate: &str) -> bool {
        ct_eq(candidate, &self.session)
    }

    pub fn session(&self) -> &str {
        &self.session
    }
}

fn ct_eq(a: &str, b: &str) -> bool {
    // Lengths are not secret (every token has the same length); contents are compared in
    // constant time.
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (t1, s1) = AdminToken::load_or_generate(None, dir.path()).unwrap();
        assert!(matches!(s1, TokenSource::Generated(_)));
        let path = dir.path().join(TOKEN_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (t2, s2) = AdminToken::load_or_generate(None, dir.path()).unwrap();
        assert!(matches!(s2, TokenSource::File(_)));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(t1.verify(text.trim()) && t2.verify(text.trim()));
        assert!(!t1.verify("wrong"));
        assert!(!t1.verify(""));
        assert!(t1.verify_session(t2.session()));
        assert!(!format!("{t1:?}").contains(text.trim()));
    }

    #[test]
    fn a_reference_wins() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "s3cret\n").unwrap();
        let r = SecretRef::parse(&format!("file:{}", file.display())).unwrap();
        let (t, source) = AdminToken::load_or_generate(Some(&r), dir.path()).unwrap();
        assert!(matches!(source, TokenSource::Reference(_)));
        assert!(t.verify("s3cret"));
        assert!(!dir.path().join(TOKEN_FILE).exists());
    }
}
