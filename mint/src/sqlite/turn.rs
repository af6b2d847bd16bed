//! The right to write to the SQLite file, taken in turns by the connections of one process.

use std::sync::Arc;
use std::time::Duration;

use cdk_common::database::Error;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Longest wait for a turn, as long as SQLite's own busy timeout: a writer that waits longer
/// fails as it would have failed inside SQLite, instead of hanging.
const TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// One per database file, shared by every connection of its pool.
#[derive(Clone, Default)]
pub struct WriterTurn {
    lock: Arc<Mutex<()>>,
}

/// A writer's turn; the next writer's starts when this is dropped.
pub(crate) type Turn = OwnedMutexGuard<()>;

impl WriterTurn {
    pub(crate) async fn take(&self) -> Result<Turn, Error> {
        self.take_within(TURN_TIMEOUT).await
    }

    pub(crate) async fn take_within(&self, timeout: Duration) -> Result<Turn, Error> {
        tokio::time::timeout(timeout, self.lock.clone().lock_owned())
            .await
            .map_err(|_| {
                Error::Internal(format!(
                    "database is locked: no turn to write within {timeout:?}"
                ))
            })
    }
}
