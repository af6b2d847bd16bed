//! `paywall-gateway`: the paywall in front of any HTTP server.
//!
//! Every request is matched against the price table ([`pricing`]); a priced one must carry a
//! token that the paywall redeems before the request is forwarded ([`proxy`]); an unpriced one
//! is forwarded free or refused, as configured.

pub mod cli;
pub mod config;
pub mod pricing;
pub mod proxy;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::Router;
use cashu_402::error_body::codes;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::error::json_error;
use crate::l402::L402Options;
use crate::merchant::Merchant;
use crate::paywall::{Paywall, PaywallOptions, Schemes};
pub use config::{ConfigError, GatewayConfig, PriceRule, Unpriced};
pub use pricing::PriceTable;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot build the upstream HTTP client: {0}")]
    Client(String),
}

/// What the gateway's handler needs; cheap to clone.
#[derive(Clone)]
pub struct GatewayState {
    inner: Arc<Inner>,
}

struct Inner {
    paywall: Paywall,
    table: PriceTable,
    upstream: url::Url,
    client: reqwest::Client,
    unpriced: Unpriced,
    body_limit: usize,
}

impl GatewayState {
    /// The gateway for `config` (validated here) over `merchant`.
    pub fn new(config: &GatewayConfig, merchant: Merchant) -> Result<Self, GatewayError> {
        config.validate()?;
        let lock = config.lock;
        let options = PaywallOptions::new(config.mint_urls()?)
            .locked(lock)
            .require_dleq(config.require_dleq.unwrap_or(lock))
            .retry_after(Duration::from_secs(config.retry_after_secs))
            .redeem_timeout(Duration::from_secs(config.redeem_timeout_secs))
            .offline(config.offline)
            .offline_lock_margin(Duration::from_secs(config.offline_lock_margin_secs))
            .schemes(Schemes {
                cashu: config.cashu,
                l402: config.l402,
                x402: config.x402,
            })
            .l402(L402Options {
                service: config.l402_service.clone(),
                validity: Duration::from_secs(config.l402_validity_secs),
            });
        let paywall = Paywall::new(merchant, options);
        let table = PriceTable::new(config, &paywall)?;
        let timeout = Duration::from_secs(config.upstream_timeout_secs);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .build()
            .map_err(|e| GatewayError::Client(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                paywall,
                table,
                upstream: config.upstream_url()?,
                client,
                unpriced: config.unpriced,
                body_limit: config.body_limit_bytes,
            }),
        })
    }

    pub fn paywall(&self) -> &Paywall {
        &self.inner.paywall
    }
}

/// The gateway's router: every path and method goes through [`handle`].
pub fn router(state: GatewayState) -> Router {
    let body_limit = state.inner.body_limit;
    Router::new()
        .fallback(handle)
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(axum::middleware::from_fn(
            move |req: Request<Body>, next: axum::middleware::Next| {
                refuse_declared_oversize(body_limit, req, next)
            },
        ))
        .layer(TraceLayer::new_for_http())
}

/// A body declared (`Content-Length`) larger than the limit is refused before anything else,
/// with our JSON error; `RequestBodyLimitLayer` still cuts off a streamed body that grows past it.
async fn refuse_declared_oversize(
    limit: usize,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BODY_TOO_LARGE,
            "the request body is too large",
        );
    }
    next.run(req).await
}

/// Price, charge, forward.
async fn handle(State(state): State<GatewayState>, req: Request<Body>) -> Response {
    let s = &state.inner;
    if !pricing::canonical_path(req.uri().path()) {
        return json_error(
            StatusCode::BAD_REQUEST,
            codes::MALFORMED_REQUEST,
            "the path is not in canonical form",
        );
    }
    match s.table.find(req.method(), req.uri().path()) {
        Some(offer) => match s
            .paywall
            .authorize(offer, req.headers(), req.uri().path())
            .await
        {
            Ok(paid) => {
                tracing::info!(path = %req.uri().path(), value = %paid.value, unit = %paid.unit,
                    "paid request forwarded");
                proxy::forward(&s.client, &s.upstream, req).await
            }
            Err(e) => s.paywall.refusal(offer, &e, req.uri().path()).await,
        },
        None => match s.unpriced {
            Unpriced::Free => proxy::forward(&s.client, &s.upstream, req).await,
            Unpriced::Refuse => {
                json_error(StatusCode::NOT_FOUND, codes::NOT_FOUND, "no such route")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[tokio::test]
    async fn longest_prefix_wins_and_a_named_method_beats_any() {
        let dir = tempfile::tempdir().unwrap();
        let merchant = Merchant::open(dir.path()).await.unwrap();
        let config = GatewayConfig::from_toml(
            r#"
upstream = "http://127.0.0.1:1"
mints = ["http://127.0.0.1:2"]
[[price]]
path_prefix = "/api"
amount = 1
[[price]]
path_prefix = "/api/weather"
amount = 5
[[price]]
method = "POST"
path_prefix = "/api/weather"
amount = 7
[[price]]
path_prefix = "/locked"
amount = 3
lock = true
"#,
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let state = GatewayState::new(&config, merchant.clone()).unwrap();
        let t = &state.inner.table;
        let price = |m: Method, p: &str| t.find(&m, p).map(|o| u64::from(o.price.amount));
        assert_eq!(price(Method::GET, "/api/other"), Some(1));
        assert_eq!(price(Method::GET, "/api/weather/today"), Some(5));
        assert_eq!(price(Method::POST, "/api/weather"), Some(7));
        assert_eq!(price(Method::GET, "/free"), None);
        let locked = t.find(&Method::GET, "/locked").unwrap();
        assert_eq!(locked.lock, Some(merchant.pubkey()));
        assert!(locked.require_dleq);
        assert_eq!(t.find(&Method::GET, "/api").unwrap().lock, None);
    }
}
