//! End-to-end smoke test of the bench command: `allowance-bench --tiny` starts the real
//! `allowance-mint` binary and the `paid_api` example (both built by `cargo test --workspace`),
//! runs a few operations of every workload over HTTP and writes the JSON. No timing assertions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn tiny_bench_runs_every_workload_against_our_mint() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_allowance-bench"));
    let bin_dir = bench.parent().unwrap().to_path_buf();
    for needed in ["allowance-mint", "examples/paid_api"] {
        assert!(
            bin_dir.join(needed).exists(),
            "{} is missing: run `cargo test --workspace`",
            bin_dir.join(needed).display()
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("results.json");
    let out = Command::new(&bench)
        .arg("--tiny")
        .arg("--out")
        .arg(&out_file)
        .env_remove("BENCH_POSTGRES_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("| target | operation |"), "{stdout}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(json["mode"], "tiny");
    let ms = json["measurements"].as_array().unwrap();
    for (target, op, conc) in [
        ("allowance-mint sqlite", "swap", 1),
        ("allowance-mint sqlite", "swap", 8),
        ("allowance-mint sqlite", "mint", 8),
        ("allowance-mint sqlite", "melt", 8),
        ("paywall (online)", "unpaid GET /health", 1),
        ("paywall (online)", "paid GET /weather", 1),
        ("paywall (online)", "paid GET /weather", 8),
        ("paywall (locked, DLEQ)", "unpaid GET /health", 1),
        ("paywall (locked, DLEQ)", "paid GET /weather", 1),
        ("paywall (locked, DLEQ)", "paid GET /weather", 8),
    ] {
        let m = ms
            .iter()
            .find(|m| m["target"] == target && m["op"] == op && m["concurrency"] == conc)
            .unwrap_or_else(|| panic!("no {target} {op} c={conc} in {json}"));
        assert_eq!(m["errors"], 0, "{m}");
        assert!(m["ok"].as_u64().unwrap() > 0, "{m}");
    }
    let overhead = json["paywall_overhead"].as_array().unwrap();
    assert_eq!(overhead.len(), 2, "{json}");
}
