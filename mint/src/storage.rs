//! The mint's database: SQLite in the data dir by default, PostgreSQL when configured.

use std::sync::Arc;

use cdk::cdk_database::{self, MintKeysDatabase};
use cdk_common::database::{DynKVStore, DynMintDatabase};

use crate::config::{Config, DatabaseEngine};

/// One database seen through the three interfaces cdk asks for.
pub struct Storage {
    pub db: DynMintDatabase,
    pub keys: Arc<dyn MintKeysDatabase<Err = cdk_database::Error> + Send + Sync>,
    pub kv: DynKVStore,
    /// For the start-up log: which engine, and where (never the password).
    pub description: String,
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
    let db = cdk_sqlite::MintSqliteDatabase::new(path.clone())
        .await
        .map_err(|e| StorageError::Open {
            engine: "sqlite",
            message: e.to_string(),
        })?;
    let db = Arc::new(db);
    Ok(Storage {
        db: db.clone(),
        keys: db.clone(),
        kv: db,
        description: format!("sqlite {}", path.display()),
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
    let db = cdk_postgres::MintPgDatabase::new(pg_config)
        .await
        .map_err(|e| err(e.to_string()))?;
    let db = Arc::new(db);
    Ok(Storage {
        db: db.clone(),
        keys: db.clone(),
        kv: db,
        description: format!("postgres (url from {})", pg.url),
    })
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &Config) -> Result<Storage, StorageError> {
    Err(StorageError::PostgresNotCompiled)
}
