//! The agent wallet and a metered allowance, end to end: the real mint binary, a small NUT-24
//! merchant in the test, and `agent_wallet::AgentWallet` drawing when it runs short.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use agent_wallet::{AgentWallet, Outcome, PayRequest, WalletOptions};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use cashu_402::error_body::{codes, ErrorBody};
use cashu_402::nut24::{Challenge, X_CASHU};
use cdk::mint_url::MintUrl;
use cdk::nuts::CurrencyUnit;
use cdk::wallet::{ReceiveOptions, Wallet};
use cdk::Amount;
use reqwest::Method;
use serde_json::json;

use crate::support::*;

struct Shop {
    challenge: Challenge,
    wallet: Wallet,
    redeemed: Mutex<u64>,
}

async fn paywall(State(s): State<Arc<Shop>>, headers: HeaderMap) -> Response {
    let challenge = s.challenge.encode().unwrap();
    let refuse = |status, code, detail: &str| {
        let mut r = (status, axum::Json(ErrorBody::new(code, detail))).into_response();
        r.headers_mut().insert(X_CASHU, challenge.parse().unwrap());
        r
    };
    let Some(token) = headers.get(X_CASHU).and_then(|v| v.to_str().ok()) else {
        return refuse(StatusCode::PAYMENT_REQUIRED, codes::PAYMENT_REQUIRED, "pay");
    };
    match s.wallet.receive(token, ReceiveOptions::default()).await {
        Ok(a) => {
            *s.redeemed.lock().unwrap() += u64::from(a);
            (StatusCode::OK, "paid content").into_response()
        }
        Err(e) => refuse(
            StatusCode::BAD_REQUEST,
            codes::TOKEN_REFUSED,
            &e.to_string(),
        ),
    }
}

async fn start_shop(mint: &MintProcess, dir: &std::path::Path, price: u64) -> (String, Arc<Shop>) {
    let shop = Arc::new(Shop {
        challenge: Challenge::new(
            Amount::from(price),
            CurrencyUnit::Sat,
            MintUrl::from_str(&mint.url).unwrap(),
        ),
        wallet: wallet(&mint.url, &dir.join("shop")).await,
        redeemed: Mutex::new(0),
    });
    let app = Router::new()
        .route("/{*path}", any(paywall))
        .with_state(shop.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, shop)
}

#[tokio::test]
async fn a_payment_the_wallet_cannot_cover_draws_from_the_allowance_first() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let (s, view) = mint
        .admin(
            Method::POST,
            "/admin/v1/allowances/metered",
            Some(json!({"amount": 1000, "max_per_draw": 200, "max_per_day": 1000})),
        )
        .await;
    assert_eq!(s, 200, "{view}");
    let id = view["id"].as_str().unwrap().to_string();
    let credential = view["credential"].as_str().unwrap().to_string();
    eventually("funding", || async {
        let (_, v) = mint
            .admin(Method::GET, &format!("/admin/v1/allowances/{id}"), None)
            .await;
        (v["balance"] == 1000).then_some(())
    })
    .await;

    let (shop_url, shop) = start_shop(&mint, dir.path(), 80).await;
    let mut options = WalletOptions::new(dir.path().join("agent"));
    options.allowance_float = Some(50);
    let agent = AgentWallet::open_with(options).await.unwrap();
    let info = agent.connect_allowance(&credential).await.unwrap();
    assert_eq!(info.allowance, id);
    assert_eq!(agent.balances().await.unwrap().total, 0);

    let url = url::Url::parse(&format!("{shop_url}/api/search")).unwrap();
    let answer = agent.fetch(PayRequest::get(url.clone())).await.unwrap();
    assert_eq!(answer.response.status.as_u16(), 200);
    assert_eq!(*shop.redeemed.lock().unwrap(), 80);

    let ledger = agent.ledger().unwrap();
    let draws: Vec<_> = ledger.iter().filter(|e| e.method == "DRAW").collect();
    assert_eq!(draws.len(), 1, "{ledger:?}");
    let drawn = draws[0].amount;
    assert_eq!(draws[0].outcome, Outcome::Drawn);
    assert!(!draws[0].counted, "a draw is no spending");
    assert!(
        (80..=200).contains(&drawn),
        "shortfall plus the float: {drawn}"
    );
    assert!(ledger
        .iter()
        .any(|e| e.outcome == Outcome::Paid && e.amount == 80));
    let float = agent.balances().await.unwrap().total;
    assert_eq!(float, drawn - 80, "the float stays in the wallet");

    let (_, v) = mint
        .admin(Method::GET, &format!("/admin/v1/allowances/{id}"), None)
        .await;
    assert_eq!(v["balance"].as_u64().unwrap(), 1000 - drawn);
    assert_eq!(v["drawn_24h"].as_u64().unwrap(), drawn);

    // Revoked: the next payment that needs a draw fails with the mint's reason.
    mint.admin(
        Method::POST,
        &format!("/admin/v1/allowances/{id}/revoke"),
        None,
    )
    .await;
    let mut spent_down = agent.balances().await.unwrap().total;
    while spent_down >= 80 {
        agent.fetch(PayRequest::get(url.clone())).await.unwrap();
        spent_down = agent.balances().await.unwrap().total;
    }
    let err = agent.fetch(PayRequest::get(url)).await.unwrap_err();
    assert!(
        matches!(
            err,
            agent_wallet::WalletError::DrawRefused { code: 40302, .. }
        ),
        "{err}"
    );
}
