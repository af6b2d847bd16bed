use std::sync::Arc;
use std::time::Duration;

use cdk_common::database::{DynKVStore, DynMintDatabase, Error, KVStoreTransaction};

use super::turn::WriterTurn;
use super::*;

const NS: &str = "test";

async fn open_both(dir: &tempfile::TempDir) -> (DynMintDatabase, DynKVStore) {
    let db = Arc::new(open(dir.path().join("mint.sqlite")).await.unwrap());
    (db.clone(), db)
}

fn read_n(v: Option<Vec<u8>>) -> u64 {
    v.map_or(0, |b| String::from_utf8(b).unwrap().parse().unwrap())
}

/// Read-modify-write of one counter inside `tx`.
async fn increment(tx: &mut (dyn KVStoreTransaction<Error> + Send + Sync)) {
    let n = read_n(tx.kv_read(NS, "c", "n").await.unwrap());
    tx.kv_write(NS, "c", "n", (n + 1).to_string().as_bytes())
        .await
        .unwrap();
}

/// On one thread, a transaction dropped unfinished used to leave SQLite's lock to a rollback
/// task that could not run while the next `BEGIN IMMEDIATE` blocked the thread: "database is
/// locked" after 10 s. The next writer now waits for its turn, which comes after the rollback.
#[tokio::test(flavor = "current_thread")]
async fn a_dropped_transaction_is_rolled_back_before_the_next_writer_begins() {
    let dir = tempfile::tempdir().unwrap();
    let (db, kv) = open_both(&dir).await;

    let mut abandoned = db.begin_transaction().await.unwrap();
    abandoned.kv_write(NS, "s", "dropped", b"1").await.unwrap();
    drop(abandoned);

    let started = std::time::Instant::now();
    let mut next = kv.begin_transaction().await.unwrap();
    next.kv_write(NS, "s", "kept", b"2").await.unwrap();
    next.commit().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the next writer waited {:?}",
        started.elapsed()
    );
    assert_eq!(kv.kv_read(NS, "s", "dropped").await.unwrap(), None);
    assert_eq!(
        kv.kv_read(NS, "s", "kept").await.unwrap(),
        Some(b"2".to_vec())
    );
}

/// Read-modify-write increments from many tasks, half through the mint database and half
/// through the KV store, all land: writers never interleave, and group commit loses none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (db, kv) = open_both(&dir).await;
    const TASKS: u64 = 16;
    const EACH: u64 = 10;

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (db, kv) = (db.clone(), kv.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                if t % 2 == 0 {
                    let mut tx = db.begin_transaction().await.unwrap();
                    increment(&mut *tx).await;
                    tx.commit().await.unwrap();
                } else {
                    let mut tx = kv.begin_transaction().await.unwrap();
                    increment(&mut *tx).await;
                    tx.commit().await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = kv.kv_read(NS, "c", "n").await.unwrap();
    assert_eq!(read_n(n), TASKS * EACH);
}

/// What was committed is there after the process lets go of the file: a fresh pool (as after a
/// restart) reads every commit, and the WAL holds them until SQLite checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_there_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_, kv) = open_both(&dir).await;
        let mut tasks = Vec::new();
        for i in 0..20u32 {
            let kv = kv.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = kv.begin_transaction().await.unwrap();
                tx.kv_write(NS, "r", &format!("k{i}"), b"v").await.unwrap();
                tx.commit().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    let (_, kv) = open_both(&dir).await;
    assert_eq!(kv.kv_list(NS, "r").await.unwrap().len(), 20);
}

/// Connections append to the WAL without syncing it (`synchronous = NORMAL`); the sync is
/// ours, after `COMMIT` and outside the turn.
#[tokio::test]
async fn connections_leave_the_sync_to_the_group_commit() {
    use cdk_sql_common::database::DatabaseExecutor;
    use cdk_sql_common::pool::DatabasePool;
    use cdk_sql_common::stmt::query;
    use cdk_sql_common::value::Value;

    let dir = tempfile::tempdir().unwrap();
    let conn = Manager::new_resource(
        &Config::new(dir.path().join("mint.sqlite")).unwrap(),
        Default::default(),
        Duration::from_secs(1),
    )
    .unwrap();
    let pragma = |name: &str| query(&format!("pragma {name}")).unwrap();
    assert_eq!(
        conn.pluck(pragma("journal_mode")).await.unwrap(),
        Some(Value::Text("wal".into()))
    );
    // 1 = NORMAL (2 would be FULL: a sync inside every COMMIT, holding the turn).
    assert_eq!(
        conn.pluck(pragma("synchronous")).await.unwrap(),
        Some(Value::Integer(1))
    );
}

/// One sync serves every commit written before it started: commits numbered while a sync runs
/// are made durable by the next one, and waiters for earlier commits return at once.
#[tokio::test]
async fn one_sync_covers_every_earlier_commit() {
    let dir = tempfile::tempdir().unwrap();
    let wal = wal_sync::WalSync::new(&dir.path().join("db"));
    std::fs::write(dir.path().join("db-wal"), b"frames").unwrap();
    let first = wal.committed();
    let second = wal.committed();
    let third = wal.committed();
    wal.durable(second).await.unwrap();
    // The sync for `second` started after all three were numbered.
    tokio::time::timeout(Duration::from_millis(100), wal.durable(third))
        .await
        .expect("covered by the sync that made `second` durable")
        .unwrap();
    wal.durable(first).await.unwrap();
}

/// A sync that fails leaves every later write refused: what reached the disk is unknown.
#[tokio::test]
async fn a_failed_sync_refuses_every_later_write() {
    let dir = tempfile::tempdir().unwrap();
    // The WAL's directory is a file: opening the WAL fails (not with "not found").
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let wal = wal_sync::WalSync::new(&blocker.join("db"));
    let seq = wal.committed();
    let err = wal.durable(seq).await.unwrap_err();
    assert!(err.to_string().contains("restart the mint"), "{err}");
    assert!(wal.check().is_err());
    let later = wal.committed();
    assert!(wal.durable(later).await.is_err());
}

/// A turn that never comes fails like SQLite's busy timeout instead of hanging.
#[tokio::test]
async fn a_writer_that_never_gets_its_turn_fails_after_the_timeout() {
    let turn = WriterTurn::new(rusqlite::Connection::open_in_memory().unwrap());
    let held = turn.take().await.unwrap();
    let err = turn
        .take_within(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("database is locked"), "{err}");
    drop(held);
    turn.take_within(Duration::from_millis(50)).await.unwrap();
}
