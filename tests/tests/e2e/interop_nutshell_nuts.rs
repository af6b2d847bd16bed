//! Interop with Nutshell beyond mint/send/receive/melt: its `cashu` CLI locks ecash to a key
//! (P2PK, NUT-11), verifies our DLEQ proofs (NUT-12), learns proof states (NUT-07) and restores
//! a wallet from its mnemonic (NUT-09/13) against our mint; a cdk wallet checks each from our
//! side. Skipped without Nutshell, except under `CI` (see [`crate::interop_nutshell`]).

use std::str::FromStr;

use cdk::nuts::{State, TokenV3};
use cdk::wallet::ReceiveOptions;
use cdk::Amount;

use crate::interop_nutshell::{nutshell_bin, parse_balance, parse_token, Nutshell};
use crate::lifecycle::token_proofs;
use crate::support::*;

/// The `P2PK:<pubkey>` lock that `cashu lock` prints.
fn parse_lock(out: &str) -> Option<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Public receiving lock: "))
        .map(|l| l.trim().to_string())
        .next()
}

/// The mnemonic that `cashu info --mnemonic` prints as ` - word word ...`.
fn parse_mnemonic(out: &str) -> Option<String> {
    let mut lines = out.lines().skip_while(|l| !l.starts_with("Mnemonic"));
    lines
        .nth(1)
        .and_then(|l| l.trim().strip_prefix("- "))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nutshell_locks_verifies_dleq_checks_states_and_restores_against_our_mint() {
    let Some(bin) = nutshell_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let mut alice = Nutshell::new(bin.clone(), &dir.path().join("alice"), &mint.url);
    let mut bob = Nutshell::new(bin.clone(), &dir.path().join("bob"), &mint.url);
    let cdk_wallet = wallet(&mint.url, &dir.path().join("cdk")).await;
    let run = |n: &mut Nutshell, args: &[&str]| tokio::task::block_in_place(|| n.run(args));
    let try_run = |n: &mut Nutshell, args: &[&str]| tokio::task::block_in_place(|| n.try_run(args));
    let balance = |n: &mut Nutshell| tokio::task::block_in_place(|| n.balance());

    run(&mut alice, &["invoice", "1000"]);
    run(&mut bob, &["invoice", "200"]);
    assert_eq!(balance(&mut alice), 1000);
    assert_eq!(balance(&mut bob), 200);

    // DLEQ (NUT-12): Alice sends with the DLEQ proofs our mint signed (legacy cashuA, plain JSON).
    let out = run(&mut alice, &["send", "100", "--dleq", "--legacy"]);
    let token = parse_token(&out).unwrap_or_else(|| panic!("no token in:\n{out}"));
    assert!(token.starts_with("cashuA"), "{token}");
    let v3 = TokenV3::from_str(&token).unwrap();
    let proofs: Vec<_> = v3.token.iter().flat_map(|t| t.proofs.iter()).collect();
    assert!(!proofs.is_empty());
    assert!(proofs.iter().all(|p| p.dleq.is_some()), "{token}");
    // Bob verifies the DLEQ proofs before he redeems: a tampered one is refused, and nothing is
    // spent by the attempt.
    let mut tampered = v3.clone();
    for p in tampered.token.iter_mut().flat_map(|t| t.proofs.iter_mut()) {
        let dleq = p.dleq.as_mut().unwrap();
        std::mem::swap(&mut dleq.e, &mut dleq.s);
    }
    let (ok, stdout, stderr) = try_run(&mut bob, &["receive", &tampered.to_string()]);
    assert!(!ok, "a token with a broken DLEQ was received:\n{stdout}");
    assert!(
        format!("{stdout}{stderr}").contains("DLEQ proof invalid"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let sent = token_proofs(&cdk_wallet, &token).await;
    let sent_states = proof_states(&cdk_wallet, sent.clone()).await;
    assert!(
        sent_states.iter().all(|s| *s == State::Unspent),
        "{sent_states:?}"
    );
    // The genuine token's DLEQ proofs verify in Nutshell against our keys, and Bob redeems it.
    let out = run(&mut bob, &["receive", &token]);
    assert_eq!(parse_balance(&out), Some(300), "{out}");

    // Checkstate (NUT-07): our mint says spent, and Alice learns it and clears her pending send.
    let sent_states = proof_states(&cdk_wallet, sent).await;
    assert!(
        sent_states.iter().all(|s| *s == State::Spent),
        "{sent_states:?}"
    );
    assert_eq!(tokio::task::block_in_place(|| alice.pending()), 100);
    run(&mut alice, &["burn", "-a"]);
    assert_eq!(tokio::task::block_in_place(|| alice.pending()), 0);
    assert_eq!(balance(&mut alice), 900);

    // P2PK (NUT-11): Bob locks 50 to Alice's key. The cdk wallet, without the key, is refused by
    // our mint; Alice, who signs, redeems.
    let out = run(&mut alice, &["lock", "p2pk"]);
    let lock = parse_lock(&out).unwrap_or_else(|| panic!("no lock in:\n{out}"));
    let pubkey = lock.strip_prefix("P2PK:").unwrap().to_string();
    let out = run(&mut bob, &["send", "50", "--lock", &lock]);
    let locked = parse_token(&out).unwrap_or_else(|| panic!("no token in:\n{out}"));
    let locked_proofs = token_proofs(&cdk_wallet, &locked).await;
    assert!(
        locked_proofs
            .iter()
            .all(|p| p.secret.to_string().contains(&pubkey)),
        "not locked to {pubkey}: {locked_proofs:?}"
    );
    let refused = cdk_wallet.receive(&locked, ReceiveOptions::default()).await;
    assert!(refused.is_err(), "redeemed without the key: {refused:?}");
    let states = proof_states(&cdk_wallet, locked_proofs.clone()).await;
    assert!(states.iter().all(|s| *s == State::Unspent), "{states:?}");
    let out = run(&mut alice, &["receive", &locked]);
    assert_eq!(parse_balance(&out), Some(950), "{out}");
    let states = proof_states(&cdk_wallet, locked_proofs).await;
    assert!(states.iter().all(|s| *s == State::Spent), "{states:?}");
    run(&mut bob, &["burn", "-a"]);
    assert_eq!(balance(&mut bob), 250);
    assert_eq!(cdk_wallet.total_balance().await.unwrap(), Amount::ZERO);

    // Restore (NUT-09/13): a fresh Nutshell wallet given only Alice's mnemonic finds her 950 sat,
    // and so does a cdk wallet with the same seed (both derive the same secrets).
    let out = run(&mut alice, &["info", "--mnemonic"]);
    let mnemonic = parse_mnemonic(&out).unwrap_or_else(|| panic!("no mnemonic in:\n{out}"));
    let mut restored = Nutshell::new(bin, &dir.path().join("alice-restored"), &mint.url);
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        restored.try_run_with_input(&["restore"], &format!("{mnemonic}\n"))
    });
    assert!(ok, "restore failed:\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(balance(&mut restored), 950, "restore printed:\n{stdout}");
    let seed = bip39::Mnemonic::parse(&mnemonic)
        .unwrap()
        .to_seed_normalized("");
    let by_cdk = wallet_with_seed(&mint.url, &dir.path().join("cdk-restored"), seed).await;
    let result = by_cdk.restore().await.unwrap();
    assert_eq!(u64::from(result.unspent), 950, "{result:?}");

    mint.stop();
}
