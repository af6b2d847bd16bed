//! The agent pays L402 APIs on the simulated Lightning network: a third-party server whose
//! invoices come from its own node (the agent melts ecash at our mint, which pays through its
//! lnsim node and brings back the real preimage), with melts that are pending for a while, and
//! melts that fail and give the ecash back.

use cdk::Amount;
use lnsim::api::NodeSettings;

use crate::l402_fixture::{fixture_stats, start_fixture};
use crate::lightning_sim::SimWorld;
use crate::support::*;

/// An agent on the world's mint holding `amount` sat, handed over by a human as a token.
pub async fn funded_agent(world: &SimWorld, amount: u64) -> AgentCli {
    let human = world.funded_wallet("human", amount).await;
    let token = human
        .prepare_send(Amount::from(amount), Default::default())
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string();
    let agent = AgentCli {
        data_dir: world.dir.path().join("agent"),
        mint_url: world.mint.url.clone(),
    };
    agent.ok(&["init"]);
    agent.ok(&["receive", &token]);
    assert_eq!(agent.balance(), amount);
    agent
}

fn paid_rows(agent: &AgentCli) -> Vec<serde_json::Value> {
    agent
        .ledger()
        .into_iter()
        .filter(|e| e["outcome"] == "paid")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_pays_a_third_party_l402_api_and_reuses_the_credential() {
    let world = SimWorld::start("").await;
    // Our mint's node pays 1 sat of routing fee per payment.
    world
        .mint_node
        .put(&NodeSettings {
            fee_base_msat: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    let fixture = start_fixture(&world, "aperture", &["--price-sat", "21"]);
    let aperture = world.lnsim.node("aperture").await;
    let aperture_before = aperture.info().await.unwrap().balance_msat;
    let agent = funded_agent(&world, 200).await;

    let body = agent.ok(&["fetch", &format!("{}/v1/data", fixture.url)]);
    assert!(body.contains("\"paid\":true"), "{body}");
    // The fixture's own node got the price: the agent paid over Lightning, not in ecash.
    assert_eq!(
        aperture.info().await.unwrap().balance_msat,
        aperture_before + 21_000
    );
    let rows = paid_rows(&agent);
    assert_eq!(rows.len(), 1, "{:?}", agent.ledger());
    assert_eq!(rows[0]["scheme"], "l402");
    assert_eq!(rows[0]["amount"], 21);
    assert_eq!(rows[0]["fee"], 1, "the routing fee the melt actually paid");
    assert_eq!(agent.balance(), 200 - 22);

    // Again: the cached credential (macaroon and preimage) is reused; nothing is paid.
    let body = agent.ok(&["fetch", &format!("{}/v1/data", fixture.url)]);
    assert!(body.contains("\"paid\":true"), "{body}");
    assert_eq!(agent.balance(), 200 - 22);
    assert_eq!(paid_rows(&agent).len(), 1, "{:?}", agent.ledger());
    let stats = fixture_stats(&fixture).await;
    assert_eq!(stats["challenges"], 1, "{stats}");
    assert_eq!(stats["served"], 2, "{stats}");
    assert_eq!(
        aperture.info().await.unwrap().balance_msat,
        aperture_before + 21_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_l402_melt_is_waited_for_then_the_request_goes_through() {
    let world = SimWorld::start("").await;
    // Every payment of the mint's node stays pending for 1.5 s before it settles.
    world
        .mint_node
        .put(&NodeSettings {
            pay_delay_ms: Some(1500),
            ..Default::default()
        })
        .await
        .unwrap();
    let fixture = start_fixture(&world, "aperture", &["--price-sat", "10"]);
    let agent = funded_agent(&world, 100).await;

    let body = agent.ok(&["fetch", &format!("{}/slow", fixture.url)]);
    assert!(body.contains("\"paid\":true"), "{body}");
    let rows = paid_rows(&agent);
    assert_eq!(rows.len(), 1, "{:?}", agent.ledger());
    assert_eq!(rows[0]["scheme"], "l402");
    assert_eq!(agent.balance(), 90);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_l402_melt_gives_the_ecash_back_and_the_ledger_says_failed() {
    let world = SimWorld::start("").await;
    // The mint's node finds no route for anything.
    world
        .mint_node
        .put(&NodeSettings {
            fail_payments: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let fixture = start_fixture(&world, "aperture", &["--price-sat", "10"]);
    let agent = funded_agent(&world, 100).await;

    let run = agent.run(&["fetch", &format!("{}/v1/data", fixture.url)]);
    assert_ne!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(agent.balance(), 100, "nothing lost");
    let ledger = agent.ledger();
    assert!(
        ledger
            .iter()
            .any(|e| e["scheme"] == "l402" && e["outcome"] == "failed"),
        "{ledger:?}"
    );
    assert!(ledger.iter().all(|e| e["outcome"] != "paid"), "{ledger:?}");
    assert_eq!(fixture_stats(&fixture).await["served"], 0);

    // Once the route works again, the same ecash pays.
    world
        .mint_node
        .put(&NodeSettings {
            fail_payments: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    agent.ok(&["fetch", &format!("{}/v1/data", fixture.url)]);
    assert_eq!(agent.balance(), 90);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_pays_an_aperture_that_sends_the_older_lsat_challenge() {
    let world = SimWorld::start("").await;
    let fixture = start_fixture(
        &world,
        "aperture",
        &["--price-sat", "8", "--header-style", "lsat"],
    );
    let agent = funded_agent(&world, 50).await;
    let body = agent.ok(&["fetch", &format!("{}/old", fixture.url)]);
    assert!(body.contains("\"paid\":true"), "{body}");
    let rows = paid_rows(&agent);
    assert_eq!(rows.len(), 1, "{:?}", agent.ledger());
    assert_eq!(rows[0]["scheme"], "l402");
    assert_eq!(rows[0]["amount"], 8);
    assert_eq!(agent.balance(), 42);
    assert_eq!(fixture_stats(&fixture).await["served"], 1);
}
