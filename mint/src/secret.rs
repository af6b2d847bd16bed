//! Secrets given by reference (`env:NAME` or `file:PATH`), never inline, never printed.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// Where a secret lives. Config files name the place; the value itself is read at start-up.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `env:NAME`: an environment variable.
    Env(String),
    /// `file:PATH`: a file whose content (trimmed) is the secret.
    File(PathBuf),
}

/// A secret value. Its `Debug` and `Display` print a placeholder, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("a secret must be given as `env:NAME` or `file:PATH`, not inline (got a value starting with {prefix:?})")]
    NotAReference { prefix: String },
    #[error("a secret reference has an empty name or path: {0:?}")]
    Empty(String),
    #[error("environment variable {0} (named by a secret reference) is not set or not UTF-8")]
    MissingEnv(String),
    #[error("cannot read secret file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the secret named by {0} is empty")]
    EmptyValue(String),
}

impl SecretRef {
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let (kind, rest) = match s.split_once(':') {
            Some((k @ ("env" | "file"), rest)) => (k, rest.trim()),
            _ => {
                return Err(SecretError::NotAReference {
                    prefix: s.chars().take(4).collect(),
                })
            }
        };
        if rest.is_empty() {
            return Err(SecretError::Empty(s.to_string()));
        }
        Ok(match kind {
            "env" => Self::Env(rest.to_string()),
            _ => Self::File(PathBuf::from(rest)),
        })
    }

    /// Reads the secret now.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        let value = match self {
            Self::Env(name) => {
                std::env::var(name).map_err(|_| SecretError::MissingEnv(name.clone()))?
            }
            Self::File(path) => {
                std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?
            }
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(SecretError::EmptyValue(self.to_string()));
        }
        Ok(Secret(value))
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The reference is not secret (it names a place), so it may be shown.
        write!(f, "SecretRef({self})")
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for SecretRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl Secret {
    /// Wraps a value read elsewhere (for example a generated seed).
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself. Call sites are few and easy to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_secrets_are_refused() {
        assert!(matches!(
            SecretRef::parse("abandon abandon"),
            Err(SecretError::NotAReference { .. })
        ));
        assert!(matches!(
            SecretRef::parse("env:"),
            Err(SecretError::Empty(_))
        ));
        assert!(matches!(
            SecretRef::parse("http://x"),
            Err(SecretError::NotAReference { .. })
        ));
    }

    #[test]
    fn env_and_file_references_resolve() {
        std::env::set_var("ALLOWANCE_MINT_TEST_SECRET_XYZ", " hunter2 \n");
        let s = SecretRef::parse("env:ALLOWANCE_MINT_TEST_SECRET_XYZ").unwrap();
        assert_eq!(s.resolve().unwrap().expose(), "hunter2");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "from-file\n").unwrap();
        let s = SecretRef::parse(&format!("file:{}", path.display())).unwrap();
        assert_eq!(s.resolve().unwrap().expose(), "from-file");

        let missing = SecretRef::parse("env:ALLOWANCE_MINT_TEST_UNSET_QQQ").unwrap();
        assert!(matches!(missing.resolve(), Err(SecretError::MissingEnv(_))));
    }

    #[test]
    fn secret_values_never_print() {
        let s = Secret::new("very secret words".into());
        assert!(!format!("{s:?}").contains("secret words"));
        assert!(!format!("{s}").contains("secret words"));
    }
}
