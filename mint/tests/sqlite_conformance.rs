//! cdk's own test suite for mint databases, run against the mint's SQLite store
//! (`allowance_mint::sqlite`): the same cases cdk-sqlite passes (proofs, quotes, signatures,
//! keysets, sagas, the KV store, isolation and rollback).

#![allow(clippy::unwrap_used)]

use allowance_mint::sqlite::{self, MintSqlite};
use cdk_common::mint_db_test;

async fn provide_db(name: String) -> MintSqlite {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sqlite-conformance");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.sqlite"));
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    sqlite::open(path).await.unwrap()
}

mint_db_test!(provide_db);
