//! A SIGKILL in the middle of a burst of concurrent swaps, after which no sat may be lost or
//! created: every wallet recovers exactly what it held, and the mint agrees proof by proof.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use cdk::amount::SplitTarget;
use cdk::nuts::nut00::ProofsMethods;
use cdk::nuts::{Proofs, PublicKey, State};
use cdk::wallet::types::WalletSagaState;
use cdk::wallet::{ReceiveOptions, Wallet};
use cdk::Amount;

use crate::support::*;

use crate::lifecycle::*;

// ---------------------------------------------------------------------------------------------
// 3. SIGKILL during a burst of concurrent swaps

const FUNDED: u64 = 2000;
/// Wallet 0 is funded; wallets 1.. get a share each before the burst.
const PARTIES: usize = 4;
const SHARE: u64 = 400;
/// Tokens wallet 0 creates before the burst; the others redeem them during it.
const IN_FLIGHT_TOKENS: u64 = 12;
/// Operations that must complete before the kill (and, when wallets ride through the
/// restart, after it).
const BURST_OPS: usize = 20;
/// A worker that never sees the end of the test gives up here.
const MAX_STEPS: usize = 2000;

/// A token created before the burst and redeemed during it.
struct InFlight {
    receiver: usize,
    token: String,
    value: u64,
    received: AtomicBool,
}

/// The wallets of a crash test, and what each must hold at the end.
struct Parties {
    seeds: Vec<[u8; 64]>,
    wallets: Vec<Wallet>,
    tokens: Arc<Vec<InFlight>>,
    expected: Vec<u64>,
}

fn wallet_dir(root: &Path, i: usize) -> std::path::PathBuf {
    root.join(format!("w{i}"))
}

/// Funds wallet 0 with [`FUNDED`] sat, gives every other wallet a [`SHARE`], and prepares
/// [`IN_FLIGHT_TOKENS`] tokens from wallet 0 for the others to redeem during the burst.
async fn parties(mint: &MintProcess, root: &Path) -> Parties {
    let seeds: Vec<[u8; 64]> = (0..PARTIES).map(|_| random_seed()).collect();
    let mut wallets = Vec::new();
    for (i, seed) in seeds.iter().enumerate() {
        wallets.push(wallet_with_seed(&mint.url, &wallet_dir(root, i), *seed).await);
    }
    assert_eq!(u64::from(fund(&wallets[0], FUNDED).await), FUNDED);
    for w in &wallets[1..] {
        let token = send(&wallets[0], SHARE).await;
        assert_eq!(receive(w, &token).await, SHARE);
    }
    let mut expected = vec![SHARE; PARTIES];
    expected[0] = FUNDED - SHARE * (PARTIES as u64 - 1);
    let mut tokens = Vec::new();
    for i in 0..IN_FLIGHT_TOKENS {
        let value = 10 + i;
        let receiver = 1 + i as usize % (PARTIES - 1);
        let token = send(&wallets[0], value).await;
        expected[0] -= value;
        expected[receiver] += value;
        tokens.push(InFlight {
            receiver,
            token,
            value,
            received: AtomicBool::new(false),
        });
    }
    assert_eq!(expected.iter().sum::<u64>(), FUNDED);
    Parties {
        seeds,
        wallets,
        tokens: Arc::new(tokens),
        expected,
    }
}

/// The burst: one worker per wallet, all at once.
struct Burst {
    workers: Vec<tokio::task::JoinHandle<Result<usize, String>>>,
    done: Arc<AtomicUsize>,
    killed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Burst {
    fn start(p: &Parties) -> Self {
        let done = Arc::new(AtomicUsize::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..PARTIES)
            .map(|i| {
                let flags = (done.clone(), killed.clone(), stop.clone());
                tokio::spawn(churn(i, p.wallets[i].clone(), p.tokens.clone(), flags))
            })
            .collect();
        Self {
            workers,
            done,
            killed,
            stop,
        }
    }

    fn done(&self) -> usize {
        self.done.load(SeqCst)
    }

    /// Waits until `n` operations completed, or every worker stopped.
    async fn until_done(&self, n: usize) {
        eventually("the burst to get through enough operations", || async {
            (self.done() >= n || self.workers.iter().all(|w| w.is_finished())).then_some(())
        })
        .await;
    }

    /// SIGKILLs the mint; from now on a failed operation stops its worker quietly.
    fn kill(&self, mint: MintProcess) -> Restartable {
        self.killed.store(true, SeqCst);
        mint.kill()
    }

    /// Asks the workers to stop and waits for them; an error before the kill fails the test.
    async fn join(self) {
        self.stop.store(true, SeqCst);
        for worker in self.workers {
            let stopped = tokio::time::timeout(DEADLINE, worker).await;
            let result = stopped.expect("workers stop when asked").unwrap();
            result.unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Drops every worker wherever it is, as if the wallets' process died too.
    async fn abandon(self) {
        for worker in self.workers {
            worker.abort();
            match worker.await {
                Ok(result) => {
                    result.unwrap_or_else(|e| panic!("{e}"));
                }
                Err(e) => assert!(e.is_cancelled(), "{e}"),
            }
        }
    }
}

/// One wallet's share of the burst: swaps of a few of its proofs at a time, with a receive of
/// its next in-flight token every third step. Stops when asked or at the first error after the
/// kill; an error before the kill fails the test.
async fn churn(
    me: usize,
    w: Wallet,
    tokens: Arc<Vec<InFlight>>,
    (done, killed, stop): (Arc<AtomicUsize>, Arc<AtomicBool>, Arc<AtomicBool>),
) -> Result<usize, String> {
    let mine: Vec<&InFlight> = tokens.iter().filter(|t| t.receiver == me).collect();
    let mut next = 0;
    for step in 0..MAX_STEPS {
        if stop.load(SeqCst) {
            return Ok(step);
        }
        let outcome = match mine.get(next) {
            Some(t) if step % 3 == 1 => {
                match w.receive(&t.token, ReceiveOptions::default()).await {
                    Ok(got) if u64::from(got) == t.value => {
                        t.received.store(true, SeqCst);
                        next += 1;
                        Ok(())
                    }
                    Ok(got) => return Err(format!("wallet {me} received {got} for {}", t.value)),
                    Err(e) => Err(e),
                }
            }
            _ => {
                let held = w.get_unspent_proofs().await.map_err(|e| e.to_string())?;
                let start = (step * 5) % held.len().max(1);
                let pick: Proofs = held
                    .iter()
                    .cycle()
                    .skip(start)
                    .take(held.len().min(6))
                    .cloned()
                    .collect();
                w.swap(None, SplitTarget::default(), pick, None, false, false)
                    .await
                    .map(|_| ())
            }
        };
        match outcome {
            Ok(()) => {
                done.fetch_add(1, SeqCst);
            }
            Err(_) if killed.load(SeqCst) => return Ok(step),
            Err(e) => return Err(format!("wallet {me}, step {step}, before the kill: {e}")),
        }
    }
    Err(format!("wallet {me} was never stopped"))
}

/// Swap and receive sagas a wallet has not finished.
async fn open_sagas(w: &Wallet) -> Vec<cdk::wallet::types::WalletSaga> {
    let sagas = w.localstore.get_incomplete_sagas().await.unwrap();
    sagas
        .into_iter()
        .filter(|s| {
            matches!(
                s.state,
                WalletSagaState::Swap(_) | WalletSagaState::Receive(_)
            )
        })
        .collect()
}

/// How many interrupted swaps the restarted mint found and rolled back (from its log).
fn mint_rollbacks(mint: &MintProcess) -> usize {
    mint.log().matches("Recovering saga").count()
}

/// Counts the wallets' unfinished swaps and receives against the restarted mint, and how
/// many of them the mint had committed. No input may come back PENDING: the mint resolves its
/// own interrupted sagas at startup.
async fn interrupted(wallets: &[Wallet]) -> (usize, usize) {
    let (mut open, mut committed) = (0, 0);
    for w in wallets {
        for saga in open_sagas(w).await {
            open += 1;
            let inputs = w.localstore.get_reserved_proofs(&saga.id).await.unwrap();
            let states = mint_states(w, inputs.iter().map(|p| p.y).collect()).await;
            assert!(!states.values().any(|s| *s == State::Pending), "{states:?}");
            if !states.is_empty() && states.values().all(|s| *s == State::Spent) {
                committed += 1;
            }
        }
    }
    (open, committed)
}

/// Checks `w`'s database against the mint: every proof it counts is UNSPENT there, every
/// proof it marked spent is SPENT there, and nothing is left reserved or pending. Returns the
/// Ys it counts.
async fn assert_consistent(who: usize, w: &Wallet) -> HashSet<PublicKey> {
    let infos = w
        .localstore
        .get_proofs(Some(w.mint_url.clone()), Some(w.unit.clone()), None, None)
        .await
        .unwrap();
    let states = mint_states(w, infos.iter().map(|p| p.y).collect()).await;
    let mut counted = HashSet::new();
    for p in &infos {
        let at_mint = states[&p.y];
        let what = format!("wallet {who}, proof {} of {} sat", p.y, p.proof.amount);
        match p.state {
            State::Unspent => {
                assert_eq!(
                    at_mint,
                    State::Unspent,
                    "{what}: counted, but the mint disagrees"
                );
                counted.insert(p.y);
            }
            State::Spent => {
                assert_eq!(
                    at_mint,
                    State::Spent,
                    "{what}: marked spent, the mint disagrees"
                );
            }
            State::PendingSpent => {
                assert_ne!(at_mint, State::Pending, "{what}: in an unclaimed token");
            }
            other => panic!("{what}: left {other:?} after recovery (mint: {at_mint:?})"),
        }
    }
    counted
}

/// After the restart: wallet recovery, then the tokens the burst did not redeem, then the
/// books. Each wallet must hold exactly what it was given (fees are 0), every counted proof
/// must be UNSPENT at the mint, and restoring each seed into an empty wallet must find exactly
/// the same proofs.
async fn recover_and_audit(p: &Parties, mint: &MintProcess, root: &Path) {
    for (i, w) in p.wallets.iter().enumerate() {
        let report = w.recover_incomplete_sagas().await.unwrap();
        assert_eq!(
            (report.failed, report.skipped),
            (0, 0),
            "wallet {i}: {report:?}"
        );
        assert!(open_sagas(w).await.is_empty(), "wallet {i}");
        assert_consistent(i, w).await;
    }

    // A token whose proofs the mint already marks spent was claimed by its receiver's
    // recovery and must not redeem again (asked from a wallet that never saw it: cdk's
    // wallet keeps a failed receive's saga open for a later recovery); any other token must
    // redeem in full now.
    for (n, t) in p.tokens.iter().enumerate() {
        if t.received.load(SeqCst) {
            continue;
        }
        let receiver = &p.wallets[t.receiver];
        let proofs = token_proofs(receiver, &t.token).await;
        let states = mint_states(receiver, proofs.ys().unwrap()).await;
        let claimed = states.values().all(|s| *s == State::Spent);
        let untouched = states.values().all(|s| *s == State::Unspent);
        assert!(
            claimed || untouched,
            "token {n} is partly spent: {states:?}"
        );
        if claimed {
            assert_double_spend_refused(mint, root, &t.token, &format!("thief{n}")).await;
        } else {
            assert_eq!(receive(receiver, &t.token).await, t.value, "token {n}");
        }
    }
    // The sender learns that every token was claimed.
    let report = p.wallets[0].recover_incomplete_sagas().await.unwrap();
    assert_eq!((report.failed, report.skipped), (0, 0), "{report:?}");
    assert!(p.wallets[0].get_pending_sends().await.unwrap().is_empty());

    let mut counted = HashSet::new();
    for (i, w) in p.wallets.iter().enumerate() {
        for y in assert_consistent(i, w).await {
            assert!(counted.insert(y), "proof {y} is counted by two wallets");
        }
        assert_eq!(balance(w).await, p.expected[i], "wallet {i}");
    }

    // The mint's own record (NUT-09/13) agrees with the wallets.
    for (i, seed) in p.seeds.iter().enumerate() {
        let fresh = wallet_with_seed(&mint.url, &root.join(format!("r{i}")), *seed).await;
        let restored = fresh.restore().await.unwrap();
        assert_eq!(
            u64::from(restored.unspent),
            p.expected[i],
            "wallet {i}: {restored:?}"
        );
        assert_eq!(restored.pending, Amount::ZERO, "wallet {i}: {restored:?}");
        let ys = |p: Proofs| p.ys().unwrap().into_iter().collect::<HashSet<_>>();
        assert_eq!(
            ys(fresh.get_unspent_proofs().await.unwrap()),
            ys(p.wallets[i].get_unspent_proofs().await.unwrap()),
            "wallet {i}: restore disagrees with the wallet"
        );
    }

    // And the mint still works.
    let w = &p.wallets[1];
    let held = w.get_unspent_proofs().await.unwrap();
    w.swap(None, SplitTarget::default(), held, None, false, false)
        .await
        .unwrap();
    assert_eq!(balance(w).await, p.expected[1]);
}

/// The mint dies with requests in flight, and so do the wallets: every wallet is left with
/// one unfinished swap or receive, which `recover_incomplete_sagas` must settle against the
/// restarted mint without losing or creating a sat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_burst_then_wallet_recovery_loses_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let mut p = parties(&mint, dir.path()).await;
    let url = mint.url.clone();

    let burst = Burst::start(&p);
    burst.until_done(BURST_OPS).await;
    let restart = burst.kill(mint);
    let done_at_kill = burst.done();
    // Every worker is now stuck on the dead mint (cdk retries swaps for the NUT-19 cache
    // window) or gave up; either way its wallet holds one unfinished saga.
    eventually("every wallet to have a request in flight", || async {
        for (i, w) in p.wallets.iter().enumerate() {
            if open_sagas(w).await.is_empty() && !burst.workers[i].is_finished() {
                return None;
            }
        }
        Some(())
    })
    .await;
    burst.abandon().await;
    for (i, seed) in p.seeds.iter().enumerate() {
        p.wallets[i] = wallet_with_seed(&url, &wallet_dir(dir.path(), i), *seed).await;
    }

    let mint = restart.start();
    assert_eq!(mint.url, url);
    let (open, committed) = interrupted(&p.wallets).await;
    println!(
        "kill after {done_at_kill} operations: {open} left unfinished, {committed} of them \
         committed by the mint, {} rolled back by the mint",
        mint_rollbacks(&mint)
    );
    assert_eq!(
        open, PARTIES,
        "each wallet had exactly one request in flight"
    );
    recover_and_audit(&p, &mint, dir.path()).await;
    mint.stop();
}

/// The mint dies mid-burst and comes straight back on the same port while the wallets keep
/// going: cdk's wallet replays the swaps in flight, and whatever fails is left to recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_and_restart_under_live_wallets_loses_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let p = parties(&mint, dir.path()).await;

    let burst = Burst::start(&p);
    burst.until_done(BURST_OPS).await;
    let restart = burst.kill(mint);
    let done_at_kill = burst.done();
    let mint = restart.start();
    let done_at_restart = burst.done();
    burst.until_done(done_at_restart + BURST_OPS).await;
    let done_after = burst.done() - done_at_restart;
    burst.join().await;

    let (open, committed) = interrupted(&p.wallets).await;
    println!(
        "kill after {done_at_kill} operations, {} more before the restart, {done_after} after; \
         {open} left unfinished, {committed} of them committed by the mint, {} rolled back \
         by the mint",
        done_at_restart - done_at_kill,
        mint_rollbacks(&mint)
    );
    assert!(done_after > 0, "no wallet got through after the restart");
    recover_and_audit(&p, &mint, dir.path()).await;
    mint.stop();
}
