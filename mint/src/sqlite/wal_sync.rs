//! Group commit: one `fdatasync` of the write-ahead log makes every commit written before it
//! durable, so commits that finish while a sync runs share the next one.
//!
//! Connections run with `synchronous = NORMAL`, so `COMMIT` appends to the WAL without syncing
//! it. A commit is numbered while its writer still holds the turn (so numbers follow the WAL's
//! order), the turn is handed on, and the commit waits here until a sync that started after it
//! has finished. Only then does `commit()` return: what a caller sees is `synchronous = FULL`
//! (nothing is answered, paid or signed on a commit that a power cut could undo), but the next
//! writer's statements overlap this one's flush and one flush serves every commit queued behind
//! it. SQLite recovers the WAL as a prefix (each frame's checksum chains the previous ones), so a
//! sync that covers commit `n` covers every commit before it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use cdk_common::database::Error;
use tokio::sync::Notify;

/// The WAL of one database file and how far it is known to be on disk.
#[derive(Clone)]
pub struct WalSync {
    inner: Arc<Inner>,
}

struct Inner {
    wal: PathBuf,
    state: Mutex<State>,
    synced: Notify,
}

#[derive(Default)]
struct State {
    /// Commits appended to the WAL, numbered from 1.
    written: u64,
    /// Every commit up to this one is on disk.
    durable: u64,
    /// A sync is running (at most one at a time).
    syncing: bool,
    /// A sync failed: what reached the disk is unknown, so no later write may report success
    /// (as PostgreSQL does after a failed fsync). Cleared only by restarting the mint.
    failed: Option<String>,
}

impl WalSync {
    /// For the database at `db_path`; SQLite keeps its WAL beside it, named `<db>-wal`.
    pub fn new(db_path: &std::path::Path) -> Self {
        let mut wal = db_path.as_os_str().to_owned();
        wal.push("-wal");
        Self {
            inner: Arc::new(Inner {
                wal: PathBuf::from(wal),
                state: Mutex::new(State::default()),
                synced: Notify::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    /// Refuses to start a write once a sync has failed.
    pub fn check(&self) -> Result<(), Error> {
        match &self.state().failed {
            Some(e) => Err(failed(e)),
            None => Ok(()),
        }
    }

    /// Numbers a commit just written; call it before handing the writer's turn on.
    pub fn committed(&self) -> u64 {
        let mut s = self.state();
        s.written += 1;
        s.written
    }

    /// Returns once commit `seq` is on disk, starting a sync if none is running.
    pub async fn durable(&self, seq: u64) -> Result<(), Error> {
        loop {
            // Registered before the state is read, so a sync finishing in between still wakes us.
            let notified = self.inner.synced.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.state();
                if let Some(e) = &s.failed {
                    return Err(failed(e));
                }
                if s.durable >= seq {
                    return Ok(());
                }
                if !s.syncing {
                    s.syncing = true;
                    let upto = s.written;
                    let inner = self.inner.clone();
                    // Detached: a caller that stops waiting (a cancelled request) cannot leave
                    // `syncing` set with nobody syncing.
                    tokio::task::spawn_blocking(move || inner.sync(upto));
                }
            }
            notified.await;
        }
    }
}

impl Inner {
    fn sync(&self, upto: u64) {
        let result = sync_file(&self.wal);
        {
            let mut s = lock(&self.state);
            s.syncing = false;
            match result {
                Ok(()) => s.durable = s.durable.max(upto),
                Err(e) => {
                    tracing::error!(wal = %self.wal.display(), error = %e, "syncing the database's write-ahead log failed; every further write is refused until the mint restarts");
                    s.failed = Some(e.to_string());
                }
            }
        }
        self.synced.notify_waiters();
    }
}

/// `fdatasync` of the file, through a descriptor of our own: it flushes the file, whoever wrote
/// it. No WAL means SQLite checkpointed it into the database and removed it, which it does only
/// after syncing the database.
fn sync_file(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn failed(e: &str) -> Error {
    Error::Internal(format!(
        "the database's write-ahead log could not be synced to disk ({e}); restart the mint"
    ))
}

/// The state is plain data, valid after any panic of a holder.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
