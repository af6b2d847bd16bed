//! SQLite's one writer, taken in turns inside the process instead of inside SQLite.
//!
//! SQLite lets one connection write at a time. cdk-sqlite begins every write transaction with
//! `BEGIN IMMEDIATE` and, when another connection holds the write lock, waits in SQLite's busy
//! handler: synchronously, on the Tokio worker, sleeping 1, 2, 5, … up to 100 ms between tries
//! whether or not the lock was freed meanwhile. Two things follow:
//!
//! - **Tails.** Under concurrency most writers get the lock at once and a few lose the race
//!   several times and sleep 25–100 ms each time (swap p99 at 8 concurrent clients was 108 ms with
//!   p50 at 2 ms).
//! - **Stalls.** The lock's holder may be a task parked on the very worker that is blocked waiting
//!   (a rollback cdk spawned when it dropped a transaction unfinished goes into that worker's LIFO
//!   slot, which no other worker takes); the waiter then fails with "database is locked" after
//!   SQLite's 10 s busy timeout.
//!
//! So every write this process makes to its SQLite database first takes a [`WriterTurn`]: an
//! async, first-come first-served lock held from `BEGIN` until `COMMIT` or `ROLLBACK` (and around
//! cdk's one autocommit write). A writer waiting for its turn waits asynchronously, so the worker
//! runs other tasks (including the holder), and it is woken the moment the holder finishes. The
//! wrappers here (the mint database, the KV store, the keyset store) are the only way the mint
//! reaches the SQLite file, so `BEGIN IMMEDIATE` no longer finds the lock taken by this process.
//! A transaction dropped unfinished is rolled back before its turn is handed on.
//!
//! PostgreSQL does not need this: tokio-postgres waits for row locks asynchronously.

mod database;
mod keys;
mod kv;
mod transaction;
mod turned;

use std::sync::Arc;
use std::time::Duration;

use cdk_common::database::Error;
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use database::TurnDatabase;
pub use keys::TurnKeysDatabase;
pub use kv::TurnKvStore;

/// Longest wait for a turn, as long as SQLite's own busy timeout: a writer that waits longer
/// fails as it would have failed inside SQLite, instead of hanging.
const TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// The right to write, shared by every wrapper over one SQLite file.
#[derive(Clone, Default)]
pub struct WriterTurn {
    lock: Arc<Mutex<()>>,
}

/// A writer's turn; the next writer's starts when this is dropped.
pub(crate) type Turn = OwnedMutexGuard<()>;

impl WriterTurn {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) async fn take(&self) -> Result<Turn, Error> {
        self.take_within(TURN_TIMEOUT).await
    }

    async fn take_within(&self, timeout: Duration) -> Result<Turn, Error> {
        tokio::time::timeout(timeout, self.lock.clone().lock_owned())
            .await
            .map_err(|_| {
                Error::Internal(format!(
                    "database is locked: no turn to write within {timeout:?}"
                ))
            })
    }
}

#[cfg(test)]
mod tests;
