//! The mint's SQLite store: cdk's SQL store (cdk-sql-common, the schema and migrations of
//! cdk-sqlite) on connections of our own, which do two things cdk-sqlite's do not.
//!
//! **Writers take turns in the process, on one connection** ([`turn`]). SQLite lets one connection write at a
//! time. cdk-sqlite begins every write transaction with `BEGIN IMMEDIATE` and, when another
//! connection holds the write lock, waits in SQLite's busy handler: synchronously, on the Tokio
//! worker, sleeping 1, 2, 5, … up to 100 ms between tries whether or not the lock was freed
//! meanwhile. That gave long tails (swap p99 at 8 concurrent clients was 108 ms with p50 at
//! 2 ms) and stalls: the lock's holder could be a task parked on the very worker that was
//! blocked waiting (a rollback cdk spawned for a transaction it dropped goes into that worker's
//! LIFO slot, which no other worker takes), and the waiter failed with "database is locked" after
//! 10 s. Here `BEGIN` first takes an async, first-come first-served turn, held until `COMMIT` or
//! `ROLLBACK`, and a write outside a transaction takes it around itself. The turn is the one
//! connection that writes, so its page cache stays valid from one transaction to the next;
//! reads outside transactions use the pool's other connections. A writer waiting for its
//! turn waits asynchronously, so the holder always runs, and it starts the moment the holder
//! finishes. Every connection the mint has to the file comes from this pool (the mint database,
//! the KV store and the keyset store are one object), so no write of this process bypasses it.
//!
//! **Commits share their flush** ([`wal_sync`]). `COMMIT` no longer syncs while holding the
//! turn: the turn passes on, and the commit waits for a `fdatasync` of the write-ahead log that
//! began after it, which covers every commit queued behind it too. `commit()` still returns only
//! once the commit is on disk, as under `synchronous = FULL`.
//!
//! PostgreSQL needs neither: it has many writers, tokio-postgres waits for row locks
//! asynchronously, and the server does its own group commit.

mod connection;
mod turn;
mod wal_sync;

use std::path::PathBuf;

use cdk_common::database::Error;
use cdk_sql_common::SQLMintDatabase;

pub use connection::{Config, Manager};

/// cdk's mint store (also its KV and keyset store) on our SQLite connections.
pub type MintSqlite = SQLMintDatabase<Manager>;

/// Opens (creating if needed) the database at `path` and brings its tables up to date.
pub async fn open(path: PathBuf) -> Result<MintSqlite, Error> {
    let config = Config::new(path).map_err(|e| Error::Database(Box::new(e)))?;
    MintSqlite::new(config).await
}

#[cfg(test)]
mod tests;
