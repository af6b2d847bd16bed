//! DESIGN.md §2: dependency arrows point only at `shared` (`cashu-402`). The mint, the wallet
//! and the merchant never depend on one another; only the test crate may depend on all.
//! The simulated Lightning network (`tests/lnsim`) is test support: only the test crate uses it,
//! and it never reaches the release mint binary.

use std::collections::BTreeMap;
use std::process::Command;

const ROLES: &[&str] = &["allowance-mint", "agent-wallet", "merchant"];
/// Test support crates, and the only crates that may depend on them.
const TEST_SUPPORT: &[&str] = &["lnsim"];
const TEST_CRATES: &[&str] = &["e2e"];

#[test]
fn roles_depend_only_on_shared() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: Vec<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    for expected in [
        "cashu-402",
        "allowance-mint",
        "agent-wallet",
        "merchant",
        "e2e",
        "lnsim",
    ] {
        assert!(
            members.iter().any(|m| m == expected),
            "workspace lacks {expected}"
        );
    }
    let mut arrows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in meta["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            if members.iter().any(|m| m == dep_name) {
                arrows
                    .entry(name.to_string())
                    .or_default()
                    .push(dep_name.to_string());
            }
        }
    }
    assert!(
        !arrows.contains_key("cashu-402"),
        "shared depends on a role: {arrows:?}"
    );
    for role in ROLES {
        for dep in arrows.get(*role).into_iter().flatten() {
            assert_eq!(
                dep, "cashu-402",
                "{role} depends on {dep}; only `shared` is allowed"
            );
        }
    }
    for (package, deps) in &arrows {
        for support in TEST_SUPPORT {
            assert!(
                !deps.iter().any(|d| d == support) || TEST_CRATES.contains(&package.as_str()),
                "{package} depends on the test support crate {support}"
            );
        }
    }
}

#[test]
fn the_release_mint_binary_has_no_simulated_lightning() {
    let bytes = std::fs::read(crate::support::mint_binary()).unwrap();
    // std's (optimized) UTF-8 and substring search: a byte loop here is slow in a debug build.
    let text = String::from_utf8_lossy(&bytes);
    for needle in ["lnsim", "SIMULATED LIGHTNING"] {
        assert!(!text.contains(needle), "allowance-mint contains {needle:?}");
    }
}
