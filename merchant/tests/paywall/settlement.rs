//! Settling collected ecash to Lightning: on demand, and automatically above a threshold with a
//! command as the invoice source.

use cdk::nuts::CurrencyUnit;
use merchant::store::{Outcome, SettlementSource};
use merchant::{AutoSettleConfig, AutoSettler};
use tokio::sync::Notify;

use crate::support::*;

/// Pays `/bulk` (100 sat) `times` times.
async fn collect(app: &App, mint: &TestMint, times: usize) {
    let agent = funded_wallet(mint, 110 * times as u64).await;
    for _ in 0..times {
        let t = pay_challenge(&agent, &challenge(&app.at("/bulk")).await).await;
        assert_eq!(get_with(&app.at("/bulk"), Some(&t)).await.status(), 200);
    }
}

fn invoice(sat: u64) -> String {
    cdk_fake_wallet::create_fake_invoice(sat * 1000, String::new()).to_string()
}

#[tokio::test]
async fn settling_to_an_invoice_melts_amount_plus_fee_and_keeps_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    collect(&app, &mint, 2).await;
    let before = app.balance(&mint).await;
    assert_eq!(before, 200);

    let s = merchant::settle(
        &app.merchant,
        &mint.mint_url,
        &CurrencyUnit::Sat,
        &invoice(120),
        SettlementSource::Manual,
    )
    .await
    .unwrap();
    assert_eq!(s.outcome, Outcome::Paid);
    assert_eq!(s.amount, 120);
    let fee = s.fee.unwrap();
    let reserve = s.fee_reserve.unwrap();
    assert!(reserve >= 1, "the fake backend reserves at least 1 sat");
    let after = app.balance(&mint).await;
    assert_eq!(before - after, 120 + fee, "balance drops by amount + fee");
    assert!(
        fee <= reserve + 2,
        "unused fee reserve came back as change (fee {fee}, reserve {reserve})"
    );
    assert!(after > 0);

    let listed = app.merchant.store().settlements(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0], s);
    assert!(s.quote_id.is_some());

    // More than the wallet holds: refused and logged as failed, nothing melted.
    let e = merchant::settle(
        &app.merchant,
        &mint.mint_url,
        &CurrencyUnit::Sat,
        &invoice(500),
        SettlementSource::Manual,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("holds"), "{e}");
    assert_eq!(app.balance(&mint).await, after);
    let listed = app.merchant.store().settlements(10).await.unwrap();
    assert_eq!(listed[0].outcome, Outcome::Failed);
}

#[tokio::test]
async fn the_balance_passing_the_threshold_settles_to_a_command_invoice() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    let invoice_file = dir.path().join("invoice.txt");
    std::fs::write(&invoice_file, format!("{}\n", invoice(150))).unwrap();
    let config = AutoSettleConfig {
        threshold_sat: 180,
        interval_secs: 3600,
        command: Some(format!("cat '{}'", invoice_file.display())),
        ..AutoSettleConfig::default()
    };
    let settler = AutoSettler::new(app.merchant.clone(), config).unwrap();
    let stop = std::sync::Arc::new(Notify::new());
    let stopped = stop.clone();
    let task = tokio::spawn(settler.run(async move { stopped.notified().await }));

    collect(&app, &mint, 1).await;
    assert!(
        app.merchant
            .store()
            .settlements(10)
            .await
            .unwrap()
            .is_empty(),
        "below the threshold"
    );
    collect(&app, &mint, 1).await;

    let s = eventually("an automatic settlement", || async {
        app.merchant
            .store()
            .settlements(10)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.outcome == Outcome::Paid)
    })
    .await;
    assert_eq!(s.amount, 150);
    assert_eq!(s.source, SettlementSource::Auto);
    assert_eq!(app.balance(&mint).await, 200 - 150 - s.fee.unwrap());

    stop.notify_one();
    tokio::time::timeout(DEADLINE, task).await.unwrap().unwrap();
}

/// An LNURL-pay service for `alice` on 127.0.0.1 whose invoices are off by `skew_msat`.
async fn lnurl_service(skew_msat: u64) -> String {
    use axum::extract::Query;
    use axum::routing::get;
    use std::collections::HashMap;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let callback = format!("http://{host}/lnurlp/alice/callback?session=1");
    let app = axum::Router::new()
        .route(
            "/.well-known/lnurlp/alice",
            get(move || {
                let callback = callback.clone();
                async move {
                    axum::Json(serde_json::json!({
                        "tag": "payRequest",
                        "callback": callback,
                        "minSendable": 1000,
                        "maxSendable": 100_000_000,
                        "metadata": "[[\"text/plain\",\"alice\"]]",
                    }))
                }
            }),
        )
        .route(
            "/lnurlp/alice/callback",
            get(move |Query(q): Query<HashMap<String, String>>| async move {
                assert_eq!(
                    q.get("session").map(String::as_str),
                    Some("1"),
                    "callback query kept"
                );
                let msat: u64 = q["amount"].parse().unwrap();
                let pr = cdk_fake_wallet::create_fake_invoice(msat + skew_msat, String::new());
                axum::Json(serde_json::json!({ "pr": pr.to_string(), "routes": [] }))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("alice@{host}")
}

#[tokio::test]
async fn a_lightning_address_source_is_asked_for_the_balance_less_the_margin() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    collect(&app, &mint, 1).await;

    let honest = AutoSettleConfig {
        threshold_sat: 50,
        lightning_address: Some(lnurl_service(0).await),
        ..AutoSettleConfig::default()
    };
    let settled = AutoSettler::new(app.merchant.clone(), honest)
        .unwrap()
        .run_once()
        .await
        .unwrap();
    assert_eq!(settled.len(), 1);
    let s = &settled[0];
    assert_eq!(s.outcome, Outcome::Paid);
    // 100 sat held, less a margin of max(2 %, 2 sat) plus the mint's input fees.
    assert!((90..=97).contains(&s.amount), "settled {}", s.amount);
    assert_eq!(app.balance(&mint).await, 100 - s.amount - s.fee.unwrap());

    collect(&app, &mint, 1).await;
    let cheat = AutoSettleConfig {
        threshold_sat: 50,
        lightning_address: Some(lnurl_service(1000).await),
        ..AutoSettleConfig::default()
    };
    let e = AutoSettler::new(app.merchant.clone(), cheat)
        .unwrap()
        .run_once()
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("msat"),
        "an invoice for another amount is refused: {e}"
    );
}

/// A mint quote of the test mint, paid by the fake backend, from a wallet of its own: settling
/// to its invoice is an internal settlement the mint refuses ("Payment failed").
async fn paid_mint_quote_invoice(mint: &TestMint, sat: u64) -> String {
    use cdk::nuts::{MintQuoteState, PaymentMethod};
    let other = funded_wallet(mint, 1).await;
    let quote = other
        .mint_quote(PaymentMethod::BOLT11, Some(sat.into()), None, None)
        .await
        .unwrap();
    eventually("the other wallet's mint quote to be paid", || async {
        let q = other.check_mint_quote_status(&quote.id).await.unwrap();
        (q.state == MintQuoteState::Paid).then_some(())
    })
    .await;
    quote.request
}

#[tokio::test]
async fn a_melt_the_mint_refuses_for_its_own_already_paid_invoice_ends_failed_not_pending() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    collect(&app, &mint, 1).await;
    assert_eq!(app.balance(&mint).await, 100);
    let request = paid_mint_quote_invoice(&mint, 50).await;

    // Internal settlement to a quote already paid: the mint answers "Payment failed" and rolls
    // the melt back (quote UNPAID, proofs released). Not an unknown outcome: a failure.
    let e = merchant::settle(
        &app.merchant,
        &mint.mint_url,
        &CurrencyUnit::Sat,
        &request,
        SettlementSource::Manual,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, merchant::SettleError::Payment(_)),
        "a failure, not pending: {e}"
    );
    assert!(e.to_string().contains("UNPAID"), "{e}");
    let listed = app.merchant.settlements(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    let s = &listed[0];
    assert_eq!(s.outcome, Outcome::Failed, "{s:?}");
    assert!(s.quote_id.is_some());
    assert!(s.detail.as_deref().unwrap().contains("UNPAID"), "{s:?}");

    // The ecash is back: nothing pending, at most the input fee of the swap the melt made to get
    // exact proofs is gone.
    let balances = app.merchant.balances().await.unwrap();
    assert_eq!(balances.len(), 1);
    assert_eq!(balances[0].pending, 0, "{balances:?}");
    assert!(
        balances[0].spendable >= 100 - FEE_PPK.div_ceil(100),
        "{balances:?}"
    );
    // Recovery has nothing left to resolve, and the ecash settles elsewhere.
    let summary = app.merchant.recover().await.unwrap();
    assert_eq!(
        (
            summary.settlements_paid,
            summary.settlements_failed,
            summary.settlements_pending
        ),
        (0, 0, 0),
        "{summary:?}"
    );
    let paid = merchant::settle(
        &app.merchant,
        &mint.mint_url,
        &CurrencyUnit::Sat,
        &invoice(50),
        SettlementSource::Manual,
    )
    .await
    .unwrap();
    assert_eq!(paid.outcome, Outcome::Paid);
}

/// A settlement row left `pending` with its melt quote (as an earlier version left one when the
/// mint refused the melt, or a crash leaves one), for a melt the wallet then ran itself.
async fn pending_row(app: &App, mint: &TestMint, request: &str, pay: bool) -> i64 {
    use std::collections::HashMap;
    let wallet = app
        .merchant
        .wallet(&mint.mint_url, &CurrencyUnit::Sat)
        .await
        .unwrap();
    let quote = wallet
        .melt_quote(cdk::nuts::PaymentMethod::BOLT11, request, None, None)
        .await
        .unwrap();
    let store = app.merchant.store();
    let id = store
        .start_settlement(
            mint.url.clone(),
            "sat".into(),
            quote.amount.into(),
            request.to_string(),
            SettlementSource::Manual,
        )
        .await
        .unwrap();
    store
        .settlement_quoted(id, quote.id.clone(), quote.fee_reserve.into())
        .await
        .unwrap();
    let confirmed = wallet
        .prepare_melt(&quote.id, HashMap::new())
        .await
        .unwrap()
        .confirm()
        .await;
    assert_eq!(confirmed.is_ok(), pay, "{confirmed:?}");
    id
}

#[tokio::test]
async fn settlements_left_pending_are_resolved_from_the_mint_quote_state_by_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let mint = TestMint::start(&dir.path().join("mint")).await;
    let app = start_app(&mint, &dir.path().join("merchant")).await;
    collect(&app, &mint, 2).await;
    let refused = pending_row(
        &app,
        &mint,
        &paid_mint_quote_invoice(&mint, 50).await,
        false,
    )
    .await;
    let paid = pending_row(&app, &mint, &invoice(60), true).await;
    let never_quoted = app
        .merchant
        .store()
        .start_settlement(
            mint.url.clone(),
            "sat".into(),
            10,
            invoice(10),
            SettlementSource::Manual,
        )
        .await
        .unwrap();
    let balance = app.balance(&mint).await;

    // Listing leaves pending settlements this young alone: another process may be paying them.
    let listed = app.merchant.settlements(10).await.unwrap();
    assert!(listed.iter().all(|s| s.outcome == Outcome::Pending));

    let summary = app.merchant.recover().await.unwrap();
    assert_eq!(
        (
            summary.settlements_paid,
            summary.settlements_failed,
            summary.settlements_pending
        ),
        (1, 2, 0),
        "{summary:?}"
    );
    let store = app.merchant.store();
    let r = store.settlement(refused).await.unwrap().unwrap();
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert!(r.detail.as_deref().unwrap().contains("UNPAID"), "{r:?}");
    let p = store.settlement(paid).await.unwrap().unwrap();
    assert_eq!(p.outcome, Outcome::Paid, "{p:?}");
    let fee = p.fee.expect("the fee is recorded");
    assert!(fee <= p.fee_reserve.unwrap() + 2, "{p:?}");
    let n = store.settlement(never_quoted).await.unwrap().unwrap();
    assert_eq!(n.outcome, Outcome::Failed, "{n:?}");
    assert_eq!(app.balance(&mint).await, balance, "recovery moved no ecash");
    let balances = app.merchant.balances().await.unwrap();
    assert_eq!(balances[0].pending, 0, "{balances:?}");
}
