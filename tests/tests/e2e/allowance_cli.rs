//! `allowance-mint allowance …` and `agent-wallet allowance …` as a human and an agent type
//! them, against a running mint.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::*;

fn agent_wallet_binary() -> PathBuf {
    mint_binary().with_file_name("agent-wallet")
}

/// Runs `allowance-mint allowance ARGS --json` against `mint`; returns the JSON lines.
fn admin_cli(mint: &MintProcess, args: &[&str]) -> (bool, Vec<Value>, String) {
    let out = Command::new(mint_binary())
        .arg("--data-dir")
        .arg(&mint.data_dir)
        .args(["allowance", "--json", "--admin-url", &mint.admin_url])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let values = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (
        out.status.success(),
        values,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn agent(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(agent_wallet_binary())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn the_human_cli_funds_and_the_agent_cli_draws() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");

    // The agent makes its own key; the human registers its public key.
    let agent_dir = dir.path().join("agent");
    let (ok, pubkey, err) = agent(&agent_dir, &["allowance", "keygen"]);
    assert!(ok, "{err}");
    let pubkey = pubkey.trim().to_string();
    let (ok, lines, err) = admin_cli(
        &mint,
        &[
            "new",
            "--metered",
            "--amount",
            "600",
            "--per-draw",
            "100",
            "--per-day",
            "400",
            "--expires-days",
            "7",
            "--agent-pubkey",
            &pubkey,
            "--memo",
            "cli",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(lines.len(), 2, "the invoice, then the paid view: {lines:?}");
    assert!(lines[0]["fundings"][0]["invoice"]
        .as_str()
        .unwrap()
        .starts_with("lnbc"));
    let credential = lines[1]["credential"].as_str().unwrap().to_string();
    let id = lines[1]["id"].as_str().unwrap().to_string();
    assert_eq!(lines[1]["balance"], 600);
    let parsed: cashu_402::allowance::Credential = credential.parse().unwrap();
    assert!(parsed.secret_key.is_none(), "the key stayed with the agent");

    let (ok, out, err) = agent(&agent_dir, &["allowance", "connect", &credential]);
    assert!(ok, "{err}");
    assert!(out.contains(&id) && out.contains(&pubkey), "{out}");
    let (ok, out, err) = agent(&agent_dir, &["allowance", "draw", "100"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "drew 100 sat");
    let (ok, out, err) = agent(&agent_dir, &["allowance", "draw", "101"]);
    assert!(!ok);
    assert!(err.contains("40304"), "{out}{err}");
    let (_, ledger, _) = agent(&agent_dir, &["ledger", "--json"]);
    let ledger: Value = serde_json::from_str(&ledger).unwrap();
    assert_eq!(ledger[0]["method"], "DRAW");
    assert_eq!(ledger[0]["outcome"], "drawn");

    let (ok, out, err) = agent(&agent_dir, &["--json", "allowance", "status"]);
    assert!(ok, "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (status["balance"].as_u64(), status["drawn_24h"].as_u64()),
        (Some(500), Some(100))
    );
    let (ok, out, err) = agent(&agent_dir, &["--json", "budget"]);
    assert!(ok, "{err}");
    let budget: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(budget["allowance_draw_room"]["state"], "active", "{budget}");
    assert_eq!(budget["allowance_draw_room"]["balance"], 500);

    let (ok, lines, err) = admin_cli(&mint, &["list"]);
    assert!(ok, "{err}");
    assert_eq!(lines[0][0]["balance"], 500);
    assert_eq!(lines[0][0]["drawn_24h"], 100);
    let (ok, lines, err) = admin_cli(&mint, &["topup", &id, "--amount", "50"]);
    assert!(ok, "{err}");
    assert_eq!(lines.last().unwrap()["balance"], 550);
    let (ok, lines, err) = admin_cli(&mint, &["revoke", &id]);
    assert!(ok, "{err}");
    assert_eq!(lines[0]["state"], "revoked");
    let (ok, _, err) = agent(&agent_dir, &["allowance", "draw", "10"]);
    assert!(!ok && err.contains("40302"), "{err}");
    let invoice = fake_invoice(300);
    let (ok, lines, err) = admin_cli(&mint, &["withdraw", &id, "--invoice", &invoice]);
    assert!(ok, "{err}");
    let fee = lines[0]["history"].as_array().unwrap().last().unwrap()["fee"]
        .as_u64()
        .unwrap();
    assert_eq!(lines[0]["balance"].as_u64().unwrap(), 250 - fee);
    let (ok, lines, err) = admin_cli(&mint, &["show", &id]);
    assert!(ok, "{err}");
    let kinds: Vec<&str> = lines[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.ends_with(&["revoked", "withdrawal_started", "withdrawn"]),
        "{kinds:?}"
    );

    // Prepaid, in text mode: the QR code, then the token.
    let out = Command::new(mint_binary())
        .arg("--data-dir")
        .arg(&mint.data_dir)
        .args([
            "allowance",
            "--admin-url",
            &mint.admin_url,
            "new",
            "--amount",
            "42",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains('█') || text.contains('▀'),
        "a QR code: {text}"
    );
    assert!(text.contains("cashuB"), "{text}");

    // Without the data dir's token the CLI cannot get in.
    let out = Command::new(mint_binary())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["allowance", "--admin-url", &mint.admin_url, "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
