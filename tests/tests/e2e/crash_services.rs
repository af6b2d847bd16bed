//! Crashes of the other two roles: the merchant SIGKILLed in the middle of redemptions, and the
//! agent CLI SIGKILLed in the middle of a payment. After each, the restarted process resolves
//! what was in flight: no token is served without the merchant holding its value, no token is
//! lost, and the agent's balance plus what it spent is what it was funded with.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdk::nuts::nut00::ProofsMethods;
use cdk::nuts::State;
use cdk::wallet::Wallet;
use cdk::Amount;

use crate::crash_loop::rounds;
use crate::lifecycle::{mint_states, token_proofs};
use crate::support::*;

const PRICE: u64 = 5;
/// Paid requests in flight when the merchant dies.
const TOKENS: usize = 10;

fn paid_api(mint: &MintProcess, data_dir: &Path) -> ServiceProcess {
    ServiceProcess::start(
        &workspace_example("paid_api"),
        &[
            "--mint-url",
            &mint.url,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        data_dir.with_extension("log"),
    )
}

/// `GET /weather` with `token` as the credential: the status, or `None` when the connection
/// broke (the merchant died).
async fn pay(url: &str, token: &str) -> Option<(u16, serde_json::Value)> {
    let r = http()
        .get(format!("{url}/weather"))
        .header("X-Cashu", token)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(serde_json::Value::Null);
    Some((status, body))
}

async fn exact_token(human: &Wallet, amount: u64) -> String {
    human
        .prepare_send(Amount::from(amount), Default::default())
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string()
}

/// [`TOKENS`] paid requests at once, and the merchant killed while they run, at a random
/// point. On restart its recovery settles the redemptions a crash interrupted; then every token
/// is presented again: one not served before is served now (or refused as a replay if the
/// merchant redeemed it but died before answering, the one case where an answer is lost). In
/// the end every token is spent at the mint, the merchant holds all of their value, and a third
/// presentation of any token is refused: nothing was served without payment and nothing is
/// lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_merchant_mid_redemption_neither_serves_free_nor_loses_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let human = wallet(&mint.url, &dir.path().join("human")).await;
    let merchant_rounds = rounds().div_ceil(2).max(2);
    fund(&human, PRICE * (TOKENS * merchant_rounds + 1) as u64).await;
    let shop_dir = dir.path().join("shop");
    // How long one paid request takes, to aim the kills inside the redemptions.
    let shop = paid_api(&mint, &shop_dir);
    let started = Instant::now();
    let (status, body) = pay(&shop.url, &exact_token(&human, PRICE).await)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let span = started.elapsed().as_millis().max(10) as u64;
    shop.kill();
    let mut redeemed_total = PRICE;
    for round in 0..merchant_rounds {
        let mut tokens = Vec::new();
        for _ in 0..TOKENS {
            tokens.push(exact_token(&human, PRICE).await);
        }
        let shop = paid_api(&mint, &shop_dir);
        let url = shop.url.clone();
        let answered = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = tokens
            .iter()
            .map(|t| {
                let (url, t, answered) = (url.clone(), t.clone(), answered.clone());
                tokio::spawn(async move {
                    let answer = pay(&url, &t).await;
                    answered.fetch_add(1, SeqCst);
                    answer
                })
            })
            .collect();
        // A random point while the redemptions run: after the first answer, within the time
        // one redemption takes.
        eventually("the first paid request to be answered", || async {
            (answered.load(SeqCst) > 0).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % span)).await;
        shop.kill();
        let first: Vec<Option<(u16, serde_json::Value)>> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();

        let shop = paid_api(&mint, &shop_dir);
        let (mut served_before, mut served_now, mut answer_lost) = (0, 0, 0);
        for (n, t) in tokens.iter().enumerate() {
            let served = matches!(first[n], Some((200, _)));
            if let Some((status, body)) = &first[n] {
                assert!(
                    *status == 200 || *status == 503,
                    "round {round}, token {n}: {status} {body}"
                );
            }
            // 503: a redemption still in doubt (the mint slow to answer); a client retries.
            let (status, body) = eventually("an answer other than 503", || async {
                let answer = pay(&shop.url, t)
                    .await
                    .expect("the restarted merchant answers");
                (answer.0 != 503).then_some(answer)
            })
            .await;
            if served {
                served_before += 1;
                assert_eq!(
                    (status, body["code"].as_u64()),
                    (400, Some(40207)),
                    "{body}"
                );
            } else if status == 200 {
                served_now += 1;
            } else {
                assert_eq!(
                    (status, body["code"].as_u64()),
                    (400, Some(40207)),
                    "{body}"
                );
                answer_lost += 1;
            }
            let (status, body) = pay(&shop.url, t).await.unwrap();
            assert_eq!(
                (status, body["code"].as_u64()),
                (400, Some(40207)),
                "round {round}, token {n}: a third presentation: {body}"
            );
            let proofs = token_proofs(&human, t).await;
            let states = mint_states(&human, proofs.ys().unwrap()).await;
            assert!(
                states.values().all(|s| *s == State::Spent),
                "round {round}, token {n}: {states:?}"
            );
        }
        shop.kill();
        redeemed_total += PRICE * TOKENS as u64;
        assert_eq!(
            merchant_balance(&shop_dir),
            redeemed_total,
            "round {round}: the merchant holds every token it redeemed"
        );
        println!(
            "round {round}: {served_before} served before the kill, {served_now} after the \
             restart, {answer_lost} redeemed with the answer lost"
        );
    }
}

/// The agent CLI paying for a request is SIGKILLed at a random point, several times. Each next
/// run first settles the payment left in its outbox: completed (the merchant has it) or taken
/// back. Always: balance + spent = funded, and the merchant holds exactly what the agent's
/// ledger says it spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_agent_mid_payment_completes_or_returns_it_and_the_merchant_keeps_it() {
    const FUNDED: u64 = 500;
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let human = wallet(&mint.url, &dir.path().join("human")).await;
    fund(&human, FUNDED).await;
    let token = exact_token(&human, FUNDED).await;
    let agent = AgentCli {
        data_dir: dir.path().join("agent"),
        mint_url: mint.url.clone(),
    };
    agent.ok(&["init"]);
    agent.ok(&["receive", &token]);
    let shop_dir = dir.path().join("shop");
    let shop = paid_api(&mint, &shop_dir);
    let weather = format!("{}/weather", shop.url);

    // How long one payment takes, to aim the kills inside it.
    let started = Instant::now();
    agent.ok(&["fetch", &weather]);
    let span = started.elapsed().as_millis().max(20) as u64;

    let kills = rounds() + 1;
    for round in 0..kills {
        let mut child = Command::new(workspace_binary("agent-wallet"))
            .arg("--data-dir")
            .arg(&agent.data_dir)
            .arg("--mint")
            .arg(&agent.mint_url)
            .args(["fetch", &weather])
            .env_remove("AGENT_WALLET_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rand::random::<u64>() % span));
        let _ = child.kill();
        let status = child.wait().unwrap();
        // The next run settles the outbox before anything else.
        let balance = agent.balance();
        let ledger = agent.ledger();
        let spent = spent(&ledger);
        assert!(
            ledger.iter().all(|e| e["outcome"] != "pending"),
            "round {round}: a payment was left pending: {ledger:?}"
        );
        assert_eq!(
            balance + spent,
            FUNDED,
            "round {round} ({status}): balance {balance} + spent {spent}; ledger {ledger:?}"
        );
    }
    // The merchant's own recovery settles whatever it still had in doubt; then it holds
    // exactly what the agent's ledger says left the wallet. (Most runs it has nothing to
    // settle: a hung-up client no longer cancels a redemption, which before this left every
    // killed payment in doubt here.)
    let ledger = agent.ledger();
    shop.kill();
    let summary = merchant_cli(&shop_dir, &["recover"]);
    println!("merchant recovery after the kills: {summary}");
    assert_eq!(summary["still_in_doubt"], 0, "{summary}");
    assert_eq!(
        merchant_balance(&shop_dir),
        received(&ledger),
        "the merchant holds what the agent's ledger says it spent: {ledger:?}"
    );
    assert_eq!(agent.balance() + spent(&ledger), FUNDED);
}

/// What the payments cost the wallet (amounts that left it for good, plus fees).
fn spent(ledger: &[serde_json::Value]) -> u64 {
    ledger.iter().map(|e| e["cost"].as_u64().unwrap()).sum()
}

/// What reached the merchant: the amounts that left the wallet for good.
fn received(ledger: &[serde_json::Value]) -> u64 {
    ledger
        .iter()
        .filter(|e| e["counted"] == true)
        .map(|e| e["amount"].as_u64().unwrap())
        .sum()
}
