//! Crash loops: the mint is SIGKILLed at a random point under mixed load (bolt11 mints, swaps,
//! melts and allowance draws from several wallets at once) again and again, restarted on the
//! same data each time, and after every restart the wallets recover and the invariants are
//! checked:
//!
//! - every proof a wallet counts is UNSPENT at the mint, every proof it marked spent is SPENT,
//!   nothing is left pending, and no proof is counted by two wallets (no proof both spent and
//!   re-signed);
//! - what the wallets hold is exactly the ecash the mint says is outstanding (nothing lost,
//!   nothing created);
//! - the books identity of the allowance issue holds.
//!
//! At the end every wallet's seed, restored into an empty wallet (NUT-09), finds exactly the
//! proofs the wallet holds. Rounds: [`DEFAULT_ROUNDS`], or `ALLOWANCE_MINT_CRASH_ROUNDS`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use cdk::amount::SplitTarget;
use cdk::nuts::nut00::ProofsMethods;
use cdk::nuts::{CurrencyUnit, MintQuoteState, PaymentMethod, Proofs, PublicKey, SecretKey, State};
use cdk::wallet::{MintQuote, Wallet};
use cdk::Amount;
use reqwest::Method;
use serde_json::Value;

use crate::allowances::{draw_body, funded_metered};
use crate::lifecycle::{balance, mint_states, random_seed};
use crate::replicas::assert_books_balance;
use crate::support::*;

/// Kill-restart rounds in CI; `ALLOWANCE_MINT_CRASH_ROUNDS` asks for more.
pub(crate) const DEFAULT_ROUNDS: usize = 5;
pub(crate) const ROUNDS_VAR: &str = "ALLOWANCE_MINT_CRASH_ROUNDS";
const WALLETS: usize = 4;
/// Operations the load gets through in a round before the kill can come.
const MIN_OPS: usize = 10;

pub(crate) fn rounds() -> usize {
    std::env::var(ROUNDS_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS)
}

/// The agent's side of a metered allowance every wallet draws from.
#[derive(Clone)]
struct Agent {
    id: String,
    key: SecretKey,
}

type Flags = (Arc<AtomicUsize>, Arc<AtomicBool>, Arc<AtomicBool>);

/// One wallet's share of the load: mints, swaps, melts and draws in turn.
async fn load(
    me: usize,
    w: Wallet,
    mint_url: String,
    agent: Agent,
    flags: Flags,
) -> Result<(), String> {
    let (done, killed, stop) = flags;
    for step in me.. {
        if stop.load(SeqCst) {
            return Ok(());
        }
        let outcome = match step % 4 {
            0 => mint_bolt11(&w, 20 + (step as u64 % 7) * 3).await,
            1 => swap_some(&w, step).await,
            2 => melt(&w, 5 + step as u64 % 5).await,
            _ => draw(&w, &mint_url, &agent, 10 + step as u64 % 11).await,
        };
        match outcome {
            Ok(()) => {
                done.fetch_add(1, SeqCst);
            }
            Err(_) if killed.load(SeqCst) => return Ok(()),
            Err(e) => return Err(format!("wallet {me}, step {step}, before the kill: {e}")),
        }
    }
    Ok(())
}

async fn mint_bolt11(w: &Wallet, amount: u64) -> Result<(), String> {
    let e = |e: cdk::Error| e.to_string();
    let quote = w
        .mint_quote(
            PaymentMethod::BOLT11,
            Some(Amount::from(amount)),
            None,
            None,
        )
        .await
        .map_err(e)?;
    for _ in 0..500 {
        if w.check_mint_quote_status(&quote.id).await.map_err(e)?.state == MintQuoteState::Paid {
            w.mint(&quote.id, SplitTarget::default(), None)
                .await
                .map_err(e)?;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err("the fake backend never paid".into())
}

async fn swap_some(w: &Wallet, step: usize) -> Result<(), String> {
    let held = w.get_unspent_proofs().await.map_err(|e| e.to_string())?;
    if held.is_empty() {
        return Ok(());
    }
    let start = (step * 5) % held.len();
    let pick: Proofs = held
        .iter()
        .cycle()
        .skip(start)
        .take(held.len().min(5))
        .cloned()
        .collect();
    w.swap(None, SplitTarget::default(), pick, None, false, false)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn melt(w: &Wallet, amount: u64) -> Result<(), String> {
    let e = |e: cdk::Error| e.to_string();
    if u64::from(w.total_balance().await.map_err(e)?) < amount + 10 {
        return Ok(());
    }
    let quote = w
        .melt_quote(PaymentMethod::BOLT11, fake_invoice(amount), None, None)
        .await
        .map_err(e)?;
    w.prepare_melt(&quote.id, HashMap::new())
        .await
        .map_err(e)?
        .confirm()
        .await
        .map_err(e)?;
    Ok(())
}

/// A draw from the allowance, minted at once with the agent key (NUT-20).
async fn draw(w: &Wallet, mint_url: &str, agent: &Agent, amount: u64) -> Result<(), String> {
    let r = http()
        .post(format!("{mint_url}/v1/mint/quote/allowance"))
        .json(&draw_body(&agent.key, &agent.id, amount))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let quote: Value = r.json().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("draw: {status} {quote}"));
    }
    let id = quote["quote"].as_str().unwrap_or_default().to_string();
    let q = MintQuote::new(
        id.clone(),
        w.mint_url.clone(),
        PaymentMethod::Custom("allowance".into()),
        Some(Amount::from(amount)),
        CurrencyUnit::Sat,
        quote["request"].as_str().unwrap_or_default().to_string(),
        quote["expiry"].as_u64().unwrap_or(0),
        Some(agent.key.clone()),
    );
    w.localstore
        .add_mint_quote(q)
        .await
        .map_err(|e| e.to_string())?;
    w.mint(&id, SplitTarget::default(), None)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// After a restart: each wallet finishes its interrupted sagas and mints its paid quotes, then
/// the invariants of the module docs are checked. Returns what the wallets hold, how many
/// operations were interrupted, what only restore found, and what is still in flight.
async fn recover_and_check(
    round: usize,
    wallets: &[Wallet],
    seeds: &[[u8; 64]],
    root: &Path,
    mint: &MintProcess,
) -> Recovered {
    let mut counted = HashSet::new();
    let mut out = Recovered::default();
    for (i, w) in wallets.iter().enumerate() {
        let report = w.recover_incomplete_sagas().await.unwrap();
        assert_eq!(report.failed, 0, "round {round}, wallet {i}: {report:?}");
        out.interrupted += report.recovered + report.compensated;
        w.mint_unissued_quotes()
            .await
            .unwrap_or_else(|e| panic!("round {round}, wallet {i}: unissued quotes: {e}"));
        // cdk's saga recovery does not always get back the change of a melt the kill
        // interrupted (seen: 1 sat); a NUT-09 restore of the seed finds every output signed
        // for it. It runs in a scratch wallet (a restore moves the restoring wallet's counter
        // past the empty batches it scanned, and such gaps stop later restores), and what it
        // finds that this wallet lacks is added to it.
        out.restored += adopt_restored(round, i, w, &seeds[i], root).await;

        // What recovery skipped must be a melt the mint still has in flight (the fake backend
        // forgets an outgoing payment when the mint dies: `docs/security.md`, known limits):
        // its inputs are PENDING at the mint, held by the wallet, and counted apart.
        let mut in_flight = HashSet::new();
        for saga in w.localstore.get_incomplete_sagas().await.unwrap() {
            let inputs = w.localstore.get_reserved_proofs(&saga.id).await.unwrap();
            let states = mint_states(w, inputs.iter().map(|p| p.y).collect()).await;
            assert!(
                !states.is_empty() && states.values().all(|s| *s == State::Pending),
                "round {round}, wallet {i}: {:?} left unsettled, its inputs: {states:?}",
                saga.state
            );
            for p in inputs {
                out.in_flight += u64::from(p.proof.amount);
                in_flight.insert(p.y);
            }
        }
        for y in consistent(round, i, w, &in_flight).await {
            assert!(
                counted.insert(y),
                "round {round}: proof {y} counted by two wallets"
            );
        }
        out.held += balance(w).await;
    }
    let (status, books) = mint.admin(Method::GET, "/admin/v1/books", None).await;
    assert_eq!(status, 200, "{books}");
    assert_books_balance(&books);
    assert_eq!(
        books["ecash_outstanding"].as_u64(),
        Some(out.held + out.in_flight),
        "round {round}: the wallets hold {} sat and {} are in flight, the mint says otherwise: \
         {books}",
        out.held,
        out.in_flight
    );
    out
}

/// Restores `seed` into a scratch wallet and adds to `w` the unspent proofs it found that `w`
/// does not hold; returns their value.
async fn adopt_restored(round: usize, i: usize, w: &Wallet, seed: &[u8; 64], root: &Path) -> u64 {
    let scratch = root.join(format!("restore-{round}-{i}"));
    let fresh = wallet_with_seed(&w.mint_url.to_string(), &scratch, *seed).await;
    fresh
        .restore()
        .await
        .unwrap_or_else(|e| panic!("round {round}, wallet {i}: restore: {e}"));
    let held: HashSet<PublicKey> = w
        .localstore
        .get_proofs(Some(w.mint_url.clone()), Some(w.unit.clone()), None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.y)
        .collect();
    let missing: Vec<_> = fresh
        .localstore
        .get_proofs(
            Some(w.mint_url.clone()),
            Some(w.unit.clone()),
            Some(vec![State::Unspent]),
            None,
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|p| !held.contains(&p.y))
        .collect();
    let value = missing.iter().map(|p| u64::from(p.proof.amount)).sum();
    w.localstore.update_proofs(missing, vec![]).await.unwrap();
    value
}

#[derive(Debug, Default)]
struct Recovered {
    held: u64,
    interrupted: usize,
    restored: u64,
    in_flight: u64,
}

/// Checks `w`'s proofs against the mint: every proof it counts is UNSPENT there, every proof
/// it marked spent is SPENT, and nothing is left reserved or pending except `in_flight`.
/// Returns the Ys it counts.
async fn consistent(
    round: usize,
    who: usize,
    w: &Wallet,
    in_flight: &HashSet<PublicKey>,
) -> HashSet<PublicKey> {
    let infos = w
        .localstore
        .get_proofs(Some(w.mint_url.clone()), Some(w.unit.clone()), None, None)
        .await
        .unwrap();
    let states = mint_states(w, infos.iter().map(|p| p.y).collect()).await;
    let mut counted = HashSet::new();
    for p in &infos {
        let at_mint = states[&p.y];
        let what = format!(
            "round {round}, wallet {who}, proof {} of {} sat",
            p.y, p.proof.amount
        );
        match p.state {
            State::Unspent => {
                assert_eq!(
                    at_mint,
                    State::Unspent,
                    "{what}: counted, the mint disagrees"
                );
                counted.insert(p.y);
            }
            State::Spent => assert_eq!(at_mint, State::Spent, "{what}: the mint disagrees"),
            _ if in_flight.contains(&p.y) => {}
            other => panic!("{what}: left {other:?} after recovery (mint: {at_mint:?})"),
        }
    }
    counted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_nine_under_mixed_load_again_and_again_loses_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut mint = MintProcess::start(dir.path(), "");
    let (id, key) = funded_metered(&mint, 200_000, 50, 200_000).await;
    let agent = Agent { id, key };
    let seeds: Vec<[u8; 64]> = (0..WALLETS).map(|_| random_seed()).collect();
    let wallet_dir = |i: usize| dir.path().join(format!("w{i}"));
    let mut wallets = Vec::new();
    for (i, seed) in seeds.iter().enumerate() {
        let w = wallet_with_seed(&mint.url, &wallet_dir(i), *seed).await;
        fund(&w, 200).await;
        wallets.push(w);
    }

    let rounds = rounds();
    let mut in_flight = 0;
    for round in 0..rounds {
        let flags: Flags = Default::default();
        let workers: Vec<_> = wallets
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let f = (flags.0.clone(), flags.1.clone(), flags.2.clone());
                tokio::spawn(load(i, w.clone(), mint.url.clone(), agent.clone(), f))
            })
            .collect();
        let target = MIN_OPS + rand::random::<usize>() % MIN_OPS;
        eventually("the load to get going", || async {
            (flags.0.load(SeqCst) >= target || workers.iter().all(|w| w.is_finished()))
                .then_some(())
        })
        .await;
        // A random point inside whatever the wallets are doing now.
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 150)).await;
        flags.1.store(true, SeqCst);
        let restart = mint.kill();
        let done_at_kill = flags.0.load(SeqCst);
        // The wallets' process "dies" too: every worker is dropped where it stands.
        for worker in workers {
            worker.abort();
            if let Ok(result) = worker.await {
                result.unwrap_or_else(|e| panic!("round {round}: {e}"));
            }
        }
        mint = restart.start();
        for (i, seed) in seeds.iter().enumerate() {
            wallets[i] = wallet_with_seed(&mint.url, &wallet_dir(i), *seed).await;
        }
        let r = recover_and_check(round, &wallets, &seeds, dir.path(), &mint).await;
        println!(
            "round {round}: killed after {done_at_kill} operations, {} wallet operations \
             interrupted and recovered, {} sat found only by restore, {} sat in melts the mint \
             still has in flight; the wallets hold {} sat, all of it outstanding at the mint",
            r.interrupted, r.restored, r.in_flight, r.held
        );
        in_flight = r.in_flight;
    }

    // The mint's record (NUT-09) finds exactly what each wallet holds.
    for (i, seed) in seeds.iter().enumerate() {
        let fresh = wallet_with_seed(&mint.url, &dir.path().join(format!("r{i}")), *seed).await;
        let restored = fresh.restore().await.unwrap();
        assert!(
            restored.pending <= Amount::from(in_flight),
            "wallet {i}: {restored:?}"
        );
        let ys = |p: Proofs| p.ys().unwrap().into_iter().collect::<HashSet<_>>();
        assert_eq!(
            ys(fresh.get_unspent_proofs().await.unwrap()),
            ys(wallets[i].get_unspent_proofs().await.unwrap()),
            "wallet {i}: restore disagrees with the wallet"
        );
    }
    mint.stop();
}
