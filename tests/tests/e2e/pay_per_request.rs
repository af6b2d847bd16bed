//! Agents pay per request, end to end with real processes on loopback: the mint (fake
//! Lightning), the example merchant behind the paywall, the `agent-wallet` CLI, the `merchant`
//! CLI and the `paywall-gateway`. A human funds the agent with a token string; the agent pays for
//! what it fetches; the merchant settles to Lightning; the books balance to the sat.

use std::path::Path;

use cdk::wallet::Wallet;
use cdk::Amount;

use crate::support::*;

const WEATHER: u64 = 5;
const TRANSLATE: u64 = 20;

/// A human's cdk wallet mints `amount` and hands it over as one `cashuB` string.
async fn human_token(mint: &MintProcess, dir: &Path, amount: u64) -> (Wallet, String) {
    let human = wallet(&mint.url, &dir.join("human")).await;
    fund(&human, amount).await;
    let token = human
        .prepare_send(Amount::from(amount), Default::default())
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string();
    assert!(token.starts_with("cashuB"));
    (human, token)
}

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

fn agent(mint: &MintProcess, dir: &Path) -> AgentCli {
    let cli = AgentCli {
        data_dir: dir.join("agent"),
        mint_url: mint.url.clone(),
    };
    cli.ok(&["init"]);
    cli
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_pays_ten_requests_and_the_merchant_settles_with_exact_books() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let (_human, token) = human_token(&mint, dir.path(), 1000).await;
    let agent = agent(&mint, dir.path());
    agent.ok(&["receive", &token]);
    assert_eq!(agent.balance(), 1000);

    let shop_dir = dir.path().join("shop");
    let shop = paid_api(&mint, &shop_dir);
    for i in 0..8 {
        let body = agent.ok(&["fetch", &format!("{}/weather?city=c{i}", shop.url)]);
        assert!(
            body.contains("forecast") || body.contains("weather"),
            "{body}"
        );
    }
    for _ in 0..2 {
        let body = agent.ok(&[
            "fetch",
            "-X",
            "POST",
            "-d",
            "{\"text\":\"hello\"}",
            &format!("{}/translate", shop.url),
        ]);
        assert!(!body.is_empty());
    }
    let spent = 8 * WEATHER + 2 * TRANSLATE;
    assert_eq!(
        agent.balance(),
        1000 - spent,
        "the agent paid exactly the prices (no input fee)"
    );
    let ledger = agent.ledger();
    assert_eq!(ledger.len(), 10, "{ledger:?}");
    assert!(
        ledger
            .iter()
            .all(|e| e["outcome"] == "paid" && e["scheme"] == "cashu"),
        "{ledger:?}"
    );
    let ledger_total: u64 = ledger
        .iter()
        .map(|e| e["amount"].as_u64().unwrap() + e["fee"].as_u64().unwrap())
        .sum();
    assert_eq!(ledger_total, spent);

    // The merchant received exactly what the agent spent, then settles most of it to Lightning.
    shop.kill();
    assert_eq!(merchant_balance(&shop_dir), spent);
    let invoice = fake_invoice(70);
    let settled = merchant_cli(&shop_dir, &["settle", "--invoice", &invoice]);
    assert_eq!(settled["amount"], 70, "{settled}");
    let fee = settled["fee"].as_u64().unwrap();
    assert_eq!(
        fee, 1,
        "the fake backend charges 1 sat; the rest of the reserve came back as change"
    );
    let left = merchant_balance(&shop_dir);
    assert_eq!(
        spent,
        70 + fee + left,
        "agent spent = settled + fee + what the merchant still holds"
    );
    let list = merchant_cli(&shop_dir, &["settlements"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["outcome"], "paid", "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_the_policy_refuses_spends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let (_human, token) = human_token(&mint, dir.path(), 100).await;
    let agent = agent(&mint, dir.path());
    agent.ok(&["receive", &token]);
    let shop_dir = dir.path().join("shop");
    let shop = paid_api(&mint, &shop_dir);

    agent.ok(&["policy", "set", "max_per_request", "4"]);
    let refused = agent.run(&["fetch", &format!("{}/weather", shop.url)]);
    assert_eq!(
        refused.code, 3,
        "policy refusal exit code; stderr: {}",
        refused.stderr
    );
    assert!(
        refused.stdout.contains("40200"),
        "the 402 is surfaced: {}",
        refused.stdout
    );
    assert_eq!(agent.balance(), 100);
    assert!(agent.ledger().iter().all(|e| e["outcome"] != "paid"));

    agent.ok(&["policy", "set", "max_per_request", "5"]);
    agent.ok(&["fetch", &format!("{}/weather", shop.url)]);
    assert_eq!(agent.balance(), 95);
    shop.kill();
    assert_eq!(merchant_balance(&shop_dir), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_token_is_refused_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let shop_dir = dir.path().join("shop");
    let shop = paid_api(&mint, &shop_dir);
    let payer = wallet(&mint.url, &dir.path().join("payer")).await;
    fund(&payer, 20).await;
    let token = payer
        .prepare_send(Amount::from(WEATHER), Default::default())
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string();
    let get = || {
        http()
            .get(format!("{}/weather", shop.url))
            .header("X-Cashu", token.clone())
            .send()
    };
    let first = get().await.unwrap();
    assert_eq!(first.status(), 200);
    let second = get().await.unwrap();
    assert_eq!(second.status(), 400);
    assert!(
        second.headers().get("x-cashu").is_some(),
        "a fresh challenge comes with the refusal"
    );
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["code"], 40207, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_mint_down_nothing_is_lost_and_the_retry_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let (_human, token) = human_token(&mint, dir.path(), 200).await;
    let agent = agent(&mint, dir.path());
    agent.ok(&["receive", &token]);
    let shop_dir = dir.path().join("shop");
    let shop = paid_api(&mint, &shop_dir);
    agent.ok(&["fetch", &format!("{}/weather", shop.url)]);
    assert_eq!(agent.balance(), 200 - WEATHER);

    let stopped = mint.stop();
    let attempt = agent.run(&["fetch", "--timeout", "20", &format!("{}/weather", shop.url)]);
    assert_ne!(
        attempt.code, 0,
        "no service while the mint is down: {}",
        attempt.stderr
    );

    let mint = stopped.start();
    // The next command first reclaims whatever the failed attempt left in flight, then pays.
    agent.ok(&["fetch", &format!("{}/weather", shop.url)]);
    let agent_left = agent.balance();
    shop.kill();
    let shop_got = merchant_balance(&shop_dir);
    assert_eq!(
        agent_left + shop_got,
        200,
        "no sat lost or created (no fees configured)"
    );
    let paid: Vec<_> = agent
        .ledger()
        .into_iter()
        .filter(|e| e["outcome"] == "paid")
        .collect();
    assert_eq!(
        shop_got,
        WEATHER * paid.len() as u64,
        "the agent paid only for what was served"
    );
    assert_eq!(paid.len(), 2, "one before the outage, one after");
    drop(mint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_puts_a_price_on_a_plain_http_server() {
    use axum::routing::get;
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let (_human, token) = human_token(&mint, dir.path(), 100).await;
    let agent = agent(&mint, dir.path());
    agent.ok(&["receive", &token]);

    // A plain upstream that knows nothing of payments.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/data", get(|| async { "the upstream's data" }))
        .route("/free", get(|| async { "free data" }));
    tokio::spawn(async move { axum::serve(upstream, app).await });

    let gw_dir = dir.path().join("gateway");
    std::fs::create_dir_all(&gw_dir).unwrap();
    let config = gw_dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nupstream = \"http://{upstream_addr}\"\ndata_dir = \"{}\"\nmints = [\"{}\"]\nunpriced = \"free\"\n\n[[price]]\nmethod = \"GET\"\npath_prefix = \"/data\"\namount = 7\nunit = \"sat\"\n",
            gw_dir.join("data").display(),
            mint.url
        ),
    )
    .unwrap();
    let gateway = ServiceProcess::start(
        &workspace_binary("paywall-gateway"),
        &["--config", config.to_str().unwrap()],
        gw_dir.join("gateway.log"),
    );
    let unpaid = http()
        .get(format!("{}/data", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unpaid.status(), 402);
    assert_eq!(
        agent.ok(&["fetch", &format!("{}/free", gateway.url)]),
        "free data"
    );
    assert_eq!(agent.balance(), 100, "free paths cost nothing");
    assert_eq!(
        agent.ok(&["fetch", &format!("{}/data", gateway.url)]),
        "the upstream's data"
    );
    assert_eq!(agent.balance(), 93);
    gateway.kill();
    assert_eq!(merchant_balance(&gw_dir.join("data")), 7);
}
