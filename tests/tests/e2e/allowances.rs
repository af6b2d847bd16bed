//! Allowances end to end, against the real mint binary: metered draws under concurrency, every
//! refusal with its code, prepaid tokens, top-up, revoke, withdraw, and the admin API's guard.

use std::str::FromStr;
use std::sync::Arc;

use cashu_402::allowance::{Credential, DrawAuth};
use cdk::amount::SplitTarget;
use cdk::nuts::{CurrencyUnit, PaymentMethod, SecretKey};
use cdk::wallet::{MintQuote, Wallet};
use cdk::Amount;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The body of a draw request signed with `key`.
pub(crate) fn draw_body(key: &SecretKey, id: &str, amount: u64) -> Value {
    let auth = DrawAuth::sign(key, id, amount, "sat", nonce(), now()).unwrap();
    json!({
        "amount": amount, "unit": "sat", "pubkey": key.public_key().to_hex(),
        "allowance": auth.allowance, "nonce": auth.nonce, "time": auth.time,
        "signature": auth.signature,
    })
}

pub(crate) async fn post_draw(mint: &MintProcess, body: &Value) -> (u16, Value) {
    let r = http()
        .post(format!("{}/v1/mint/quote/allowance", mint.url))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status >= 500 {
        eprintln!("draw: {status}; mint log:\n{}", mint.log());
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Creates a metered allowance funded with `amount` (the fake backend pays the invoice) and
/// returns its id and the agent key from the credential.
pub(crate) async fn funded_metered(
    mint: &MintProcess,
    amount: u64,
    per_draw: u64,
    per_day: u64,
) -> (String, SecretKey) {
    let (status, view) = mint
        .admin(
            Method::POST,
            "/admin/v1/allowances/metered",
            Some(
                json!({"amount": amount, "max_per_draw": per_draw, "max_per_day": per_day,
                        "memo": "e2e"}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    let credential = Credential::from_str(view["credential"].as_str().unwrap()).unwrap();
    let id = view["id"].as_str().unwrap().to_string();
    eventually("the funding invoice to be credited", || async {
        let (_, v) = mint
            .admin(Method::GET, &format!("/admin/v1/allowances/{id}"), None)
            .await;
        (v["balance"].as_u64() == Some(amount)).then_some(())
    })
    .await;
    (id, credential.secret_key.unwrap())
}

/// Mints a paid draw quote into `wallet` with the agent key (NUT-20).
pub(crate) async fn mint_draw(wallet: &Wallet, quote: &Value, key: &SecretKey) -> u64 {
    let id = quote["quote"].as_str().unwrap().to_string();
    let amount = quote["amount"].as_u64().unwrap();
    let q = MintQuote::new(
        id.clone(),
        wallet.mint_url.clone(),
        PaymentMethod::Custom("allowance".into()),
        Some(Amount::from(amount)),
        CurrencyUnit::Sat,
        quote["request"].as_str().unwrap().to_string(),
        quote["expiry"].as_u64().unwrap_or(0),
        Some(key.clone()),
    );
    wallet.localstore.add_mint_quote(q).await.unwrap();
    let proofs = wallet
        .mint(&id, SplitTarget::default(), None)
        .await
        .unwrap();
    proofs.iter().map(|p| u64::from(p.amount)).sum()
}

async fn show(mint: &MintProcess, id: &str) -> Value {
    let (status, v) = mint
        .admin(Method::GET, &format!("/admin/v1/allowances/{id}"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test]
async fn hundred_concurrent_draws_against_a_budget_of_ten_exactly_ten_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let mint = Arc::new(MintProcess::start(dir.path(), ""));
    let (id, key) = funded_metered(&mint, 1000, 100, 100_000).await;

    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let mint = mint.clone();
        let body = draw_body(&key, &id, 100);
        tasks.push(tokio::spawn(async move { post_draw(&mint, &body).await }));
    }
    let mut paid = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => {
                assert_eq!(body["amount_paid"], 100, "paid at once: {body}");
                paid.push(body);
            }
            400 => {
                assert_eq!(body["code"], 40306, "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    eprintln!("100 concurrent draws took {:?}", started.elapsed());
    assert_eq!(paid.len(), 10, "exactly the budget");
    assert_eq!(refused, 90);
    let v = show(&mint, &id).await;
    assert_eq!(v["balance"], 0);
    assert_eq!(v["drawn_24h"], 1000);

    // The agent mints what it drew, with its key.
    let wallet = wallet(&mint.url, &dir.path().join("agent")).await;
    let mut total = 0;
    for quote in &paid {
        total += mint_draw(&wallet, quote, &key).await;
    }
    assert_eq!(total, 1000);
    assert_eq!(u64::from(wallet.total_balance().await.unwrap()), 1000);
}

#[tokio::test]
async fn every_bound_refuses_a_draw_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let (id, key) = funded_metered(&mint, 1000, 100, 250).await;
    let code = |v: &Value| v["code"].as_u64().unwrap();

    let (s, v) = post_draw(&mint, &draw_body(&key, &id, 101)).await;
    assert_eq!((s, code(&v)), (400, 40304), "per draw: {v}");
    assert!(v["detail"].as_str().unwrap().contains("per-draw cap"));

    let other = SecretKey::generate();
    let (s, v) = post_draw(&mint, &draw_body(&other, &id, 10)).await;
    assert_eq!((s, code(&v)), (400, 40301), "wrong key: {v}");

    let (s, v) = post_draw(&mint, &draw_body(&key, "al000000000000000000000000", 10)).await;
    assert_eq!((s, code(&v)), (400, 40300), "unknown: {v}");

    let mut forged = draw_body(&key, &id, 10);
    forged["amount"] = json!(20);
    let (s, v) = post_draw(&mint, &forged).await;
    assert_eq!(
        (s, code(&v)),
        (400, 40301),
        "amount changed after signing: {v}"
    );

    let mut stale = draw_body(&key, &id, 10);
    let auth = DrawAuth::sign(&key, &id, 10, "sat", nonce(), now() - 3600).unwrap();
    stale["time"] = json!(auth.time);
    stale["nonce"] = json!(auth.nonce);
    stale["signature"] = json!(auth.signature);
    let (s, v) = post_draw(&mint, &stale).await;
    assert_eq!((s, code(&v)), (400, 40301), "stale: {v}");

    let body = draw_body(&key, &id, 100);
    let (s, first) = post_draw(&mint, &body).await;
    assert_eq!(s, 200, "{first}");
    // The same signed request again (an agent that lost the answer) gets the same quote and
    // debits nothing; its nonce signed for another amount is refused.
    let (s, again) = post_draw(&mint, &body).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["quote"], first["quote"], "replayed draw: {again}");
    let reused = DrawAuth::sign(
        &key,
        &id,
        50,
        "sat",
        body["nonce"].as_str().unwrap().into(),
        now(),
    )
    .unwrap();
    let mut other_amount = draw_body(&key, &id, 50);
    other_amount["nonce"] = json!(reused.nonce);
    other_amount["time"] = json!(reused.time);
    other_amount["signature"] = json!(reused.signature);
    let (s, v) = post_draw(&mint, &other_amount).await;
    assert_eq!(
        (s, code(&v)),
        (400, 40301),
        "nonce reused for another amount: {v}"
    );

    let (s, _) = post_draw(&mint, &draw_body(&key, &id, 100)).await;
    assert_eq!(s, 200);
    let (s, v) = post_draw(&mint, &draw_body(&key, &id, 51)).await;
    assert_eq!((s, code(&v)), (400, 40305), "per day: {v}");

    let mut unlocked = draw_body(&key, &id, 10);
    unlocked.as_object_mut().unwrap().remove("pubkey");
    let (s, v) = post_draw(&mint, &unlocked).await;
    assert_eq!((s, code(&v)), (400, 40301), "no NUT-20 lock: {v}");

    let (s, v) = mint
        .admin(
            Method::POST,
            &format!("/admin/v1/allowances/{id}/revoke"),
            None,
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("revoked")));
    let (s, v) = post_draw(&mint, &draw_body(&key, &id, 10)).await;
    assert_eq!((s, code(&v)), (400, 40302), "revoked: {v}");

    let v = show(&mint, &id).await;
    assert_eq!(v["balance"], 800, "only the two good draws were debited");
    let kinds: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "funding_requested",
            "funded",
            "draw",
            "draw",
            "revoked"
        ]
    );
}

#[tokio::test]
async fn an_expired_allowance_stops_drawing_but_can_be_withdrawn() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let (status, view) = mint
        .admin(
            Method::POST,
            "/admin/v1/allowances/metered",
            Some(
                json!({"amount": 500, "max_per_draw": 100, "max_per_day": 500,
                        "expires_at": now() + 2}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    let id = view["id"].as_str().unwrap().to_string();
    let key = Credential::from_str(view["credential"].as_str().unwrap())
        .unwrap()
        .secret_key
        .unwrap();
    eventually("funding", || async {
        (show(&mint, &id).await["balance"] == 500).then_some(())
    })
    .await;
    // Waited for without drawing: on a slow machine draws made while waiting emptied the
    // allowance below what the withdrawal below needs.
    eventually("expiry", || async {
        (show(&mint, &id).await["state"] == "expired").then_some(())
    })
    .await;
    let (s, v) = post_draw(&mint, &draw_body(&key, &id, 10)).await;
    assert_eq!((s, v["code"].as_u64()), (400, Some(40303)), "expired: {v}");

    let balance_before = show(&mint, &id).await["balance"].as_u64().unwrap();
    let (s, v) = mint
        .admin(
            Method::POST,
            &format!("/admin/v1/allowances/{id}/withdraw"),
            Some(json!({"invoice": fake_invoice(200)})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "withdrawn", "{v}");
    let fee = last["fee"].as_u64().unwrap();
    assert_eq!(v["balance"].as_u64().unwrap(), balance_before - 200 - fee);

    let (s, v) = mint
        .admin(
            Method::POST,
            &format!("/admin/v1/allowances/{id}/withdraw"),
            Some(json!({"invoice": fake_invoice(10_000)})),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_u64()),
        (409, Some(40900)),
        "more than the balance: {v}"
    );
}

#[tokio::test]
async fn prepaid_token_is_handed_out_once_and_its_unspent_part_is_tracked() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let (s, v) = mint
        .admin(
            Method::POST,
            "/admin/v1/allowances/prepaid",
            Some(json!({"amount": 300, "memo": "for the crawler"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert!(v["fundings"][0]["invoice"]
        .as_str()
        .unwrap()
        .starts_with("lnbc"));
    assert!(v.get("token").is_none());

    let token = eventually("the token", || async {
        show(&mint, &id).await["token"].as_str().map(str::to_string)
    })
    .await;
    let v = show(&mint, &id).await;
    assert!(v.get("token").is_none(), "shown once");
    assert_eq!(v["state"], "delivered");
    assert_eq!(v["balance"], 300);
    let t = cdk::nuts::Token::from_str(&token).unwrap();
    assert_eq!(u64::from(t.value().unwrap()), 300);
    assert_eq!(t.memo().as_deref(), Some("for the crawler"));

    let agent = wallet(&mint.url, &dir.path().join("agent")).await;
    agent
        .receive(&token, cdk::wallet::ReceiveOptions::default())
        .await
        .unwrap();
    assert_eq!(show(&mint, &id).await["balance"], 0, "all of it spent now");

    let store = std::fs::read(dir.path().join("mint-data/mint.sqlite")).unwrap();
    assert!(
        !String::from_utf8_lossy(&store).contains(&token[..60]),
        "the token itself is not kept"
    );
}

#[tokio::test]
async fn admin_api_needs_the_token_and_logs_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let token = mint.admin_token();
    let path = mint.data_dir.join("admin.token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let url = format!("{}/admin/v1/allowances", mint.admin_url);
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic abc"),
        Some("Bearer "),
    ] {
        let mut req = http().get(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{auth:?}");
        assert!(r.text().await.unwrap().is_empty(), "no detail");
    }
    let r = http()
        .post(format!("{}/admin/v1/allowances/prepaid", mint.admin_url))
        .json(&json!({"amount": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // The public listener has no admin routes.
    let r = http()
        .get(format!("{}/admin/v1/allowances", mint.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    let (s, v) = mint.admin(Method::GET, "/admin/v1/allowances", None).await;
    assert_eq!((s, v.as_array().map(Vec::len)), (200, Some(0)));
    let (s, v) = mint
        .admin(
            Method::POST,
            "/admin/v1/allowances/metered",
            Some(json!({"amount": 0})),
        )
        .await;
    assert_eq!((s, v["code"].as_u64()), (400, Some(40000)), "{v}");
    let (s, v) = mint
        .admin(
            Method::GET,
            "/admin/v1/allowances/al000000000000000000000000",
            None,
        )
        .await;
    assert_eq!((s, v["code"].as_u64()), (404, Some(40400)), "{v}");
    let (s, v) = mint
        .admin(
            Method::POST,
            "/admin/v1/allowances/metered",
            Some(json!({"amount": 100, "max_per_draw": 10, "max_per_day": 50})),
        )
        .await;
    assert_eq!(s, 200);
    let credential = v["credential"].as_str().unwrap().to_string();
    let key = Credential::from_str(&credential)
        .unwrap()
        .secret_key
        .unwrap();

    let log = mint.stop_and_read_log();
    assert!(log.contains("admin call"), "each call is logged");
    assert!(log.contains("401"));
    assert!(!log.contains(&token), "the token is never logged");
    assert!(!log.contains(&credential) && !log.contains(&key.to_secret_hex()));
}

#[tokio::test]
async fn top_up_adds_an_invoice_and_the_books_balance_after_a_mixed_run() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "[limits]\ninput_fee_ppk = 100\n");
    let (id, key) = funded_metered(&mint, 400, 200, 1000).await;
    let (s, v) = mint
        .admin(
            Method::POST,
            &format!("/admin/v1/allowances/{id}/topup"),
            Some(json!({"amount": 600})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["fundings"].as_array().unwrap().len(), 2);
    eventually("top-up credited", || async {
        (show(&mint, &id).await["balance"] == 1000).then_some(())
    })
    .await;

    // A plain Lightning user, a prepaid token, draws, a swap, a melt and a withdrawal.
    let user = wallet(&mint.url, &dir.path().join("user")).await;
    fund(&user, 500).await;
    let (_, p) = mint
        .admin(
            Method::POST,
            "/admin/v1/allowances/prepaid",
            Some(json!({"amount": 120})),
        )
        .await;
    let pid = p["id"].as_str().unwrap().to_string();
    let token = eventually("prepaid token", || async {
        show(&mint, &pid).await["token"]
            .as_str()
            .map(str::to_string)
    })
    .await;
    user.receive(&token, cdk::wallet::ReceiveOptions::default())
        .await
        .unwrap();
    let agent = wallet(&mint.url, &dir.path().join("agent")).await;
    for amount in [150, 50] {
        let (s, q) = post_draw(&mint, &draw_body(&key, &id, amount)).await;
        assert_eq!(s, 200, "{q}");
        mint_draw(&agent, &q, &key).await;
    }
    // One draw left unminted: paid, not yet issued.
    let (s, _) = post_draw(&mint, &draw_body(&key, &id, 25)).await;
    assert_eq!(s, 200);
    let quote = user
        .melt_quote(PaymentMethod::BOLT11, fake_invoice(300), None, None)
        .await
        .unwrap();
    user.prepare_melt(&quote.id, std::collections::HashMap::new())
        .await
        .unwrap()
        .confirm()
        .await
        .unwrap();
    let (s, v) = mint
        .admin(
            Method::POST,
            &format!("/admin/v1/allowances/{id}/withdraw"),
            Some(json!({"invoice": fake_invoice(100)})),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    let (s, books) = mint.admin(Method::GET, "/admin/v1/books", None).await;
    assert_eq!(s, 200);
    let n = |k: &str| books[k].as_u64().unwrap() as i128;
    assert!(n("input_fees") > 0, "fees were collected: {books}");
    assert_eq!(n("received"), 400 + 600 + 500 + 120, "{books}");
    assert_eq!(n("unminted_quotes"), 25, "{books}");
    assert_eq!(
        n("ecash_outstanding") + n("allowance_balances") + n("unminted_quotes"),
        n("received") - n("paid_out") - n("lightning_fees") - n("input_fees"),
        "the books balance: {books}"
    );
    assert_eq!(n("paid_out"), 400);

    let metrics = http()
        .get(format!("{}/metrics", mint.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = |term: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("allowance_mint_books_sat{{term=\"{term}\"}}")))
            .unwrap_or_else(|| panic!("no {term} in /metrics"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<i128>()
            .unwrap()
    };
    assert_eq!(line("ecash_outstanding"), n("ecash_outstanding"));
    assert_eq!(line("allowance_balances"), n("allowance_balances"));
    assert_eq!(line("imbalance"), 0);
}
