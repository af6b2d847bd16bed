//! The mint's database: SQLite in the data dir by default, PostgreSQL when configured.

use std::sync::Arc;

use cdk::cdk_database::{self, MintKeysDatabase};
use cdk_common::database::{DynKVStore, DynMintDatabase};

use crate::config::{Config, DatabaseEngine};
use crate::start_lock::StartLockPlace;

/// One database seen through the three interfaces cdk asks for.
pub struct Storage {
    pub db: DynMintDatabase,
    pub keys: Arc<dyn MintKeysDatabase<Err = cdk_database::Error> + Send + Sync>,
    pub kv: DynKVStore,
    /// For the start-up log: which engine, and where (never the password).
    pub description: String,
    /// Where processes sharing this database take turns building their keysets.
    pub start_lock: StartLockPlace,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the {engine} database: {message}")]
    Open {
        engine: &'static str,
        message: String,
    },
    #[error(
        "database.engine = \"postgres\" but this binary was built without the `postgres` feature"
    )]
    PostgresNotCompiled,
}

pub async fn open(config: &Config) -> Result<Storage, StorageError> {
    match config.database.engine {
        DatabaseEngine::Sqlite => open_sqlite(config).await,
        DatabaseEngine::Postgres => open_postgres(config).await,
    }
}

async fn open_sqlite(config: &Config) -> Result<Storage, StorageError> {
    let path = config.sqlite_path();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StorageError::DataDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let db = crate::sqlite::open(path.clone())
        .await
        .map_err(|e| StorageError::Open {
            engine: "sqlite",
            message: e.to_string(),
        })?;
    // One object, one pool: every write takes the same turn (`crate::sqlite`).
    let db = Arc::new(db);
    Ok(Storage {
        db: db.clone(),
        keys: db.clone(),
        kv: db,
        description: format!("sqlite {}", path.display()),
        start_lock: StartLockPlace::None,
    })
}

#[cfg(feature = "postgres")]
async fn open_postgres(config: &Config) -> Result<Storage, StorageError> {
    let err = |message: String| StorageError::Open {
        engine: "postgres",
        message,
    };
    let pg = config
        .database
        .postgres
        .as_ref()
        .ok_or_else(|| err("no [database.postgres] section".into()))?;
    let url = pg.url.resolve().map_err(|e| err(e.to_string()))?;
    let pg_config = cdk_postgres::PgConfig::new(
        url.expose(),
        Some(&pg.tls_mode),
        Some(pg.max_connections),
        None,
    );
    pg_config.validate().map_err(|e| err(e.to_string()))?;
    let start_lock = StartLockPlace::postgres(pg_config.clone(), url.expose());
    let db = open_migrated(pg_config)
        .await
        .map_err(|e| err(error_chain(&e)))?;
    let db = Arc::new(db);
    warm_pool(&(db.clone() as DynKVStore), pg.max_connections).await;
    Ok(Storage {
        // No writer turns: PostgreSQL has many writers, and tokio-postgres waits for row locks
        // asynchronously.
        db: db.clone(),
        keys: db.clone(),
        kv: db,
        description: format!("postgres (url from {})", pg.url),
        start_lock,
    })
}

/// Opens every connection of the pool now, one after the other, before the mint serves.
///
/// cdk-postgres connects lazily, on a connection's first use, and a request waiting for a fresh
/// connection can miss its ready signal and fail after the 10 s connect timeout ("Internal
/// Timeout"), which a burst of requests at a new process did (two replicas, 200 concurrent
/// swaps). Connections opened here are reused for the life of the process.
#[cfg(feature = "postgres")]
async fn warm_pool(kv: &DynKVStore, connections: usize) {
    let mut open = Vec::with_capacity(connections);
    for _ in 0..connections {
        match kv.begin_transaction().await {
            Ok(tx) => open.push(tx),
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), opened = open.len(), "cannot open every database connection up front");
                break;
            }
        }
    }
    for tx in open {
        if let Err(e) = tx.rollback().await {
            tracing::warn!(error = %e, "rolling back an empty transaction failed");
        }
    }
}

/// How often opening is tried when another mint process is creating the same tables.
#[cfg(feature = "postgres")]
const MIGRATION_ATTEMPTS: u32 = 8;

/// Opens the database and brings its tables up to date. cdk migrates in one transaction
/// without a lock: when two mint processes start at once on an empty database, the second's
/// `CREATE SCHEMA` or `CREATE TABLE IF NOT EXISTS` fails with a unique violation once the first
/// commits. The failed transaction is rolled back, so opening again (now seeing the tables) is
/// safe.
#[cfg(feature = "postgres")]
async fn open_migrated(
    pg_config: cdk_postgres::PgConfig,
) -> Result<cdk_postgres::MintPgDatabase, cdk_common::database::Error> {
    let mut attempt = 1;
    loop {
        match cdk_postgres::MintPgDatabase::new(pg_config.clone()).await {
            Ok(db) => return Ok(db),
            Err(e) if attempt < MIGRATION_ATTEMPTS && lost_migration_race(&e) => {
                tracing::warn!(attempt, error = %error_chain(&e),
                    "another mint process is creating the tables; opening again");
                let jitter = 100 + rand::random::<u64>() % 300;
                tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A unique violation, an existing table or schema, or a lock conflict while creating tables:
/// another process is migrating the same database at this moment.
///
/// The PostgreSQL reason is in the error's source chain: cdk wraps tokio-postgres's error,
/// whose own text is only "db error".
#[cfg(feature = "postgres")]
fn lost_migration_race(e: &cdk_common::database::Error) -> bool {
    if matches!(e, cdk_common::database::Error::Duplicate) {
        return true;
    }
    let text = error_chain(e).to_lowercase();
    [
        "duplicate key",
        "already exists",
        "deadlock detected",
        "tuple concurrently updated",
        "could not serialize access",
    ]
    .iter()
    .any(|race| text.contains(race))
}

/// An error and every source under it, joined: what an operator needs to see.
#[cfg(feature = "postgres")]
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(source) = next {
        let part = source.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = source.source();
    }
    text
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("db error")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("ERROR: duplicate key value violates unique constraint \"pg_type_typname_nsp_index\"")]
    struct Inner;

    #[test]
    fn a_race_hidden_under_a_bare_db_error_is_recognised_and_shown() {
        let e = cdk_common::database::Error::Database(Box::new(Outer(Inner)));
        assert!(lost_migration_race(&e));
        assert_eq!(
            error_chain(&e),
            "db error: ERROR: duplicate key value violates unique constraint \"pg_type_typname_nsp_index\""
        );
    }

    #[test]
    fn a_refused_password_is_no_race() {
        let e = cdk_common::database::Error::Database(Box::new(std::io::Error::other(
            "password authentication failed for user \"mint\"",
        )));
        assert!(!lost_migration_race(&e));
    }
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &Config) -> Result<Storage, StorageError> {
    Err(StorageError::PostgresNotCompiled)
}
