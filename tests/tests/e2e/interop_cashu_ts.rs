//! Interop with cashu-ts, the TypeScript wallet library: `tests/interop/cashu-ts/wallet.mjs`
//! mints, sends, receives, locks to a key (P2PK), verifies DLEQ proofs, checks proof states,
//! melts and restores from its seed against our mint, and trades tokens with a cdk wallet.
//!
//! Needs Node (`node` on PATH, or `NODE_BIN`) and `npm ci` in tests/interop/cashu-ts
//! (`tests/interop/install-cashu-ts.sh`). Without them the tests are skipped, except under `CI`,
//! where they fail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cdk::nuts::State;
use cdk::wallet::ReceiveOptions;
use cdk::Amount;
use serde_json::Value;

use crate::lifecycle::token_proofs;
use crate::support::*;

/// One run of the script: Node's start, the mint round trips, the restore scan.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(120);

const INSTALL_HINT: &str = "install Node >= 20 and run `tests/interop/install-cashu-ts.sh` \
     (npm ci in tests/interop/cashu-ts), or point NODE_BIN at a `node` executable";

/// `node` (from `NODE_BIN` or PATH) and the script's directory with cashu-ts installed.
pub fn cashu_ts() -> Option<(PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/cashu-ts");
    let installed = dir.join("node_modules/@cashu/cashu-ts/package.json");
    let node = match std::env::var_os("NODE_BIN") {
        Some(bin) => Some(PathBuf::from(bin)),
        None => std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|p| p.join("node"))
                .find(|p| p.is_file())
        }),
    };
    require_tool(
        node.filter(|_| installed.is_file()).map(|node| (node, dir)),
        "cashu-ts (Node and tests/interop/cashu-ts/node_modules)",
        INSTALL_HINT,
    )
}

/// Runs `node wallet.mjs <args>` against `mint_url`; the JSON lines it printed, by step. Fails the
/// test if the script fails or reports an error step.
pub fn run_script(
    (node, dir): &(PathBuf, PathBuf),
    mint_url: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> HashMap<String, Value> {
    let run = run_with_deadline(
        Command::new(node)
            .arg("wallet.mjs")
            .args(args)
            .current_dir(dir)
            .env("MINT_URL", mint_url)
            .envs(env.iter().copied()),
        "",
        SCRIPT_DEADLINE,
    );
    eprintln!("cashu-ts {args:?}:\n{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.code, 0,
        "cashu-ts {}: stdout:\n{}\nstderr:\n{}",
        args[0], run.stdout, run.stderr
    );
    let mut steps = HashMap::new();
    for line in run.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_ne!(v["step"], "error", "{v}");
        let step = v["step"].as_str().unwrap().to_string();
        steps.insert(step, v);
    }
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cashu_ts_mints_sends_locks_verifies_melts_and_restores_against_our_mint() {
    let Some(cashu_ts) = cashu_ts() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");

    // A cdk wallet hands cashu-ts a token; cashu-ts hands one back through its steps.
    let cdk_wallet = wallet(&mint.url, &dir.path().join("cdk")).await;
    fund(&cdk_wallet, 100).await;
    let for_ts = cdk_wallet
        .prepare_send(Amount::from(30), Default::default())
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string();

    let seed: [u8; 64] = bip39::Mnemonic::generate(12)
        .unwrap()
        .to_seed_normalized("");
    let seed_hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let invoice = fake_invoice(200);
    let steps = run_script(
        &cashu_ts,
        &mint.url,
        &[("SEED_HEX", &seed_hex)],
        &["suite", &invoice, &for_ts],
    );
    let step = |name: &str| {
        steps
            .get(name)
            .unwrap_or_else(|| panic!("no {name} step in {steps:?}"))
    };

    // Mint (NUT-04): the quote is issued on our side.
    assert_eq!(step("mint")["amount"], 1000);
    let quote_id = step("mint")["quote"].as_str().unwrap();
    let quote: Value = http()
        .get(format!("{}/v1/mint/quote/bolt11/{quote_id}", mint.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(quote["state"], "ISSUED", "{quote}");
    // DLEQ (NUT-12): cashu-ts verified our signatures, and required them on receive.
    assert_eq!(step("dleq")["valid"], true);
    assert_eq!(step("receive")["dleq_required"], true);

    // Send and receive: the token cashu-ts made is spent on our side, and a second redemption
    // (by the cdk wallet) is refused.
    assert_eq!(step("send")["amount"], 100);
    let token = step("send")["token"].as_str().unwrap();
    assert!(token.starts_with("cashuB"), "{token}");
    assert_eq!(step("receive")["amount"], 100);
    let sent = token_proofs(&cdk_wallet, token).await;
    assert!(sent.iter().all(|p| p.dleq.is_some()), "cashu-ts kept DLEQ");
    assert!(proof_states(&cdk_wallet, sent)
        .await
        .iter()
        .all(|s| *s == State::Spent));
    assert!(cdk_wallet
        .receive(token, ReceiveOptions::default())
        .await
        .is_err());
    // Checkstate (NUT-07) from cashu-ts's side agrees.
    assert!(step("checkstate")["spent"].as_u64().unwrap() > 0);
    assert!(step("checkstate")["unspent"].as_u64().unwrap() > 0);

    // P2PK (NUT-11): our mint refused the locked proofs without a signature, and took them with.
    assert_eq!(step("p2pk_send")["amount"], 50);
    let locked = token_proofs(&cdk_wallet, step("p2pk_send")["token"].as_str().unwrap()).await;
    let pubkey = step("p2pk_send")["pubkey"].as_str().unwrap();
    assert!(
        locked.iter().all(|p| p.secret.to_string().contains(pubkey)),
        "the proofs are locked to {pubkey}"
    );
    assert_eq!(step("p2pk_receive")["amount"], 50);
    let refusal = step("p2pk_receive")["refused_without_key"]
        .as_str()
        .unwrap();
    assert!(!refusal.is_empty());
    assert!(proof_states(&cdk_wallet, locked)
        .await
        .iter()
        .all(|s| *s == State::Spent));

    // Melt (NUT-05): 200 sat paid, the fake backend's 1 sat fee, the rest of the reserve back.
    let melt = step("melt");
    assert_eq!(melt["amount"], 200);
    assert_eq!(melt["state"], "PAID");
    let melt_quote: Value = http()
        .get(format!(
            "{}/v1/melt/quote/bolt11/{}",
            mint.url,
            melt["quote"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(melt_quote["state"], "PAID", "{melt_quote}");
    let after_melt = 1000 - 100 - 50 - 200 - 1;
    assert_eq!(melt["balance"], after_melt, "{melt}");

    // cashu-ts received the cdk wallet's token.
    assert_eq!(step("receive_foreign")["amount"], 30);
    assert_eq!(cdk_wallet.total_balance().await.unwrap(), Amount::from(70));
    let balance = after_melt + 30;

    // Restore (NUT-09/13): cashu-ts found its unspent proofs from the seed alone, and so does a
    // cdk wallet with the same seed: both derive the same secrets.
    assert_eq!(step("restore")["unspent_amount"], balance);
    assert_eq!(step("done")["balance"], balance);
    assert_eq!(step("done")["bob_balance"], 150);
    let restored_by_cdk = wallet_with_seed(&mint.url, &dir.path().join("cdk-restore"), seed).await;
    let restored = restored_by_cdk.restore().await.unwrap();
    assert_eq!(u64::from(restored.unspent), balance, "{restored:?}");
    assert_eq!(
        restored_by_cdk.total_balance().await.unwrap(),
        Amount::from(balance)
    );

    mint.stop();
}
