//! The aperture-like L402 server (`l402-fixture`) behaves as a third-party L402 API: a 402 with
//! a macaroon and an invoice from its own node, 200 for the macaroon and the preimage of that
//! invoice (paid here by melting ecash at our mint on the simulated network), 401 otherwise.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cdk::nuts::PaymentMethod;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};

use crate::lightning_sim::{assert_preimage_of, SimWorld};
use crate::support::*;

/// The `L402 ...` fixture for `world`, on node `node`, with `args` added.
pub fn start_fixture(world: &SimWorld, node: &str, args: &[&str]) -> ServiceProcess {
    let mut all = vec![
        "--lnsim-url",
        world.lnsim.url(),
        "--node",
        node,
        "--listen",
        "127.0.0.1:0",
    ];
    all.extend_from_slice(args);
    ServiceProcess::start(
        &workspace_binary("l402-fixture"),
        &all,
        world.dir.path().join(format!("{node}.log")),
    )
}

/// `param="value"` from a `WWW-Authenticate` challenge.
fn param(challenge: &str, name: &str) -> Option<String> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let len = challenge[start..].find('"')?;
    Some(challenge[start..start + len].to_string())
}

pub async fn fixture_stats(fixture: &ServiceProcess) -> serde_json::Value {
    http()
        .get(format!("{}/_fixture/stats", fixture.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_serves_whoever_shows_the_preimage_of_its_invoice() {
    let world = SimWorld::start("").await;
    let fixture = start_fixture(&world, "aperture", &["--price-sat", "21"]);
    let w = world.funded_wallet("w", 100).await;
    let url = format!("{}/v1/data", fixture.url);

    let resp = http().get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 402);
    let challenge = resp.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("L402 version=\"0\""), "{challenge}");
    let token = param(&challenge, "token").unwrap();
    let invoice = param(&challenge, "invoice").unwrap();
    let parsed: cdk::Bolt11Invoice = invoice.parse().unwrap();
    assert_eq!(parsed.amount_milli_satoshis(), Some(21_000));
    let aperture = world.lnsim.node("aperture").await;
    assert_eq!(
        parsed.recover_payee_pub_key().to_string(),
        aperture.info().await.unwrap().pubkey,
        "the invoice is the fixture's own node's, not our mint's"
    );

    // Unpaid (a made-up preimage): 401.
    let r = http()
        .get(&url)
        .header(AUTHORIZATION, format!("L402 {token}:{}", "00".repeat(32)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let quote = w
        .melt_quote(PaymentMethod::BOLT11, &invoice, None, None)
        .await
        .unwrap();
    let melted = w
        .prepare_melt(&quote.id, HashMap::new())
        .await
        .unwrap()
        .confirm()
        .await
        .unwrap();
    let preimage = melted.payment_proof().unwrap().to_string();
    assert_preimage_of(&preimage, &hex_hash(&parsed));

    // The real preimage with a macaroon whose caveat was widened: 401.
    let mut forged = lnsim::macaroon::Macaroon::decode(&STANDARD.decode(&token).unwrap()).unwrap();
    forged.caveats[0] = "services=fixture:0,premium:0".into();
    let forged = STANDARD.encode(forged.encode());
    let r = http()
        .get(&url)
        .header(AUTHORIZATION, format!("L402 {forged}:{preimage}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    for scheme in ["L402", "LSAT"] {
        let r = http()
            .get(&url)
            .header(AUTHORIZATION, format!("{scheme} {token}:{preimage}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{scheme}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["paid"], true);
    }
    let stats = fixture_stats(&fixture).await;
    assert_eq!(stats["challenges"], 1);
    assert_eq!(stats["served"], 2);
    assert_eq!(stats["refused"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_can_send_the_older_lsat_challenge_too() {
    let world = SimWorld::start("").await;
    let fixture = start_fixture(&world, "aperture", &["--header-style", "both"]);
    let resp = http()
        .get(format!("{}/x", fixture.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 402);
    let challenges: Vec<String> = resp
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert!(challenges[0].starts_with("LSAT macaroon=\""));
    assert!(challenges[1].starts_with("L402 version=\"0\", token=\""));
    assert_eq!(
        param(&challenges[0], "invoice"),
        param(&challenges[1], "invoice")
    );
}

fn hex_hash(invoice: &cdk::Bolt11Invoice) -> String {
    invoice.payment_hash().to_string()
}
