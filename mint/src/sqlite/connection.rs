//! A SQLite connection for cdk's SQL store: cdk-sqlite's statements and error mapping. Reads
//! outside a transaction run on the pooled connection; `BEGIN` takes the writer's turn (and
//! with it the one writing connection) until `COMMIT`/`ROLLBACK`, and commits share their
//! flush.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cdk_common::database::Error;
use cdk_sql_common::database::{DatabaseConnector, DatabaseExecutor, DatabaseTransaction};
use cdk_sql_common::pool::{self, DatabaseConfig, DatabasePool};
use cdk_sql_common::stmt::{Column, SqlPart, Statement};
use cdk_sql_common::value::Value;
use rusqlite::{ffi, CachedStatement, ErrorCode};

use super::turn::{Turn, WriterTurn};
use super::wal_sync::WalSync;

/// What every connection to one database file shares.
#[derive(Clone)]
pub struct Shared {
    pub(super) turn: WriterTurn,
    pub(super) wal: WalSync,
}

/// Where the database is, and what its connections share.
#[derive(Clone)]
pub struct Config {
    path: PathBuf,
    shared: Shared,
}

impl Config {
    /// Opens the writing connection now, so a file that cannot be opened fails here.
    pub fn new(path: PathBuf) -> Result<Self, rusqlite::Error> {
        let writer = open_connection(&path)?;
        // Its cache is never dropped (no other connection writes), so let it hold the hot
        // part of the database: 32 MiB instead of SQLite's 2 MiB.
        writer.execute_batch("pragma cache_size = -32768;")?;
        let shared = Shared {
            turn: WriterTurn::new(writer),
            wal: WalSync::new(&path),
        };
        Ok(Self { path, shared })
    }
}

fn open_connection(path: &std::path::Path) -> Result<rusqlite::Connection, rusqlite::Error> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String = conn.query_row("pragma journal_mode = WAL", [], |row| row.get(0))?;
    // Without a WAL (a file system that cannot share memory between processes) there is no
    // group commit: each commit syncs by itself, as with cdk-sqlite.
    let synchronous = if mode.eq_ignore_ascii_case("wal") {
        "NORMAL"
    } else {
        tracing::warn!(journal_mode = %mode, "SQLite could not use a write-ahead log; every commit syncs on its own");
        "FULL"
    };
    conn.execute_batch(&format!(
        "pragma synchronous = {synchronous}; pragma temp_store = memory; pragma mmap_size = 5242880;"
    ))?;
    Ok(conn)
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config").field("path", &self.path).finish()
    }
}

impl DatabaseConfig for Config {
    // cdk-sqlite's pool size and wait for a free connection.
    fn max_size(&self) -> usize {
        20
    }

    fn default_timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
}

/// Opens connections for cdk's pool.
#[derive(Debug)]
pub struct Manager;

impl DatabasePool for Manager {
    type Connection = Connection;
    type Config = Config;
    type Error = rusqlite::Error;

    fn new_resource(
        config: &Config,
        _stale: Arc<std::sync::atomic::AtomicBool>,
        _timeout: Duration,
    ) -> Result<Connection, pool::Error<rusqlite::Error>> {
        Ok(Connection {
            conn: Mutex::new(open_connection(&config.path)?),
            turn: None,
            shared: config.shared.clone(),
        })
    }
}

/// A pooled connection. Statements run on the calling thread, as cdk-sqlite's do: they are
/// short, and with the turn no statement of this process ever waits for SQLite's lock.
pub struct Connection {
    /// For reads outside a transaction.
    conn: Mutex<rusqlite::Connection>,
    /// Held from `BEGIN` to `COMMIT`/`ROLLBACK`; every statement in between runs on it.
    turn: Option<Turn>,
    shared: Shared,
}

impl Drop for Connection {
    /// cdk discards a connection whose rollback failed or timed out; the writing connection it
    /// held must not reach the next writer with that transaction still open.
    fn drop(&mut self) {
        if let Some(turn) = self.turn.take() {
            let conn = turn.conn();
            if !conn.is_autocommit() {
                if let Err(e) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %e, "rolling back an abandoned transaction failed");
                }
            }
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("in_transaction", &self.turn.is_some())
            .finish()
    }
}

impl Connection {
    /// The writing connection inside a transaction, this one's own outside.
    fn lock(&self) -> MutexGuard<'_, rusqlite::Connection> {
        match &self.turn {
            Some(turn) => turn.conn(),
            // A rusqlite connection stays usable after a panic elsewhere.
            None => self
                .conn
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }

    fn exec(&self, sql: &str) -> Result<(), Error> {
        self.lock().execute_batch(sql).map_err(to_error)
    }

    /// Runs one statement, prepared once. A write outside a transaction (cdk has one: marking
    /// when a mint quote was last checked) takes the turn around itself and returns once
    /// durable.
    async fn run<T>(
        &self,
        statement: Statement,
        op: impl FnOnce(&mut CachedStatement<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, Error> {
        let (sql, values) = statement.to_sql()?;
        // cdk writes PostgreSQL's row locks into some queries; SQLite has none (and needs none:
        // a transaction holds the whole database).
        let sql = sql.trim().trim_end_matches("FOR UPDATE");
        let exec = |stmt: &mut CachedStatement<'_>| {
            for (i, value) in values.into_iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, to_sqlite(value))
                    .map_err(to_error)?;
            }
            op(stmt).map_err(to_error)
        };
        {
            // Inside a transaction: the writing connection; outside: this one, for reads.
            let conn = self.lock();
            let mut stmt = conn.prepare_cached(sql).map_err(to_error)?;
            if self.turn.is_some() || stmt.readonly() {
                return exec(&mut stmt);
            }
        }
        self.shared.wal.check()?;
        let turn = self.shared.turn.take().await?;
        let result = {
            let conn = turn.conn();
            let mut stmt = conn.prepare_cached(sql).map_err(to_error)?;
            exec(&mut stmt)
        };
        let seq = self.shared.wal.committed();
        drop(turn);
        if result.is_ok() {
            self.shared.wal.durable(seq).await?;
        }
        result
    }
}

/// cdk-sqlite's mapping: a unique or primary key violation is `Duplicate`, which cdk turns into
/// "already spent" or "already signed" answers.
fn to_error(err: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(
        ffi::Error {
            code: ErrorCode::ConstraintViolation,
            extended_code,
        },
        _,
    ) = err
    {
        if extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            || extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
        {
            return Error::Duplicate;
        }
    }
    Error::Database(Box::new(err))
}

fn to_sqlite(v: Value) -> rusqlite::types::Value {
    match v {
        Value::Blob(b) => rusqlite::types::Value::Blob(b),
        Value::Integer(i) => rusqlite::types::Value::Integer(i),
        Value::Null => rusqlite::types::Value::Null,
        Value::Text(t) => rusqlite::types::Value::Text(t),
        Value::Real(r) => rusqlite::types::Value::Real(r),
    }
}

fn from_sqlite(v: rusqlite::types::Value) -> Value {
    match v {
        rusqlite::types::Value::Blob(b) => Value::Blob(b),
        rusqlite::types::Value::Integer(i) => Value::Integer(i),
        rusqlite::types::Value::Null => Value::Null,
        rusqlite::types::Value::Text(t) => Value::Text(t),
        rusqlite::types::Value::Real(r) => Value::Real(r),
    }
}

fn row_values(row: &rusqlite::Row<'_>, columns: usize) -> rusqlite::Result<Vec<Column>> {
    (0..columns).map(|i| row.get(i).map(from_sqlite)).collect()
}

#[async_trait::async_trait]
impl DatabaseExecutor for Connection {
    /// cdk picks its SQL dialect and migrations by this name.
    fn name() -> &'static str {
        "sqlite"
    }

    async fn execute(&self, statement: Statement) -> Result<usize, Error> {
        self.run(statement, |stmt| stmt.raw_execute()).await
    }

    async fn fetch_one(&self, statement: Statement) -> Result<Option<Vec<Column>>, Error> {
        self.run(statement, |stmt| {
            let columns = stmt.column_count();
            let mut rows = stmt.raw_query();
            rows.next()?.map(|row| row_values(row, columns)).transpose()
        })
        .await
    }

    async fn fetch_all(&self, statement: Statement) -> Result<Vec<Vec<Column>>, Error> {
        self.run(statement, |stmt| {
            let columns = stmt.column_count();
            let mut rows = stmt.raw_query();
            let mut all = Vec::new();
            while let Some(row) = rows.next()? {
                all.push(row_values(row, columns)?);
            }
            Ok(all)
        })
        .await
    }

    async fn pluck(&self, statement: Statement) -> Result<Option<Column>, Error> {
        self.run(statement, |stmt| {
            let mut rows = stmt.raw_query();
            rows.next()?
                .map(|row| row.get(0usize).map(from_sqlite))
                .transpose()
        })
        .await
    }

    /// Several statements without placeholders (cdk's migrations, inside their transaction).
    async fn batch(&self, mut statement: Statement) -> Result<(), Error> {
        let sql = match (statement.parts.pop(), statement.parts.is_empty()) {
            (Some(SqlPart::Raw(sql)), true) => sql,
            _ => {
                return Err(Error::Internal(
                    "a batch is one piece of SQL without placeholders".into(),
                ))
            }
        };
        if self.turn.is_none() {
            return Err(Error::Internal(
                "a batch runs only inside a transaction".into(),
            ));
        }
        self.exec(&sql)
    }
}

/// `BEGIN` takes the turn (the writing connection); `COMMIT` hands it on and then waits for the
/// disk; `ROLLBACK` hands it on. cdk rolls back a transaction dropped unfinished from a task that holds the connection
/// (and so the turn) until the rollback has run, so the next writer never meets SQLite's lock.
pub struct Transactions;

#[async_trait::async_trait]
impl DatabaseTransaction<Connection> for Transactions {
    async fn begin(conn: &mut Connection) -> Result<(), Error> {
        conn.shared.wal.check()?;
        conn.turn = Some(conn.shared.turn.take().await?);
        if let Err(e) = conn.exec("BEGIN IMMEDIATE") {
            conn.turn = None;
            return Err(e);
        }
        Ok(())
    }

    async fn commit(conn: &mut Connection) -> Result<(), Error> {
        // On failure the transaction stays open with its turn; cdk rolls it back.
        conn.exec("COMMIT")?;
        let seq = conn.shared.wal.committed();
        conn.turn = None;
        conn.shared.wal.durable(seq).await
    }

    async fn rollback(conn: &mut Connection) -> Result<(), Error> {
        if !conn.lock().is_autocommit() {
            // On failure the turn stays with the connection, which cdk then discards (and
            // `Drop` rolls back).
            conn.exec("ROLLBACK")?;
        }
        conn.turn = None;
        Ok(())
    }
}

impl DatabaseConnector for Connection {
    type Transaction = Transactions;
}
