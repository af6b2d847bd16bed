//! Our merchant's L402 on the simulated Lightning network, real processes throughout: the
//! `paywall-gateway` offers L402 through mint quotes at our mint. Any L402 client with a
//! Lightning node pays it (a real preimage); an agent whose ecash lives at another mint pays it
//! over Lightning; an agent at the same mint pays it by an internal settlement (no preimage);
//! and one 402 offering NUT-24, L402 and x402-cashu is paid by the agent's scheme rule.

use std::path::Path;

use cdk::Amount;
use lnsim::api::PayInvoice;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};

use crate::lightning_sim::{assert_preimage_of, SimWorld};
use crate::support::*;

const PRICE: u64 = 13;

/// A plain upstream behind a `paywall-gateway` on `mint_url` pricing `GET /data` at
/// [`PRICE`] sat, with the schemes switched as given.
async fn gateway(
    dir: &Path,
    mint_url: &str,
    cashu: bool,
    x402: bool,
    l402: bool,
) -> (ServiceProcess, std::path::PathBuf) {
    use axum::routing::get;
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let app = axum::Router::new().route("/api/data", get(|| async { "the upstream's data" }));
    tokio::spawn(async move { axum::serve(upstream, app).await });

    let gw_dir = dir.join("gateway");
    std::fs::create_dir_all(&gw_dir).unwrap();
    let data = gw_dir.join("data");
    let config = gw_dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nupstream = \"http://{upstream_addr}\"\n\
             data_dir = \"{}\"\nmints = [\"{mint_url}\"]\nunpriced = \"refuse\"\n\
             cashu = {cashu}\nx402 = {x402}\nl402 = {l402}\n\n\
             [[price]]\nmethod = \"GET\"\npath_prefix = \"/api/data\"\namount = {PRICE}\nunit = \"sat\"\n",
            data.display(),
        ),
    )
    .unwrap();
    let gw = ServiceProcess::start(
        &workspace_binary("paywall-gateway"),
        &["--config", config.to_str().unwrap()],
        gw_dir.join("gateway.log"),
    );
    (gw, data)
}

/// `param="value"` from a challenge.
fn param(challenge: &str, name: &str) -> Option<String> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let len = challenge[start..].find('"')?;
    Some(challenge[start..start + len].to_string())
}

/// An agent on `mint_url` holding `amount` sat from a wallet of that mint.
async fn agent_at(world: &SimWorld, mint_url: &str, name: &str, amount: u64) -> AgentCli {
    let human = wallet(mint_url, &world.dir.path().join(format!("{name}-human"))).await;
    crate::lightning_sim::mint_paid_by(&human, &world.human, amount).await;
    let token = human
        .prepare_send(Amount::from(amount), Default::default())
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string();
    let agent = AgentCli {
        data_dir: world.dir.path().join(name),
        mint_url: mint_url.to_string(),
    };
    agent.ok(&["init"]);
    agent.ok(&["receive", &token]);
    agent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_l402_client_with_a_lightning_node_pays_our_merchant() {
    let world = SimWorld::start("").await;
    let (gw, data) = gateway(world.dir.path(), &world.mint.url, false, false, true).await;
    let url = format!("{}/api/data", gw.url);

    let resp = http().get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 402);
    let challenge = resp.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_string();
    let token = param(&challenge, "token").unwrap();
    let invoice = param(&challenge, "invoice").unwrap();
    // The invoice is our mint's, issued by its node: the merchant has no node of its own.
    let parsed: cdk::Bolt11Invoice = invoice.parse().unwrap();
    assert_eq!(parsed.amount_milli_satoshis(), Some(PRICE * 1000));
    assert_eq!(
        parsed.recover_payee_pub_key().to_string(),
        world.mint_node.info().await.unwrap().pubkey
    );

    // An lnget-like client: pays from its own node and keeps the preimage.
    let paid = world
        .human
        .pay(&PayInvoice {
            bolt11: invoice.clone(),
            max_fee_msat: None,
        })
        .await
        .unwrap();
    let preimage = paid.preimage.unwrap();
    assert_preimage_of(&preimage, &parsed.payment_hash().to_string());

    let ok = http()
        .get(&url)
        .header(AUTHORIZATION, format!("L402 {token}:{preimage}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.text().await.unwrap(), "the upstream's data");
    // Reusable within its validity, and paid only once.
    let again = http()
        .get(&url)
        .header(AUTHORIZATION, format!("L402 {token}:{preimage}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 200);
    // A wrong preimage is refused.
    let wrong = http()
        .get(&url)
        .header(AUTHORIZATION, format!("L402 {token}:{}", "11".repeat(32)))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    gw.kill();
    // The merchant claimed the paid quote as ecash.
    assert_eq!(merchant_balance(&data), PRICE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_at_another_mint_pays_our_merchants_l402_over_lightning() {
    let world = SimWorld::start("").await;
    // A second mint on its own node: the agent's home.
    let other = MintProcess::start_lnsim(
        &world.dir.path().join("other"),
        "",
        world.lnsim.url(),
        "other-mint",
    );
    let (gw, data) = gateway(world.dir.path(), &world.mint.url, false, false, true).await;
    let agent = agent_at(&world, &other.url, "agent", 100).await;

    let body = agent.ok(&["fetch", &format!("{}/api/data", gw.url)]);
    assert_eq!(body, "the upstream's data");
    let paid: Vec<_> = agent
        .ledger()
        .into_iter()
        .filter(|e| e["outcome"] == "paid")
        .collect();
    assert_eq!(paid.len(), 1, "{paid:?}");
    assert_eq!(paid[0]["scheme"], "l402");
    assert_eq!(paid[0]["amount"], PRICE);
    let fee = paid[0]["fee"].as_u64().unwrap();
    assert_eq!(agent.balance(), 100 - PRICE - fee);
    gw.kill();
    assert_eq!(merchant_balance(&data), PRICE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_402_offering_three_schemes_is_paid_by_the_agents_rule() {
    let world = SimWorld::start("").await;
    let (gw, data) = gateway(world.dir.path(), &world.mint.url, true, true, true).await;
    let url = format!("{}/api/data", gw.url);

    // One answer, three offers.
    let resp = http().get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 402);
    let h = resp.headers();
    assert!(h["x-cashu"].to_str().unwrap().starts_with("creq"), "{h:?}");
    assert!(
        h[WWW_AUTHENTICATE].to_str().unwrap().starts_with("L402 "),
        "{h:?}"
    );
    assert!(h.contains_key("payment-required"), "{h:?}");

    // The default rule: Cashu first (no Lightning fee, no round trip to the mint).
    let agent = agent_at(&world, &world.mint.url, "agent", 100).await;
    assert_eq!(agent.ok(&["fetch", &url]), "the upstream's data");
    // Then each scheme by preference; the same mint settles the L402 invoice internally.
    // (L402 last: its credential is cached and would be reused for the next request.)
    for scheme in ["x402-cashu", "l402"] {
        let policy = format!("schemes={scheme}");
        assert_eq!(
            agent.ok(&["--policy", &policy, "fetch", &url]),
            "the upstream's data",
            "{scheme}"
        );
    }
    let paid: Vec<String> = agent
        .ledger()
        .into_iter()
        .filter(|e| e["outcome"] == "paid")
        .map(|e| e["scheme"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paid, ["cashu", "x402-cashu", "l402"]);
    let spent: u64 = agent
        .ledger()
        .iter()
        .filter(|e| e["outcome"] == "paid")
        .map(|e| e["amount"].as_u64().unwrap() + e["fee"].as_u64().unwrap())
        .sum();
    assert_eq!(agent.balance(), 100 - spent);
    gw.kill();
    assert_eq!(merchant_balance(&data), 3 * PRICE);
}
