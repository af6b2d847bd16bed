//! The agent wallet and a metered allowance, end to end: the real mint binary, a small NUT-24
//! merchant in the test, and `agent_wallet::AgentWallet` drawing when it runs short.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use agent_wallet::{AgentWallet, AllowanceDrawRoom, Outcome, PayRequest, WalletOptions};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use cashu_402::allowance_status::{StatusRequest, STATUS_PATH};
use cashu_402::error_body::{codes, ErrorBody};
use cashu_402::nut24::{Challenge, X_CASHU};
use cdk::mint_url::MintUrl;
use cdk::nuts::CurrencyUnit;
use cdk::nuts::SecretKey;
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
    // The budget counts what one draw may add: nothing held, 200 per draw.
    let budget = agent.budget(None).await.unwrap();
    let AllowanceDrawRoom::Connected(room) = &budget.allowance_draw_room else {
        panic!("{budget:?}");
    };
    assert_eq!(
        (room.state.as_str(), room.balance, room.drawn_24h),
        ("active", 1000, 0)
    );
    assert_eq!((room.draw_now, room.draw_room_24h), (200, 1000));
    // Nothing is held, so without the allowance this would be 0.
    let cap = budget.max_per_request.unwrap_or(u64::MAX);
    assert_eq!(budget.next_request_max, cap.min(200));

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

    let status = agent.allowance_status().await.unwrap();
    assert_eq!(status.balance, 1000 - drawn);
    assert_eq!(status.drawn_24h, drawn);
    assert_eq!(status.draw_room_24h, 1000 - drawn);

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
    let status = agent.allowance_status().await.unwrap();
    assert_eq!(
        (status.state.as_str(), status.draw_now, status.draw_room_24h),
        ("revoked", 0, 0)
    );
    let err = agent.fetch(PayRequest::get(url)).await.unwrap_err();
    assert!(
        matches!(
            err,
            agent_wallet::WalletError::DrawRefused { code: 40302, .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn only_the_agent_key_reads_an_allowances_status_and_only_a_fresh_request() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let key = SecretKey::generate();
    let (s, view) = mint
        .admin(
            Method::POST,
            "/admin/v1/allowances/metered",
            Some(
                json!({"amount": 500, "max_per_draw": 100, "max_per_day": 300,
                        "agent_pubkey": key.public_key().to_hex()}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{view}");
    let id = view["id"].as_str().unwrap().to_string();
    let now = cdk::util::unix_time();
    let ask = |req: serde_json::Value| {
        let url = format!("{}{STATUS_PATH}", mint.url);
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&req)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };

    let (status, body) = ask(json!(StatusRequest::sign(&key, &id, now).unwrap())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["allowance"], id.as_str());
    assert_eq!(body["policy"]["max_per_day"], 300);
    eventually("funding", || async {
        let (_, b) = ask(json!(StatusRequest::sign(
            &key,
            &id,
            cdk::util::unix_time()
        )
        .unwrap()))
        .await;
        (b["balance"] == 500 && b["state"] == "active").then_some(())
    })
    .await;
    let (_, body) = ask(json!(StatusRequest::sign(
        &key,
        &id,
        cdk::util::unix_time()
    )
    .unwrap()))
    .await;
    assert_eq!(
        (body["draw_now"].as_u64(), body["draw_room_24h"].as_u64()),
        (Some(100), Some(300))
    );

    let stranger = SecretKey::generate();
    let (status, body) = ask(json!(StatusRequest::sign(&stranger, &id, now).unwrap())).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (400, Some(u64::from(codes::ALLOWANCE_BAD_SIGNATURE))),
        "{body}"
    );
    let (status, body) = ask(json!(StatusRequest::sign(&key, &id, now - 3600).unwrap())).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (400, Some(u64::from(codes::ALLOWANCE_BAD_SIGNATURE))),
        "stale: {body}"
    );
    let unknown = "al0123456789abcdef01234567";
    let (status, body) = ask(json!(StatusRequest::sign(&key, unknown, now).unwrap())).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (400, Some(u64::from(codes::ALLOWANCE_UNKNOWN))),
        "{body}"
    );
    let (status, body) = ask(json!({"allowance": id, "time": now})).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (400, Some(u64::from(codes::MALFORMED_REQUEST))),
        "{body}"
    );
    // The mint is still up and still answers the agent.
    let (status, _) = ask(json!(StatusRequest::sign(
        &key,
        &id,
        cdk::util::unix_time()
    )
    .unwrap()))
    .await;
    assert_eq!(status, 200);
}

/// Forwards everything to the mint; when `lose_draw` is set, forwards the next draw but answers
/// 502, as if the connection died after the mint debited.
struct LossyProxy {
    target: String,
    lose_draw: std::sync::atomic::AtomicBool,
}

async fn forward(State(p): State<Arc<LossyProxy>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path = parts.uri.path_and_query().unwrap().as_str().to_string();
    let mut out =
        reqwest::Client::new().request(parts.method.clone(), format!("{}{path}", p.target));
    if let Some(ct) = parts.headers.get("content-type") {
        out = out.header("content-type", ct.to_str().unwrap());
    }
    let answer = out.body(body.to_vec()).send().await.unwrap();
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let bytes = answer.bytes().await.unwrap();
    if path.starts_with("/v1/mint/quote/allowance")
        && p.lose_draw.swap(false, std::sync::atomic::Ordering::SeqCst)
    {
        return (StatusCode::BAD_GATEWAY, "connection lost").into_response();
    }
    (status, [("content-type", "application/json")], bytes).into_response()
}

#[tokio::test]
async fn a_draw_whose_answer_was_lost_is_finished_by_the_next_open() {
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
    eventually("funding", || async {
        let (_, v) = mint
            .admin(Method::GET, &format!("/admin/v1/allowances/{id}"), None)
            .await;
        (v["balance"] == 1000).then_some(())
    })
    .await;
    let proxy = Arc::new(LossyProxy {
        target: mint.url.clone(),
        lose_draw: true.into(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(forward).with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut credential: cashu_402::allowance::Credential =
        view["credential"].as_str().unwrap().parse().unwrap();
    credential.mint = MintUrl::from_str(&proxy_url).unwrap();

    let agent_dir = dir.path().join("agent");
    let agent = AgentWallet::open_with(WalletOptions::new(&agent_dir))
        .await
        .unwrap();
    agent
        .connect_allowance(&credential.to_string())
        .await
        .unwrap();
    let err = agent.draw(150).await.unwrap_err();
    assert!(err.to_string().contains("502"), "{err}");
    assert_eq!(agent.balances().await.unwrap().total, 0);
    let (_, v) = mint
        .admin(Method::GET, &format!("/admin/v1/allowances/{id}"), None)
        .await;
    assert_eq!(
        v["balance"], 850,
        "the mint debited the draw whose answer was lost"
    );
    drop(agent);

    // The next open finishes it: same quote, no second debit, one ledger row.
    let agent = AgentWallet::open_with(WalletOptions::new(&agent_dir))
        .await
        .unwrap();
    assert_eq!(agent.balances().await.unwrap().total, 150);
    let (_, v) = mint
        .admin(Method::GET, &format!("/admin/v1/allowances/{id}"), None)
        .await;
    assert_eq!(v["balance"], 850);
    let draws: Vec<_> = agent
        .ledger()
        .unwrap()
        .into_iter()
        .filter(|e| e.method == "DRAW")
        .collect();
    assert_eq!(draws.len(), 1, "{draws:?}");
    assert_eq!(draws[0].amount, 150);
    assert_eq!(
        std::fs::read_dir(agent_dir.join("draws")).unwrap().count(),
        0
    );
    // And drawing goes on as usual.
    assert_eq!(agent.draw(50).await.unwrap(), 50);
    assert_eq!(agent.balances().await.unwrap().total, 200);
}
