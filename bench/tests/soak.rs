//! The soak, bounded: `allowance-bench --soak-secs N` runs mixed traffic (mint, swap,
//! checkstate, melt) against the real `allowance-mint` binary for N seconds (40 by default,
//! `ALLOWANCE_SOAK_SECS` for a longer run) and fails when an operation fails or the mint's
//! resident memory grows more than the bound after the warm-up. Throughput is reported, never
//! asserted (speed is for benchmarks).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn mixed_traffic_soak_keeps_the_mints_memory_bounded() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_allowance-bench"));
    let mint = bench.with_file_name("allowance-mint");
    assert!(
        mint.exists(),
        "{} is missing: run `cargo test --workspace`",
        mint.display()
    );
    let secs: u64 = std::env::var("ALLOWANCE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("soak.json");
    let out = Command::new(&bench)
        .args(["--soak-secs", &secs.to_string(), "--soak-concurrency", "4"])
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The report goes to the test's output either way, for the CI log.
    println!("{stdout}");
    assert!(out.status.success(), "soak failed:\n{stdout}\n{stderr}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    for op in ["mint", "swap", "checkstate", "melt"] {
        let stats = report["ops"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["op"] == op)
            .unwrap_or_else(|| panic!("no {op} in {report}"));
        assert!(stats["ok"].as_u64().unwrap() > 0, "{stats}");
        assert_eq!(stats["errors"], 0, "{stats}");
    }
    for key in ["rss_start_kib", "rss_warm_kib", "rss_end_kib"] {
        assert!(report[key].as_u64().unwrap() > 0, "{key} in {report}");
    }
    let growth = report["rss_end_kib"]
        .as_u64()
        .unwrap()
        .saturating_sub(report["rss_warm_kib"].as_u64().unwrap());
    assert!(
        growth <= report["max_growth_kib"].as_u64().unwrap(),
        "{report}"
    );
    assert!(report["secs"].as_f64().unwrap() >= secs as f64, "{report}");
}
