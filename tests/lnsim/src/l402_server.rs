//! An aperture-like L402 server for tests: a third-party paid API whose invoices come from its
//! own node on the simulated network, not from our mint. Every path costs `price_sat`:
//!
//! - no credential: `402` with `WWW-Authenticate: L402 version="0", token="<macaroon>",
//!   invoice="<bolt11>"` (or the older `LSAT macaroon=...` form, or both, as aperture sends);
//! - `Authorization: L402 <macaroon>:<preimage>` (or `LSAT`): verifies the macaroon's signature
//!   and caveats (service, expiry) and `sha256(preimage) == payment_hash`, then `200`; a bad
//!   credential gets `401`. Credentials are reusable until they expire, as in L402.
//!
//! `GET /_fixture/stats` counts challenges, served requests and refusals, so tests can tell a
//! reused credential from a new payment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use cdk_common::bitcoin::hashes::{sha256, Hash};
use rand::RngCore;
use serde_json::json;

use crate::api::CreateInvoice;
use crate::client::NodeClient;
use crate::macaroon::{l402_identifier, Macaroon};

/// Which challenge headers the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HeaderStyle {
    /// `L402 version="0", token=..., invoice=...` (the current specification).
    L402,
    /// `LSAT macaroon=..., invoice=...` (the older form).
    Lsat,
    /// Both headers, as aperture sends.
    Both,
}

pub struct Fixture {
    pub node: NodeClient,
    pub service: String,
    pub price_sat: u64,
    pub header_style: HeaderStyle,
    /// How long a credential stays valid.
    pub valid_secs: u64,
    root: [u8; 32],
    challenges: AtomicU64,
    served: AtomicU64,
    refused: AtomicU64,
}

impl Fixture {
    pub fn new(node: NodeClient, service: &str, price_sat: u64, header_style: HeaderStyle) -> Self {
        let mut root = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut root);
        Self {
            node,
            service: service.to_string(),
            price_sat,
            header_style,
            valid_secs: 3600,
            root,
            challenges: AtomicU64::new(0),
            served: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }
}

pub fn router(fixture: Arc<Fixture>) -> Router {
    Router::new()
        .route("/_fixture/stats", get(stats))
        .fallback(paid)
        .with_state(fixture)
}

async fn stats(State(f): State<Arc<Fixture>>) -> impl IntoResponse {
    Json(json!({
        "challenges": f.challenges.load(Ordering::SeqCst),
        "served": f.served.load(Ordering::SeqCst),
        "refused": f.refused.load(Ordering::SeqCst),
    }))
}

async fn paid(State(f): State<Arc<Fixture>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    match credential(req.headers()) {
        None => challenge(&f, &path).await,
        Some(cred) => match verify(&f, &cred) {
            Ok(()) => {
                f.served.fetch_add(1, Ordering::SeqCst);
                Json(json!({ "paid": true, "service": f.service, "path": path })).into_response()
            }
            Err(reason) => {
                f.refused.fetch_add(1, Ordering::SeqCst);
                (StatusCode::UNAUTHORIZED, Json(json!({ "error": reason }))).into_response()
            }
        },
    }
}

/// `(macaroon, preimage)` from `Authorization: L402|LSAT <mac>[,<mac>...]:<hex preimage>`.
fn credential(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("L402") && !scheme.eq_ignore_ascii_case("LSAT") {
        return None;
    }
    let (tokens, preimage) = rest.trim().rsplit_once(':')?;
    let first = tokens.split(',').next()?.trim();
    Some((first.to_string(), preimage.trim().to_string()))
}

fn verify(f: &Fixture, (token, preimage): &(String, String)) -> Result<(), String> {
    let bytes = STANDARD
        .decode(token)
        .or_else(|_| URL_SAFE.decode(token))
        .or_else(|_| URL_SAFE_NO_PAD.decode(token))
        .map_err(|_| "the macaroon is not base64".to_string())?;
    let mac = Macaroon::decode(&bytes).map_err(|e| e.to_string())?;
    mac.verify(&f.root).map_err(|e| e.to_string())?;
    let now = now_secs();
    for caveat in &mac.caveats {
        let (key, value) = caveat
            .split_once('=')
            .ok_or_else(|| format!("malformed caveat {caveat:?}"))?;
        if key == "services"
            && !value
                .split(',')
                .any(|s| s.starts_with(&format!("{}:", f.service)))
        {
            return Err(format!("the credential is not for service {}", f.service));
        }
        if key == format!("{}_valid_until", f.service) {
            let until: u64 = value.parse().map_err(|_| "bad expiry caveat".to_string())?;
            if until <= now {
                return Err("the credential expired".into());
            }
        }
    }
    let preimage = hex::decode(preimage).map_err(|_| "the preimage is not hex".to_string())?;
    let hash = sha256::Hash::hash(&preimage).to_byte_array();
    if hash != mac.payment_hash().map_err(|e| e.to_string())? {
        return Err("the preimage does not match the invoice's payment hash".into());
    }
    Ok(())
}

async fn challenge(f: &Fixture, path: &str) -> Response {
    let invoice = match f
        .node
        .create_invoice(&CreateInvoice {
            amount_msat: f.price_sat * 1000,
            description: format!("{} {path}", f.service),
            expiry_secs: Some(f.valid_secs),
            behaviour: Default::default(),
        })
        .await
    {
        Ok(inv) => inv,
        Err(e) => {
            tracing::error!(error = %e, "cannot create an invoice");
            return (StatusCode::SERVICE_UNAVAILABLE, "no invoice").into_response();
        }
    };
    let mut hash = [0u8; 32];
    if hex::decode_to_slice(&invoice.payment_hash, &mut hash).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "bad invoice").into_response();
    }
    let mut token_id = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut token_id);
    let caveats = vec![
        format!("services={}:0", f.service),
        format!("{}_valid_until={}", f.service, now_secs() + f.valid_secs),
    ];
    let mac = Macaroon::new(
        &f.root,
        &f.service,
        l402_identifier(&hash, &token_id),
        &caveats,
    );
    let token = STANDARD.encode(mac.encode());
    f.challenges.fetch_add(1, Ordering::SeqCst);
    let mut headers = HeaderMap::new();
    let l402 = format!(
        "L402 version=\"0\", token=\"{token}\", invoice=\"{}\"",
        invoice.bolt11
    );
    let lsat = format!("LSAT macaroon=\"{token}\", invoice=\"{}\"", invoice.bolt11);
    let values = match f.header_style {
        HeaderStyle::L402 => vec![l402],
        HeaderStyle::Lsat => vec![lsat],
        HeaderStyle::Both => vec![lsat, l402],
    };
    for v in values {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.append(header::WWW_AUTHENTICATE, v);
        }
    }
    (
        StatusCode::PAYMENT_REQUIRED,
        headers,
        Json(json!({ "error": "payment required", "price_sat": f.price_sat })),
    )
        .into_response()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
