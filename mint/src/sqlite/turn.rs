//! The process's one writing connection to the SQLite file, taken in turns.
//!
//! Every write of the process runs on this connection, whoever holds the turn. Besides keeping
//! writers from meeting inside SQLite, that keeps its page cache warm: SQLite drops a
//! connection's cache whenever another connection has written, which with a pool of writers
//! meant re-reading every page a transaction touched from the WAL and the database file.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cdk_common::database::Error;
use tokio::sync::OwnedMutexGuard;

/// Longest wait for a turn, as long as SQLite's own busy timeout: a writer that waits longer
/// fails as it would have failed inside SQLite, instead of hanging.
const TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// One per database file, shared by every connection of its pool.
#[derive(Clone)]
pub struct WriterTurn {
    writer: Arc<tokio::sync::Mutex<Writer>>,
}

/// The writing connection. The inner lock is never contended (only the turn's holder uses it);
/// it is there because a rusqlite connection cannot be shared between threads by reference.
#[derive(Debug)]
pub struct Writer(Mutex<rusqlite::Connection>);

impl Writer {
    pub(crate) fn conn(&self) -> MutexGuard<'_, rusqlite::Connection> {
        // A rusqlite connection stays usable after a panic elsewhere.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A writer's turn; the next writer's starts when this is dropped.
pub(crate) type Turn = OwnedMutexGuard<Writer>;

impl WriterTurn {
    pub(crate) fn new(conn: rusqlite::Connection) -> Self {
        Self {
            writer: Arc::new(tokio::sync::Mutex::new(Writer(Mutex::new(conn)))),
        }
    }

    pub(crate) async fn take(&self) -> Result<Turn, Error> {
        self.take_within(TURN_TIMEOUT).await
    }

    pub(crate) async fn take_within(&self, timeout: Duration) -> Result<Turn, Error> {
        tokio::time::timeout(timeout, self.writer.clone().lock_owned())
            .await
            .map_err(|_| {
                Error::Internal(format!(
                    "database is locked: no turn to write within {timeout:?}"
                ))
            })
    }
}
