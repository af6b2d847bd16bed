//! Hostile input against the real mint, the paywall gateway and the admin API: oversized
//! headers and bodies, clients that dribble bytes, 10,000 proofs, unknown units, overflowing
//! amounts, malformed BOLT11, replayed tokens, tokens from a foreign mint, locks that expire too
//! soon, wrong admin tokens. Each gets a clear 4xx (status and code asserted), the server stays
//! up (a normal request works afterwards) and nothing is lost. The table in `docs/security.md`
//! lists every case with its answer and the test that checks it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use cdk::nuts::{Conditions, Proof, Proofs, PublicKey, SecretKey, SpendingConditions, Token};
use cdk::wallet::SendOptions;
use cdk::Amount;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client_errors::*;
use crate::support::*;

const UNIT_UNSUPPORTED: u64 = 11013;
const MAX_INPUTS_EXCEEDED: u64 = 11014;

/// Timeouts the servers in these tests run with, so that slow clients are cut off quickly.
const HEADER_TIMEOUT_SECS: u64 = 2;
const REQUEST_TIMEOUT_SECS: u64 = 2;

fn mint_config(extra: &str) -> String {
    format!(
        "{}\n[http]\nrequest_timeout_secs = {REQUEST_TIMEOUT_SECS}\n\
         header_read_timeout_secs = {HEADER_TIMEOUT_SECS}\n{extra}",
        limits_config()
    )
}

/// Writes `request` on a fresh connection to `addr` and reads the answer until the server
/// closes: the status (0 if the server closed without answering) and the body.
fn raw(addr: &str, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    // The server may answer and close before it read everything: a failed write is fine.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn host(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// A request whose one header is `size` bytes long.
fn huge_header(path: &str, name: &str, size: usize) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\n{name}: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(size)
    )
    .into_bytes()
}

/// A request with `n` small headers.
fn many_headers(path: &str, n: usize) -> Vec<u8> {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: x\r\n");
    for i in 0..n {
        r.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    r.push_str("Connection: close\r\n\r\n");
    r.into_bytes()
}

/// A client that sends the start of a request and then one byte every 200 ms, forever.
/// Returns how long the server let it go on, and what it answered (status 0: it just closed).
fn dribble(addr: &str, start: &str) -> (Duration, u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let began = Instant::now();
    let _ = s.write_all(start.as_bytes());
    let mut out = Vec::new();
    loop {
        assert!(
            began.elapsed() < DEADLINE,
            "the server let a slow client dribble for {DEADLINE:?}"
        );
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if !out.is_empty() {
                    break;
                }
            }
            Err(_) => break,
        }
        if s.write_all(b"a").is_err() && out.is_empty() {
            // Closed on us; whatever it sent is read on the next turn.
            let _ = s.read_to_end(&mut out);
            break;
        }
    }
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (began.elapsed(), status, body)
}

/// `dribble` on a blocking thread.
async fn dribble_async(addr: String, start: String) -> (Duration, u16, String) {
    tokio::task::spawn_blocking(move || dribble(&addr, &start))
        .await
        .unwrap()
}

/// Slow clients of every kind against `addr`: one that dribbles its headers is disconnected
/// after the header timeout, one that dribbles its body gets 408 (when `body_path` is given),
/// and while 20 of them hang on, `alive` still answers.
async fn slow_clients(addr: &str, body_path: Option<&str>, alive: &str) {
    let headers = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ".to_string();
    let hanging: Vec<_> = (0..20)
        .map(|_| tokio::spawn(dribble_async(addr.to_string(), headers.clone())))
        .collect();
    let a = send(http().get(alive)).await;
    assert_eq!(
        a.status, 200,
        "a normal request while 20 clients dribble: {}",
        a.raw
    );
    for h in hanging {
        let (took, status, _) = h.await.unwrap();
        assert!(
            took < Duration::from_secs(HEADER_TIMEOUT_SECS + 5),
            "a client dribbling its headers was cut off after {took:?}"
        );
        assert!(status == 0 || status == 408, "answered {status}");
    }
    if let Some(path) = body_path {
        let start = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 100000\r\n\r\n{{"
        );
        let (took, status, body) = dribble_async(addr.to_string(), start).await;
        assert!(
            took < Duration::from_secs(REQUEST_TIMEOUT_SECS + 5),
            "{took:?}"
        );
        assert_eq!(status, 408, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], 40800, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_headers_and_slow_clients_are_cut_off_and_the_mint_stays_up() {
    let f = Fixture::start(&mint_config("")).await;
    let addr = host(&f.mint.url);
    let (status, _) = raw(&addr, &huge_header("/v1/info", "X-Big", 512 * 1024));
    assert_eq!(status, 431, "a 512 KiB header");
    let (status, _) = raw(&addr, &many_headers("/v1/info", 500));
    assert_eq!(status, 431, "500 headers");
    slow_clients(&addr, Some("/v1/swap"), &f.url("/v1/info")).await;
    // The admin listener is served the same way.
    let admin = host(&f.mint.admin_url);
    let (status, _) = raw(
        &admin,
        &huge_header("/admin/v1/allowances", "Authorization", 512 * 1024),
    );
    assert_eq!(status, 431);
    slow_clients(&admin, None, &format!("{}/app.css", f.mint.admin_url)).await;
    f.assert_alive().await;
}

/// `n` copies of `proof` with fresh secrets (the mint must refuse them long before it looks at
/// signatures).
fn forged(proof: &Proof, n: usize) -> Proofs {
    (0..n)
        .map(|_| {
            let mut p = proof.clone();
            p.secret = cdk::secret::Secret::generate();
            p
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_requests_to_the_mint_get_clear_4xx_and_lose_nothing() {
    let f = Fixture::start(&mint_config("")).await;
    let held = f.proofs(64).await;

    // 10,000 proofs: larger than the body limit.
    let many = forged(&held[0], 10_000);
    let a = f.swap(many.clone(), f.outputs(64).await).await;
    assert_error("a swap with 10,000 proofs", &a, 413, BODY_TOO_LARGE);

    // Unknown units.
    let a = post(
        &f.url("/v1/mint/quote/bolt11"),
        json!({"amount": 10, "unit": "xyz"}),
    )
    .await;
    assert_error("mint quote in an unknown unit", &a, 400, UNIT_UNSUPPORTED);
    let a = post(
        &f.url("/v1/melt/quote/bolt11"),
        json!({"request": fake_invoice(10), "unit": "xyz"}),
    )
    .await;
    assert_error("melt quote in an unknown unit", &a, 400, UNIT_UNSUPPORTED);

    // Overflowing amounts.
    let a = post(
        &f.url("/v1/mint/quote/bolt11"),
        json!({"amount": u64::MAX, "unit": "sat"}),
    )
    .await;
    assert_error("mint quote of u64::MAX", &a, 400, AMOUNT_OUT_OF_LIMIT_RANGE);
    let a = send(
        http()
            .post(f.url("/v1/mint/quote/bolt11"))
            .header("content-type", "application/json")
            .body(r#"{"amount": 18446744073709551616, "unit": "sat"}"#),
    )
    .await;
    let detail = assert_error("mint quote of 2^64", &a, 400, MALFORMED_REQUEST);
    assert!(detail.contains("2^64"), "{detail}");
    let mut big = forged(&held[0], 2);
    for p in &mut big {
        p.amount = Amount::from(u64::MAX / 2 + 1);
    }
    let a = f.swap(big, f.outputs(64).await).await;
    assert_error(
        "inputs whose sum overflows",
        &a,
        400,
        TRANSACTION_UNBALANCED,
    );
    let mut outputs = f.outputs(64).await;
    outputs[0].amount = Amount::from(u64::MAX);
    let a = f.swap(held.clone(), outputs).await;
    assert_eq!(a.status, 400, "outputs whose sum overflows: {}", a.raw);

    // Malformed BOLT11.
    for invoice in ["lnbc1garbage", "", "lnbc10n1p"] {
        let a = post(
            &f.url("/v1/melt/quote/bolt11"),
            json!({"request": invoice, "unit": "sat"}),
        )
        .await;
        let detail = assert_error("malformed BOLT11", &a, 400, MALFORMED_REQUEST);
        assert!(detail.contains("BOLT11"), "{detail}");
    }

    // Nothing was lost: the proofs used above are still unspent and swap normally.
    assert!(f.states(&held).await.iter().all(|s| s == "UNSPENT"));
    let a = f.swap(held.clone(), f.outputs(64).await).await;
    assert_eq!(a.status, 200, "{}", a.raw);
    // Replayed: the same proofs again.
    let a = f.swap(held, f.outputs(64).await).await;
    assert_error("replayed proofs", &a, 400, TOKEN_ALREADY_SPENT);
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_proofs_within_the_body_limit_are_refused_by_count() {
    let f = Fixture::start(&mint_config("")).await;
    let held = f.proofs(8).await;
    drop(f);
    // A second mint with a body limit large enough for them: refused by count (max_inputs).
    let big = Fixture::start(&format!(
        "{}\n[http]\nbody_limit_bytes = 16777216\n",
        limits_config()
    ))
    .await;
    let a = big
        .swap(forged(&held[0], 10_000), big.outputs(8).await)
        .await;
    assert_error("a swap with 10,000 proofs", &a, 400, MAX_INPUTS_EXCEEDED);
    big.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proofs_of_a_foreign_mint_are_unknown_here() {
    let ours = Fixture::start(&mint_config("")).await;
    let theirs = Fixture::start("").await;
    let foreign = theirs.proofs(16).await;
    let a = ours.swap(foreign.clone(), ours.outputs(16).await).await;
    assert_error("proofs of another mint", &a, 400, KEYSET_NOT_FOUND);
    assert!(theirs.states(&foreign).await.iter().all(|s| s == "UNSPENT"));
    ours.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_requests_to_the_admin_api_get_clear_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), &mint_config(""));
    let url = |p: &str| format!("{}{p}", mint.admin_url);
    let long = format!("Bearer {}", "x".repeat(16 * 1024));
    for auth in [
        None,
        Some("Bearer wrong"),
        Some(long.as_str()),
        Some("Token x"),
    ] {
        let mut req = http().get(url("/admin/v1/allowances"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let a = send(req).await;
        assert_eq!(
            a.status,
            401,
            "{:?}: {}",
            auth.map(|a| &a[..a.len().min(20)]),
            a.raw
        );
    }
    let token = mint.admin_token();
    let admin = |m: Method, p: &str| http().request(m, url(p)).bearer_auth(&token);

    // Declared, not sent: the admin API answers from the length alone and closes, and a client
    // still writing 2 MiB then fails with a broken pipe before it reads the answer (seen once).
    let oversize = format!(
        "POST /admin/v1/allowances/metered HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{{",
        2 * 1024 * 1024
    );
    let (status, body) = raw(&host(&mint.admin_url), oversize.as_bytes());
    assert_eq!(status, 413, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(body["code"], 41300, "{body}");

    let a = send(
        admin(Method::POST, "/admin/v1/allowances/metered").json(&json!({"amount": u64::MAX})),
    )
    .await;
    assert_error("an allowance of u64::MAX", &a, 400, MALFORMED_REQUEST);
    let a = send(
        admin(Method::POST, "/admin/v1/allowances/metered")
            .header("content-type", "application/json")
            .body(r#"{"amount": 18446744073709551616}"#),
    )
    .await;
    assert_error("an allowance of 2^64", &a, 400, MALFORMED_REQUEST);

    let (s, v) = mint
        .admin(
            Method::POST,
            "/admin/v1/allowances/metered",
            Some(json!({"amount": 100, "max_per_draw": 10, "max_per_day": 50})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let a = send(
        admin(Method::POST, &format!("/admin/v1/allowances/{id}/topup"))
            .json(&json!({"amount": u64::MAX})),
    )
    .await;
    assert_error("a top-up of u64::MAX", &a, 400, MALFORMED_REQUEST);
    let a = send(
        admin(Method::POST, &format!("/admin/v1/allowances/{id}/withdraw"))
            .json(&json!({"invoice": "lnbc1garbage"})),
    )
    .await;
    assert_eq!(a.status, 400, "malformed BOLT11 withdraw: {}", a.raw);
    let a = send(admin(
        Method::GET,
        "/admin/v1/allowances/al000000000000000000000000",
    ))
    .await;
    assert_error("an unknown allowance", &a, 404, NOT_FOUND);

    let (s, v) = mint.admin(Method::GET, "/admin/v1/allowances", None).await;
    assert_eq!((s, v.as_array().map(Vec::len)), (200, Some(1)), "{v}");
}

// ---------------------------------------------------------------------------------------------
// The paywall gateway

struct Gateway {
    _upstream: tokio::task::JoinHandle<()>,
    process: ServiceProcess,
    data: std::path::PathBuf,
    pubkey: PublicKey,
}

async fn gateway(mint: &MintProcess, dir: &Path) -> Gateway {
    use axum::routing::{get, post};
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/data",
            get(|| async { "the upstream's data" }).post(|| async { "posted" }),
        )
        .route("/locked", get(|| async { "locked data" }))
        .route("/health", get(|| async { "ok" }))
        .route(
            "/echo",
            post(|body: String| async move { body.len().to_string() }),
        );
    let handle = tokio::spawn(async move {
        let _ = axum::serve(upstream, app).await;
    });
    let data = dir.join("gateway-data");
    let pubkey = merchant_cli(&data, &["pubkey"]);
    let pubkey: PublicKey = pubkey["pubkey"]
        .as_str()
        .or(pubkey.as_str())
        .unwrap()
        .parse()
        .unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nupstream = \"http://{upstream_addr}\"\ndata_dir = \"{}\"\n\
             mints = [\"{}\"]\nunpriced = \"free\"\nbody_limit_bytes = 65536\n\
             header_read_timeout_secs = {HEADER_TIMEOUT_SECS}\n\n\
             [[price]]\npath_prefix = \"/data\"\namount = 5\nunit = \"sat\"\n\n\
             [[price]]\npath_prefix = \"/locked\"\namount = 5\nunit = \"sat\"\nlock = true\n",
            data.display(),
            mint.url
        ),
    )
    .unwrap();
    let process = ServiceProcess::start(
        &workspace_binary("paywall-gateway"),
        &["--config", config.to_str().unwrap()],
        dir.join("gateway.log"),
    );
    Gateway {
        _upstream: handle,
        process,
        data,
        pubkey,
    }
}

async fn paid_get(url: &str, token: &str) -> Answer {
    send(http().get(url).header("X-Cashu", token)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_requests_to_the_paywall_gateway_get_clear_4xx_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let foreign = MintProcess::start(&dir.path().join("foreign"), "");
    let agent = wallet(&mint.url, &dir.path().join("agent")).await;
    fund(&agent, 200).await;
    let gw = gateway(&mint, dir.path()).await;
    let base = gw.process.url.clone();
    let data = format!("{base}/data");
    let addr = host(&base);

    // Oversized and numerous headers, an oversized body (declared), slow clients.
    let (status, _) = raw(&addr, &huge_header("/data", "X-Cashu", 512 * 1024));
    assert_eq!(status, 431);
    let (status, _) = raw(&addr, &many_headers("/data", 500));
    assert_eq!(status, 431);
    let garbage = format!("cashuB{}", "A".repeat(20 * 1024));
    let a = paid_get(&data, &garbage).await;
    assert_error("a 20 KiB garbage token", &a, 400, 40201);
    let token = send_token(&agent, 5, None).await;
    let a = send(
        http()
            .post(&data)
            .header("X-Cashu", &token)
            .body(vec![b'x'; 128 * 1024]),
    )
    .await;
    assert_error("a body over the limit", &a, 413, BODY_TOO_LARGE);
    slow_clients(&addr, None, &format!("{base}/health")).await;

    // Overflowing amounts: a token whose proofs claim u64::MAX.
    let mut t = Token::from_str_checked(&token);
    if let Token::TokenV4(v4) = &mut t {
        for part in &mut v4.token {
            for p in &mut part.proofs {
                p.amount = Amount::from(u64::MAX);
            }
        }
    }
    let a = paid_get(&data, &t.to_string()).await;
    assert!(
        a.status == 400 || a.status == 402,
        "a token claiming u64::MAX: {}",
        a.raw
    );
    assert!(
        [40201u64, 40204, 40208].contains(&a.body["code"].as_u64().unwrap_or(0)),
        "{}",
        a.raw
    );

    // Unknown unit.
    let mut t = Token::from_str_checked(&token);
    if let Token::TokenV4(v4) = &mut t {
        v4.unit = cdk::nuts::CurrencyUnit::Custom("xyz".into());
    }
    let a = paid_get(&data, &t.to_string()).await;
    assert_error("a token in an unknown unit", &a, 400, 40203);

    // A foreign mint's token.
    let stranger = wallet(&foreign.url, &dir.path().join("stranger")).await;
    fund(&stranger, 20).await;
    let foreign_token = send_token(&stranger, 5, None).await;
    let a = paid_get(&data, &foreign_token).await;
    assert_error("a foreign mint's token", &a, 400, 40202);

    // Locks that expire too soon (the payer could take the token back before the merchant
    // redeems it), or never lock at all.
    let soon = unix_now() + 30;
    let refund = vec![SecretKey::generate().public_key()];
    for (what, conditions) in [
        (
            "a lock expiring in 30 s with a refund key",
            Conditions::new(Some(soon), None, Some(refund), None, None, None),
        ),
        (
            "a lock expiring in 30 s without a refund key",
            Conditions::new(Some(soon), None, None, None, None, None),
        ),
    ] {
        let t = send_token(&agent, 5, Some((gw.pubkey, conditions.unwrap()))).await;
        let a = paid_get(&format!("{base}/locked"), &t).await;
        assert_error(what, &a, 400, 40205);
    }

    // Replayed: served once, refused the second time.
    let a = paid_get(&data, &token).await;
    assert_eq!(a.status, 200, "{}", a.raw);
    let a = paid_get(&data, &token).await;
    assert_error("a replayed token", &a, 400, 40207);

    // The gateway still serves, and holds exactly the one payment.
    let good = send_token(&agent, 5, None).await;
    let a = paid_get(&data, &good).await;
    assert_eq!(a.status, 200, "{}", a.raw);
    gw.process.kill();
    assert_eq!(merchant_balance(&gw.data), 10);
}

async fn send_token(
    w: &cdk::wallet::Wallet,
    amount: u64,
    lock: Option<(PublicKey, Conditions)>,
) -> String {
    let options = SendOptions {
        conditions: lock.map(|(pk, c)| SpendingConditions::new_p2pk(pk, Some(c))),
        include_fee: true,
        ..Default::default()
    };
    w.prepare_send(Amount::from(amount), options)
        .await
        .unwrap()
        .confirm(None)
        .await
        .unwrap()
        .to_string()
}

trait TokenExt {
    fn from_str_checked(s: &str) -> Token;
}

impl TokenExt for Token {
    fn from_str_checked(s: &str) -> Token {
        s.parse().unwrap()
    }
}
