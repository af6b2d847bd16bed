//! One mint process at a time builds its keysets on a shared PostgreSQL database.
//!
//! Replicas starting together on an empty database each read "no keyset", each create one, and
//! the later write rotates the earlier away: one process then signs with a keyset the database
//! calls inactive until its next keyset refresh, and the database keeps a spare keyset. A
//! PostgreSQL session advisory lock around the build makes the second process wait and load the
//! first's keyset instead. The lock is released when the build is done, or by the server when
//! the holding connection ends (a crash or kill included).
//!
//! SQLite needs nothing here: its data directory is already one process's (`data_dir.rs`).

use std::time::Duration;

#[cfg(feature = "postgres")]
use cdk_common::bitcoin::hashes::{sha256, Hash};

/// How long a start waits for another process's build before giving up.
#[cfg(feature = "postgres")]
const WAIT: Duration = Duration::from_secs(60);

/// Where a start lock is taken: nowhere (SQLite), or a PostgreSQL database and schema.
#[derive(Clone, Default)]
pub enum StartLockPlace {
    #[default]
    None,
    #[cfg(feature = "postgres")]
    Postgres {
        config: cdk_postgres::PgConfig,
        /// The advisory lock's key: per schema, so mints in other schemas of the same
        /// database do not wait for each other.
        key: i64,
    },
}

/// Held while this process builds its keysets; [`StartLock::release`] lets the next one in.
pub enum StartLock {
    None,
    #[cfg(feature = "postgres")]
    Postgres {
        connection: cdk_postgres::PostgresConnection,
        key: i64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StartLockError {
    #[error("cannot take the database start lock: {0}")]
    Database(String),
    #[error(
        "another allowance-mint process has been starting on this database for {0:?}; \
         is one stuck?"
    )]
    Timeout(Duration),
}

impl StartLockPlace {
    /// The lock for the database at connection string `url` (the `schema=` part, if any,
    /// names the schema).
    #[cfg(feature = "postgres")]
    pub fn postgres(config: cdk_postgres::PgConfig, url: &str) -> Self {
        let key = lock_key(schema_of(url));
        StartLockPlace::Postgres { config, key }
    }

    /// Waits for the lock, up to a minute.
    pub async fn acquire(&self) -> Result<StartLock, StartLockError> {
        match self {
            StartLockPlace::None => Ok(StartLock::None),
            #[cfg(feature = "postgres")]
            StartLockPlace::Postgres { config, key } => {
                use std::sync::atomic::AtomicBool;
                use std::sync::Arc;
                let connection = cdk_postgres::PostgresConnection::new(
                    config.clone(),
                    WAIT,
                    Arc::new(AtomicBool::new(false)),
                );
                let lock = format!("SELECT pg_advisory_lock({key})");
                match tokio::time::timeout(WAIT, run(&connection, &lock)).await {
                    Ok(Ok(())) => Ok(StartLock::Postgres {
                        connection,
                        key: *key,
                    }),
                    Ok(Err(e)) => Err(StartLockError::Database(e)),
                    Err(_) => Err(StartLockError::Timeout(WAIT)),
                }
            }
        }
    }
}

impl StartLock {
    /// Lets the next process start. Dropping the lock instead releases it too, when the
    /// connection closes.
    pub async fn release(self) {
        match self {
            StartLock::None => {}
            #[cfg(feature = "postgres")]
            StartLock::Postgres { connection, key } => {
                let unlock = format!("SELECT pg_advisory_unlock({key})");
                if let Err(e) = run(&connection, &unlock).await {
                    tracing::warn!(error = %e,
                        "releasing the start lock failed; closing its connection releases it");
                }
            }
        }
    }
}

#[cfg(feature = "postgres")]
async fn run(connection: &cdk_postgres::PostgresConnection, sql: &str) -> Result<(), String> {
    let statement =
        cdk_sql_common::stmt::query(sql).map_err(|e| crate::storage::error_chain(&e))?;
    statement
        .execute(connection)
        .await
        .map(|_| ())
        .map_err(|e| crate::storage::error_chain(&e))
}

/// The `schema=` value of a key=value connection string or a URL's query, or "" for none.
#[cfg(feature = "postgres")]
fn schema_of(url: &str) -> &str {
    url.split(|c: char| c.is_whitespace() || c == '&' || c == '?')
        .filter_map(|part| part.strip_prefix("schema="))
        .next_back()
        .unwrap_or("")
}

/// A stable 64-bit key for `schema`, in a namespace of its own so it meets no other
/// application's advisory locks by chance.
#[cfg(feature = "postgres")]
fn lock_key(schema: &str) -> i64 {
    let hash = sha256::Hash::hash(format!("allowance-mint start lock:{schema}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.to_byte_array()[..8]);
    i64::from_be_bytes(first)
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_read_from_either_form_of_connection_string() {
        assert_eq!(schema_of("host=db user=mint schema=replica_a"), "replica_a");
        assert_eq!(
            schema_of("postgres://u@db/mint?sslmode=require&schema=b"),
            "b"
        );
        assert_eq!(schema_of("host=db user=mint"), "");
    }

    #[test]
    fn each_schema_has_its_own_lock() {
        assert_eq!(lock_key("a"), lock_key("a"));
        assert_ne!(lock_key("a"), lock_key("b"));
        assert_ne!(lock_key(""), lock_key("a"));
    }
}
