//! A lock file that keeps crash recovery away from operations in progress.
//!
//! Every money-moving operation (a payment, a send, a receive) holds a shared lock on
//! `ops.lock` in the data dir while it runs; recovery takes the exclusive lock without waiting
//! and skips if it cannot. So recovery only runs when no operation in any process (or in this
//! one) is under way, and everything it finds in the outbox or in cdk's unfinished sagas was
//! left by a crash. The OS drops a killed process's locks. On non-Unix platforms the lock is a
//! no-op and recovery always runs.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::WalletError;

pub const LOCK_FILE: &str = "ops.lock";

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct OpLock {
    _file: File,
}

fn open(dir: &Path) -> Result<(File, PathBuf), WalletError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| WalletError::io(&path, e))?;
    Ok((file, path))
}

/// Takes the shared lock for an operation, waiting while a recovery holds it.
pub async fn shared(dir: &Path) -> Result<OpLock, WalletError> {
    let (file, path) = open(dir)?;
    let locked = tokio::task::spawn_blocking(move || lock_shared(file))
        .await
        .map_err(|e| WalletError::io(&path, std::io::Error::other(e.to_string())))?;
    locked.map_err(|e| WalletError::io(&path, e))
}

/// Takes the exclusive lock for recovery, or `None` if an operation is under way.
pub fn try_exclusive(dir: &Path) -> Result<Option<OpLock>, WalletError> {
    let (file, path) = open(dir)?;
    try_lock_exclusive(file).map_err(|e| WalletError::io(&path, e))
}

#[cfg(unix)]
fn lock_shared(file: File) -> std::io::Result<OpLock> {
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockShared)?;
    Ok(OpLock { _file: file })
}

#[cfg(unix)]
fn try_lock_exclusive(file: File) -> std::io::Result<Option<OpLock>> {
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(OpLock { _file: file })),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
fn lock_shared(file: File) -> std::io::Result<OpLock> {
    Ok(OpLock { _file: file })
}

#[cfg(not(unix))]
fn try_lock_exclusive(file: File) -> std::io::Result<Option<OpLock>> {
    Ok(Some(OpLock { _file: file }))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recovery_is_kept_out_while_an_operation_runs() {
        let dir = tempfile::tempdir().unwrap();
        let op = shared(dir.path()).await.unwrap();
        let op2 = shared(dir.path()).await.unwrap();
        assert!(try_exclusive(dir.path()).unwrap().is_none());
        drop(op);
        assert!(try_exclusive(dir.path()).unwrap().is_none());
        drop(op2);
        let rec = try_exclusive(dir.path()).unwrap();
        assert!(rec.is_some());
        assert!(try_exclusive(dir.path()).unwrap().is_none());
    }
}
