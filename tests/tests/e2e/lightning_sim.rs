//! The real mint on the simulated Lightning network (`lnsim`, test support only): invoices that
//! another node pays, melts that pay another node's invoices and bring back its preimage, a melt
//! that stays pending and then settles, and melts that fail and give the ecash back.

use std::collections::HashMap;
use std::time::Instant;

use cdk::amount::SplitTarget;
use cdk::nuts::{MeltQuoteState, MintQuoteState, PaymentMethod};
use cdk::types::FinalizedMelt;
use cdk::wallet::Wallet;
use cdk::Amount;
use lnsim::api::{CreateInvoice, InvoiceBehaviour, InvoiceState, NodeSettings, PayInvoice};
use lnsim::client::NodeClient;

use crate::support::*;

/// One lnsim network, the mint on its node `mint`, a `human` node that pays the mint's
/// invoices and a `shop` node whose invoices the mint pays.
pub struct SimWorld {
    pub dir: tempfile::TempDir,
    pub lnsim: LnsimProcess,
    pub mint: MintProcess,
    pub mint_node: NodeClient,
    pub human: NodeClient,
    pub shop: NodeClient,
}

impl SimWorld {
    pub async fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let lnsim = LnsimProcess::start(&dir.path().join("lnsim"));
        let mint = MintProcess::start_lnsim(dir.path(), config, lnsim.url(), "mint");
        let mint_node = lnsim.node("mint").await;
        let human = lnsim.node("human").await;
        let shop = lnsim.node("shop").await;
        Self {
            dir,
            lnsim,
            mint,
            mint_node,
            human,
            shop,
        }
    }

    /// A wallet on the mint holding `amount` sat, minted from an invoice the human paid.
    pub async fn funded_wallet(&self, name: &str, amount: u64) -> Wallet {
        let w = wallet(&self.mint.url, &self.dir.path().join(name)).await;
        let got = mint_paid_by(&w, &self.human, amount).await;
        assert_eq!(u64::from(got), amount);
        w
    }

    /// A shop invoice of `sat`, behaving as `behaviour` when paid.
    pub async fn shop_invoice(&self, sat: u64, behaviour: InvoiceBehaviour) -> (String, String) {
        let inv = self
            .shop
            .create_invoice(&CreateInvoice {
                amount_msat: sat * 1000,
                description: "e2e".into(),
                expiry_secs: None,
                behaviour,
            })
            .await
            .unwrap();
        (inv.bolt11, inv.payment_hash)
    }
}

/// Mints `amount` into `w` through a bolt11 quote that node `payer` pays.
pub async fn mint_paid_by(w: &Wallet, payer: &NodeClient, amount: u64) -> Amount {
    let quote = w
        .mint_quote(
            PaymentMethod::BOLT11,
            Some(Amount::from(amount)),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        w.check_mint_quote_status(&quote.id).await.unwrap().state,
        MintQuoteState::Unpaid,
        "nobody paid yet"
    );
    payer
        .pay(&PayInvoice {
            bolt11: quote.request.clone(),
            max_fee_msat: None,
        })
        .await
        .unwrap();
    eventually("the mint quote to be paid", || async {
        let q = w.check_mint_quote_status(&quote.id).await.unwrap();
        (q.state == MintQuoteState::Paid).then_some(())
    })
    .await;
    let proofs = w
        .mint(&quote.id, SplitTarget::default(), None)
        .await
        .unwrap();
    Amount::try_sum(proofs.iter().map(|p| p.amount)).unwrap()
}

async fn melt(w: &Wallet, invoice: &str) -> (String, Result<FinalizedMelt, cdk::Error>) {
    let quote = w
        .melt_quote(PaymentMethod::BOLT11, invoice, None, None)
        .await
        .unwrap();
    let id = quote.id.clone();
    let result = match w.prepare_melt(&quote.id, HashMap::new()).await {
        Ok(prepared) => prepared.confirm().await,
        Err(e) => Err(e),
    };
    (id, result)
}

async fn balance(w: &Wallet) -> u64 {
    u64::from(w.total_balance().await.unwrap())
}

pub fn assert_preimage_of(preimage_hex: &str, payment_hash_hex: &str) {
    assert_eq!(
        lnsim::payment_hash_of(preimage_hex).as_deref(),
        Some(payment_hash_hex),
        "the preimage must hash to the invoice's payment hash"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mint_issues_for_an_invoice_another_node_paid_and_names_its_backend() {
    let world = SimWorld::start("").await;
    let info: serde_json::Value = http()
        .get(format!("{}/v1/info", world.mint.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        info["name"]
            .as_str()
            .unwrap()
            .contains("SIMULATED LIGHTNING"),
        "{info}"
    );
    assert!(!info["name"].as_str().unwrap().contains("FAKE"), "{info}");
    assert!(info["motd"].as_str().unwrap().contains("lnsim"), "{info}");
    let ready: serde_json::Value = http()
        .get(format!("{}/ready", world.mint.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["lightning_backend"], "lnsim");
    let metrics = http()
        .get(format!("{}/metrics", world.mint.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("allowance_mint_lightning_backend_info{backend=\"lnsim\"} 1"));

    let before = world.mint_node.info().await.unwrap().balance_msat;
    let w = world.funded_wallet("w", 100).await;
    assert_eq!(balance(&w).await, 100);
    // The human's sats went to the mint's node.
    assert_eq!(
        world.mint_node.info().await.unwrap().balance_msat,
        before + 100_000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_melt_pays_another_nodes_invoice_and_returns_its_real_preimage() {
    let world = SimWorld::start("").await;
    // A routing fee of 1 sat on the mint node's payments; the quote reserves 2 (the minimum).
    world
        .mint_node
        .put(&NodeSettings {
            fee_base_msat: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    let w = world.funded_wallet("w", 200).await;
    let shop_before = world.shop.info().await.unwrap().balance_msat;
    let (invoice, hash) = world.shop_invoice(50, Default::default()).await;

    let (_, melted) = melt(&w, &invoice).await;
    let melted = melted.unwrap();
    assert_eq!(melted.state(), MeltQuoteState::Paid);
    assert_eq!(u64::from(melted.amount()), 50);
    assert_eq!(
        u64::from(melted.fee_paid()),
        1,
        "the routing fee actually paid"
    );
    assert_preimage_of(melted.payment_proof().unwrap(), &hash);
    // The unused reserve came back as change.
    assert_eq!(balance(&w).await, 200 - 51);
    assert_eq!(
        world.shop.info().await.unwrap().balance_msat,
        shop_before + 50_000
    );
    assert_eq!(
        world.shop.invoice(&hash).await.unwrap().state,
        InvoiceState::Paid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_melt_settles_later_with_the_preimage() {
    let world = SimWorld::start("").await;
    let w = world.funded_wallet("w", 100).await;
    let (invoice, hash) = world
        .shop_invoice(
            30,
            InvoiceBehaviour {
                settle_delay_ms: Some(1500),
                ..Default::default()
            },
        )
        .await;
    let quote = w
        .melt_quote(PaymentMethod::BOLT11, &invoice, None, None)
        .await
        .unwrap();
    let paying = {
        let w = w.clone();
        let id = quote.id.clone();
        tokio::spawn(async move {
            let prepared = w.prepare_melt(&id, HashMap::new()).await?;
            prepared.confirm().await
        })
    };
    // While the payment is in flight, the mint says so.
    let url = format!("{}/v1/melt/quote/bolt11/{}", world.mint.url, quote.id);
    eventually("the melt quote to be PENDING", || async {
        let q: serde_json::Value = http().get(&url).send().await.ok()?.json().await.ok()?;
        (q["state"] == "PENDING").then_some(())
    })
    .await;
    assert_eq!(
        world.shop.invoice(&hash).await.unwrap().state,
        InvoiceState::Open
    );

    let melted = tokio::time::timeout(DEADLINE, paying)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(melted.state(), MeltQuoteState::Paid);
    assert_preimage_of(melted.payment_proof().unwrap(), &hash);
    assert_eq!(balance(&w).await, 70);
    let q: serde_json::Value = http().get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(q["state"], "PAID");
    assert_preimage_of(q["payment_preimage"].as_str().unwrap(), &hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_melt_gives_the_ecash_back_and_nothing_is_lost() {
    let world = SimWorld::start("").await;
    let w = world.funded_wallet("w", 100).await;
    let shop_before = world.shop.info().await.unwrap().balance_msat;

    // Fails at once, then fails after being pending for a while.
    for behaviour in [
        InvoiceBehaviour {
            fail: true,
            ..Default::default()
        },
        InvoiceBehaviour {
            fail: true,
            settle_delay_ms: Some(700),
            ..Default::default()
        },
    ] {
        let (invoice, hash) = world.shop_invoice(40, behaviour.clone()).await;
        let started = Instant::now();
        let (id, result) = melt(&w, &invoice).await;
        assert!(
            matches!(result, Err(cdk::Error::PaymentFailed)),
            "{behaviour:?}: {result:?}"
        );
        assert!(started.elapsed() < DEADLINE);
        assert_eq!(balance(&w).await, 100, "{behaviour:?}: the ecash came back");
        let q: serde_json::Value = http()
            .get(format!("{}/v1/melt/quote/bolt11/{id}", world.mint.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            q["state"] == "UNPAID" || q["state"] == "FAILED",
            "{behaviour:?}: {q}"
        );
        assert_eq!(
            world.shop.invoice(&hash).await.unwrap().state,
            InvoiceState::Open
        );
    }
    assert_eq!(world.shop.info().await.unwrap().balance_msat, shop_before);

    // The same ecash still pays a good invoice.
    let (invoice, hash) = world.shop_invoice(40, Default::default()).await;
    let (_, melted) = melt(&w, &invoice).await;
    let melted = melted.unwrap();
    assert_preimage_of(melted.payment_proof().unwrap(), &hash);
    assert_eq!(balance(&w).await, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_melt_in_flight_when_the_mint_dies_settles_after_restart() {
    let world = SimWorld::start("").await;
    let w = world.funded_wallet("w", 100).await;
    let (invoice, hash) = world
        .shop_invoice(
            25,
            InvoiceBehaviour {
                settle_delay_ms: Some(1500),
                ..Default::default()
            },
        )
        .await;
    let quote = w
        .melt_quote(PaymentMethod::BOLT11, &invoice, None, None)
        .await
        .unwrap();
    let paying = {
        let w = w.clone();
        let id = quote.id.clone();
        tokio::spawn(async move {
            let prepared = w.prepare_melt(&id, HashMap::new()).await?;
            prepared.confirm().await
        })
    };
    let url = format!("{}/v1/melt/quote/bolt11/{}", world.mint.url, quote.id);
    eventually("the melt quote to be PENDING", || async {
        let q: serde_json::Value = http().get(&url).send().await.ok()?.json().await.ok()?;
        (q["state"] == "PENDING").then_some(())
    })
    .await;

    // The mint dies while the payment is in flight; the network settles it meanwhile.
    let SimWorld {
        dir: _dir,
        lnsim: _lnsim,
        mint,
        shop,
        ..
    } = world;
    let stopped = mint.kill();
    // The wallet's call dies with the connection; it recovers below, as after a crash.
    paying.abort();
    eventually("the shop's invoice to be paid", || async {
        let inv = shop.invoice(&hash).await.ok()?;
        (inv.state == InvoiceState::Paid).then_some(())
    })
    .await;

    // Restarted, the mint learns the outcome from its node: paid, with the preimage.
    let _mint = stopped.start();
    let q: serde_json::Value = http().get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(q["state"], "PAID", "{q}");
    assert_preimage_of(q["payment_preimage"].as_str().unwrap(), &hash);
    // The wallet finishes its melt: 25 paid, the unused fee reserve back as change.
    w.recover_incomplete_sagas().await.unwrap();
    assert_eq!(balance(&w).await, 75);
}
