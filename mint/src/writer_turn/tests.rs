use std::sync::Arc;
use std::time::Duration;

use cdk_common::database::{DynKVStore, DynMintDatabase};

use super::*;

const NS: &str = "test";

async fn open(dir: &tempfile::TempDir) -> (DynMintDatabase, DynKVStore) {
    let db = Arc::new(
        cdk_sqlite::MintSqliteDatabase::new(dir.path().join("mint.sqlite"))
            .await
            .unwrap(),
    );
    let turn = WriterTurn::new();
    (
        TurnDatabase::wrap(db.clone(), turn.clone()),
        TurnKvStore::wrap(db, turn),
    )
}

/// On one thread, a transaction dropped unfinished used to leave SQLite's lock to a rollback
/// task that could not run while the next `BEGIN IMMEDIATE` blocked the thread: "database is
/// locked" after 10 s. The next writer now waits for its turn, which comes after the rollback.
#[tokio::test(flavor = "current_thread")]
async fn a_dropped_transaction_is_rolled_back_before_the_next_writer_begins() {
    let dir = tempfile::tempdir().unwrap();
    let (db, kv) = open(&dir).await;

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

/// Writers through the mint database and the KV store share one turn: read-modify-write
/// increments from many tasks, half through each, all land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_through_both_wrappers_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (db, kv) = open(&dir).await;
    const TASKS: u64 = 16;
    const EACH: u64 = 10;

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (db, kv) = (db.clone(), kv.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                let read = |v: Option<Vec<u8>>| -> u64 {
                    v.map_or(0, |b| String::from_utf8(b).unwrap().parse().unwrap())
                };
                if t % 2 == 0 {
                    let mut tx = db.begin_transaction().await.unwrap();
                    let n = read(tx.kv_read(NS, "c", "n").await.unwrap());
                    tx.kv_write(NS, "c", "n", (n + 1).to_string().as_bytes())
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                } else {
                    let mut tx = kv.begin_transaction().await.unwrap();
                    let n = read(tx.kv_read(NS, "c", "n").await.unwrap());
                    tx.kv_write(NS, "c", "n", (n + 1).to_string().as_bytes())
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = kv.kv_read(NS, "c", "n").await.unwrap().unwrap();
    assert_eq!(String::from_utf8(n).unwrap(), (TASKS * EACH).to_string());
}

/// A turn that never comes fails like SQLite's busy timeout instead of hanging.
#[tokio::test]
async fn a_writer_that_never_gets_its_turn_fails_after_the_timeout() {
    let turn = WriterTurn::new();
    let held = turn.take().await.unwrap();
    let err = turn
        .take_within(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("database is locked"), "{err}");
    drop(held);
    turn.take_within(Duration::from_millis(50)).await.unwrap();
}
