//! One 402 offering several schemes: the choice rule, L402 paid by melting (with the credential
//! cached and reused until refused), x402-cashu credentials, melt outcomes, and unsupported
//! offers reported. The L402 invoices come from the fake Lightning backend's invoice maker, so
//! the mint "pays" them without a preimage (`L402 <macaroon>:`); this test merchant accepts a
//! credential for a macaroon it issued and has not revoked. Real preimages need the simulated
//! Lightning network (end-to-end tests).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_wallet::cashu_402::l402::{L402Challenge, L402Credential};
use agent_wallet::cashu_402::x402::{
    PaymentPayload, PaymentRequired, PaymentRequirements, X402Version,
};
use agent_wallet::cashu_402::{Challenge, SchemeKind, X_CASHU};
use agent_wallet::{AgentWallet, Outcome, PayRequest, Policy, WalletError, WalletOptions};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use cdk::nuts::CurrencyUnit;
use cdk::wallet::{ReceiveOptions, Wallet};
use cdk::Amount;

use crate::support::*;

/// What the multi-scheme merchant offers.
#[derive(Clone, Copy, Default)]
struct Offers {
    cashu: bool,
    l402: bool,
    x402_v2: bool,
    x402_v1: bool,
    /// An x402 `exact` entry on an EVM network (never payable here).
    evm: bool,
    /// The Cashu offers name a mint the agent holds nothing at.
    foreign_mint: bool,
}

/// How the fake backend treats the L402 invoices (its JSON description convention).
#[derive(Clone, Copy)]
enum Melt {
    Paid,
    Failed,
    /// The backend keeps reporting the payment pending.
    Pending,
}

struct Shop {
    offers: Offers,
    price: u64,
    challenge: Challenge,
    wallet: Wallet,
    melt: Mutex<Melt>,
    issued: Mutex<HashSet<String>>,
    /// Schemes of the credentials accepted, in order.
    accepted: Mutex<Vec<&'static str>>,
}

fn invoice(price: u64, melt: Melt) -> String {
    let (pay, check) = match melt {
        Melt::Paid => ("PAID", "PAID"),
        Melt::Failed => ("FAILED", "FAILED"),
        Melt::Pending => ("PENDING", "PENDING"),
    };
    let description = format!(
        r#"{{"pay_invoice_state":"{pay}","check_payment_state":"{check}","pay_err":false,"check_err":false}}"#
    );
    cdk_fake_wallet::create_fake_invoice(price * 1000, description).to_string()
}

async fn shop(State(s): State<Arc<Shop>>, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(auth) = header("authorization") {
        if let Ok(c) = L402Credential::parse(auth) {
            if s.issued.lock().unwrap().contains(&c.macaroons[0]) {
                s.accepted.lock().unwrap().push("l402");
                return (StatusCode::OK, "paid by l402").into_response();
            }
            return refuse(&s, StatusCode::UNAUTHORIZED, uri.path());
        }
    }
    let token = if let Some(t) = header(X_CASHU) {
        Some(("cashu", t.to_string()))
    } else if let Some(p) = header("payment-signature").or(header("x-payment")) {
        let payload = PaymentPayload::from_header(p).unwrap();
        Some(("x402-cashu", payload.cashu_token().unwrap().to_string()))
    } else {
        None
    };
    match token {
        Some((scheme, token)) => match s.wallet.receive(&token, ReceiveOptions::default()).await {
            Ok(got) if u64::from(got) >= s.price => {
                s.accepted.lock().unwrap().push(scheme);
                (StatusCode::OK, format!("paid by {scheme}")).into_response()
            }
            _ => refuse(&s, StatusCode::BAD_REQUEST, uri.path()),
        },
        None => refuse(&s, StatusCode::PAYMENT_REQUIRED, uri.path()),
    }
}

fn refuse(s: &Shop, status: StatusCode, path: &str) -> Response {
    let mut body = serde_json::json!({"detail": "pay", "code": 40200});
    if s.offers.x402_v1 {
        let entry =
            PaymentRequirements::for_cashu(&s.challenge, X402Version::V1, Some(path), 60).unwrap();
        body["x402Version"] = 1.into();
        body["accepts"] = serde_json::json!([entry]);
    }
    let mut r = (status, axum::Json(body)).into_response();
    let h = r.headers_mut();
    if s.offers.cashu {
        h.insert(X_CASHU, s.challenge.encode().unwrap().parse().unwrap());
    }
    if s.offers.l402 {
        let token = format!("AgE{}", s.issued.lock().unwrap().len());
        s.issued.lock().unwrap().insert(token.clone());
        let c = L402Challenge::new(token, invoice(s.price, *s.melt.lock().unwrap()));
        h.append("www-authenticate", "Basic realm=\"x\"".parse().unwrap());
        h.append("www-authenticate", c.encode().parse().unwrap());
    }
    if s.offers.x402_v2 || s.offers.evm {
        let mut accepts = Vec::new();
        if s.offers.evm {
            accepts.push(
                serde_json::from_value(serde_json::json!({
                "scheme": "exact", "network": "eip155:8453", "amount": "10000",
                "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "payTo": "0x1",
                "maxTimeoutSeconds": 60}))
                .unwrap(),
            );
        }
        if s.offers.x402_v2 {
            accepts.push(
                PaymentRequirements::for_cashu(&s.challenge, X402Version::V2, None, 60).unwrap(),
            );
        }
        let pr = PaymentRequired {
            x402_version: 2,
            error: None,
            resource: None,
            accepts,
            extensions: None,
        };
        h.insert("payment-required", pr.to_header().parse().unwrap());
    }
    r
}

struct Running {
    url: String,
    state: Arc<Shop>,
}

impl Running {
    fn at(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("{}{path}", self.url)).unwrap()
    }
    fn accepted(&self) -> Vec<&'static str> {
        self.state.accepted.lock().unwrap().clone()
    }
    fn revoke_all(&self) {
        self.state.issued.lock().unwrap().clear();
    }
}

async fn start_shop(mint: &TestMint, offers: Offers, melt: Melt) -> Running {
    let price = 5;
    let state = Arc::new(Shop {
        offers,
        price,
        challenge: Challenge::new(
            Amount::from(price),
            CurrencyUnit::Sat,
            if offers.foreign_mint {
                "http://127.0.0.1:9".parse().unwrap()
            } else {
                mint.mint_url.clone()
            },
        ),
        wallet: cdk_wallet(mint).await,
        melt: Mutex::new(melt),
        issued: Mutex::new(HashSet::new()),
        accepted: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/{*path}", any(shop))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Running { url, state }
}

async fn agent_with(mint: &TestMint, dir: &std::path::Path, schemes: &[SchemeKind]) -> AgentWallet {
    agent_with_deadline(mint, dir, schemes, Duration::from_secs(20)).await
}

async fn agent_with_deadline(
    mint: &TestMint,
    dir: &std::path::Path,
    schemes: &[SchemeKind],
    melt_deadline: Duration,
) -> AgentWallet {
    let mut options = WalletOptions::new(dir);
    options.policy = Some(Policy {
        schemes: schemes.to_vec(),
        ..Policy::default()
    });
    options.melt_deadline = melt_deadline;
    let agent = AgentWallet::open_with(options).await.unwrap();
    agent
        .receive(&funding_token(mint, 100).await)
        .await
        .unwrap();
    agent
}

const ALL: Offers = Offers {
    cashu: true,
    l402: true,
    x402_v2: true,
    x402_v1: true,
    evm: true,
    foreign_mint: false,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashu_offer_at_a_mint_the_agent_does_not_use_falls_through_to_l402() {
    let mint = start_mint().await;
    let offers = Offers {
        foreign_mint: true,
        ..ALL
    };
    let shop = start_shop(&mint, offers, Melt::Paid).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(&mint, dir.path(), &SchemeKind::DEFAULT_ORDER).await;
    let answer = agent.fetch(PayRequest::get(shop.at("/a"))).await.unwrap();
    assert_eq!(answer.response.text(), "paid by l402");
    assert_eq!(answer.payment.unwrap().scheme, "l402");

    // Without L402 in the policy nothing is payable, and every reason is named.
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(
        &mint,
        dir.path(),
        &[SchemeKind::Cashu, SchemeKind::X402Cashu],
    )
    .await;
    let err = agent
        .fetch(PayRequest::get(shop.at("/a")))
        .await
        .unwrap_err();
    let WalletError::NotPayable { reason, .. } = err else {
        panic!("expected NotPayable");
    };
    for part in [
        "cashu: ",
        "x402-cashu: ",
        "l402: not in the policy's schemes",
        "exact on eip155:8453",
    ] {
        assert!(reason.contains(part), "{part} in {reason}");
    }
    assert_eq!(agent.balances().await.unwrap().total, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_scheme_offered_the_default_rule_pays_cashu() {
    let mint = start_mint().await;
    let shop = start_shop(&mint, ALL, Melt::Paid).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(&mint, dir.path(), &SchemeKind::DEFAULT_ORDER).await;
    let answer = agent
        .fetch(PayRequest::get(shop.at("/api/a")))
        .await
        .unwrap();
    assert_eq!(answer.response.text(), "paid by cashu");
    assert_eq!(answer.payment.unwrap().scheme, "cashu");
    assert_eq!(shop.accepted(), vec!["cashu"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x402_cashu_is_paid_with_payment_signature_or_x_payment() {
    let mint = start_mint().await;
    for (offers, what) in [
        (
            Offers {
                x402_v2: true,
                evm: true,
                ..Offers::default()
            },
            "v2",
        ),
        (
            Offers {
                x402_v1: true,
                ..Offers::default()
            },
            "v1",
        ),
    ] {
        let shop = start_shop(&mint, offers, Melt::Paid).await;
        let dir = tempfile::tempdir().unwrap();
        let agent = agent_with(&mint, dir.path(), &SchemeKind::DEFAULT_ORDER).await;
        let answer = agent.fetch(PayRequest::get(shop.at("/x"))).await.unwrap();
        assert_eq!(answer.response.text(), "paid by x402-cashu", "{what}");
        let row = answer.payment.unwrap();
        assert_eq!(
            (row.scheme.as_str(), row.amount, row.outcome),
            ("x402-cashu", 5, Outcome::Paid)
        );
        assert_eq!(agent.balances().await.unwrap().total, 95);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l402_is_paid_by_melting_and_the_credential_is_reused_until_refused() {
    let mint = start_mint().await;
    let shop = start_shop(&mint, ALL, Melt::Paid).await;
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(&mint, dir.path(), &[SchemeKind::L402, SchemeKind::Cashu]).await;

    let answer = agent
        .fetch(PayRequest::get(shop.at("/api/a")))
        .await
        .unwrap();
    assert_eq!(answer.response.text(), "paid by l402");
    let row = answer.payment.unwrap();
    assert_eq!(
        (row.scheme.as_str(), row.amount, row.outcome),
        ("l402", 5, Outcome::Paid)
    );
    assert!(row.fee >= 1, "the Lightning fee is recorded: {row:?}");
    let after_first = agent.balances().await.unwrap().total;
    assert_eq!(after_first, 100 - row.cost());

    // Same origin and directory: the cached credential is sent, nothing is paid.
    let answer = agent
        .fetch(PayRequest::get(shop.at("/api/b")))
        .await
        .unwrap();
    assert_eq!(answer.response.status, 200);
    assert!(answer.payment.is_none());
    assert_eq!(agent.balances().await.unwrap().total, after_first);

    // The server stops honouring it: 401, the cache entry goes, the wallet pays again.
    shop.revoke_all();
    let answer = agent
        .fetch(PayRequest::get(shop.at("/api/c")))
        .await
        .unwrap();
    assert_eq!(answer.response.text(), "paid by l402");
    assert!(answer.payment.is_some());
    let l402_rows = agent
        .ledger()
        .unwrap()
        .iter()
        .filter(|r| r.scheme == "l402")
        .count();
    assert_eq!(l402_rows, 2);
    assert_eq!(shop.accepted(), vec!["l402", "l402", "l402"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fee_reserve_counts_against_the_per_request_cap() {
    let mint = start_mint().await;
    let shop = start_shop(
        &mint,
        Offers {
            l402: true,
            ..Offers::default()
        },
        Melt::Paid,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut options = WalletOptions::new(dir.path());
    options.policy = Some(Policy {
        max_per_request: Some(5),
        ..Policy::default()
    });
    let agent = AgentWallet::open_with(options).await.unwrap();
    agent
        .receive(&funding_token(&mint, 100).await)
        .await
        .unwrap();
    let err = agent
        .fetch(PayRequest::get(shop.at("/a")))
        .await
        .unwrap_err();
    assert!(matches!(err, WalletError::PolicyRefused { .. }), "{err}");
    assert_eq!(agent.balances().await.unwrap().total, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_melt_returns_the_ecash_and_counts_nothing() {
    let mint = start_mint().await;
    let shop = start_shop(
        &mint,
        Offers {
            l402: true,
            ..Offers::default()
        },
        Melt::Failed,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(&mint, dir.path(), &SchemeKind::DEFAULT_ORDER).await;
    let err = agent
        .fetch(PayRequest::get(shop.at("/a")))
        .await
        .unwrap_err();
    assert!(matches!(err, WalletError::PaymentFailed { .. }), "{err}");
    assert_eq!(
        agent.balances().await.unwrap().total,
        100,
        "proofs returned"
    );
    let row = agent.ledger().unwrap().pop().unwrap();
    assert_eq!(
        (row.scheme.as_str(), row.outcome, row.counted),
        ("l402", Outcome::Failed, false)
    );
    assert!(shop.accepted().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_melt_still_pending_at_the_deadline_stays_in_the_outbox_across_a_restart() {
    let mint = start_mint().await;
    let offers = Offers {
        l402: true,
        ..Offers::default()
    };
    let shop = start_shop(&mint, offers, Melt::Pending).await;
    let dir = tempfile::tempdir().unwrap();
    let deadline = Duration::from_secs(2);
    {
        let agent =
            agent_with_deadline(&mint, dir.path(), &SchemeKind::DEFAULT_ORDER, deadline).await;
        let err = agent
            .fetch(PayRequest::get(shop.at("/api/a")))
            .await
            .unwrap_err();
        let WalletError::PaymentFailed { reason, payment_id } = err else {
            panic!("expected PaymentFailed");
        };
        assert!(reason.contains("pending"), "{reason}");
        let row = agent.ledger().unwrap().pop().unwrap();
        assert_eq!(Some(row.id), payment_id);
        assert_eq!((row.outcome, row.counted), (Outcome::Pending, true));
    }
    // Reopened: recovery asks the mint about the quote. Whatever it says is recorded
    // consistently: unpaid → `failed`, not counted, every sat back; still pending → left in
    // the outbox, counted, proofs held. (Pending then paid is covered by the simulated
    // Lightning e2e tests.)
    let agent = AgentWallet::open(dir.path()).await.unwrap();
    let report = agent.recover().await.unwrap();
    let row = agent.ledger().unwrap().pop().unwrap();
    let balance = agent.balances().await.unwrap().total;
    match row.outcome {
        Outcome::Failed => {
            assert!(!row.counted, "{row:?}");
            assert_eq!(balance, 100, "every sat came back");
            assert_eq!(report.still_pending, 0);
        }
        Outcome::Pending => {
            assert!(row.counted);
            assert!(balance < 100, "the proofs are held by the melt");
            assert_eq!(report.still_pending, 1, "{report:?}");
        }
        other => panic!("unexpected outcome {other} ({row:?})"),
    }
    assert!(shop.accepted().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_offers_and_schemes_left_out_by_policy_are_reported() {
    let mint = start_mint().await;
    let shop = start_shop(
        &mint,
        Offers {
            evm: true,
            l402: true,
            ..Offers::default()
        },
        Melt::Paid,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let agent = agent_with(&mint, dir.path(), &[SchemeKind::Cashu]).await;
    let err = agent
        .fetch(PayRequest::get(shop.at("/a")))
        .await
        .unwrap_err();
    let WalletError::NotPayable { reason, response } = err else {
        panic!("expected NotPayable");
    };
    assert!(reason.contains("x402 exact on eip155:8453"), "{reason}");
    assert!(
        reason.contains("l402: not in the policy's schemes"),
        "{reason}"
    );
    assert_eq!(response.status, 402);
    assert_eq!(agent.balances().await.unwrap().total, 100);
}
