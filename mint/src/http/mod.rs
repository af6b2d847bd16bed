//! The HTTP face of the mint: cdk-axum's Cashu v1 API plus `/health`, `/ready` and `/metrics`,
//! wrapped in the tower-http layers every answer goes through.

pub mod detach;
pub mod errors;
pub mod metrics;
pub mod quote_expiry;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use cashu_402::allowance::METHOD;
use cdk::Mint;
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::allowance::Allowances;
use crate::config::HttpConfig;
use crate::lightning::ActiveBackend;
use metrics::Metrics;

/// What the routes need.
#[derive(Clone)]
pub struct AppState {
    pub mint: Arc<Mint>,
    pub allowances: Allowances,
    pub backend: ActiveBackend,
    pub metrics: Metrics,
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("cannot build the Cashu router: {0}")]
    Cdk(String),
}

/// The whole public API, ready to serve.
pub async fn router(state: AppState, http: &HttpConfig) -> Result<Router, RouterError> {
    let cashu = cdk_axum::create_mint_router(
        state.mint.clone(),
        vec!["bolt11".to_string(), METHOD.to_string()],
    )
    .await
    .map_err(|e| RouterError::Cdk(e.to_string()))?;
    // Draws from metered allowances: the standard custom-method quote route, answered by us
    // (the static path wins over cdk-axum's `{method}` one); and the agent's signed status.
    let draws = Router::new()
        .route(
            &format!("/v1/mint/quote/{METHOD}"),
            post(crate::allowance::draw::handler),
        )
        .route(
            cashu_402::allowance_status::STATUS_PATH,
            post(crate::allowance::status::handler),
        )
        .route_layer(middleware::from_fn(crate::allowance::unconstrained))
        .with_state(state.allowances.clone());
    let ops = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(state.clone())
        .route(
            "/metrics",
            get(metrics::handler).with_state((state.metrics.clone(), state.allowances.clone())),
        );
    let app = cashu
        .merge(ops)
        .merge(draws)
        .route_layer(middleware::from_fn(detach::detached))
        .route_layer(middleware::from_fn_with_state(
            quote_expiry::ExpiryGuard {
                mint: state.mint.clone(),
                body_limit: http.body_limit_bytes,
            },
            quote_expiry::refuse_expired_melts,
        ))
        .route_layer(middleware::from_fn_with_state(state.metrics.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(http.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(http.request_timeout_secs),
        ))
        .layer(middleware::from_fn(errors::normalize_errors))
        .layer(
            // One line per answered request (status, latency) at INFO; headers and bodies are
            // never logged, since they may carry tokens.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    tracing::info_span!("http", method = %req.method(), path = %log_path(req.uri().path()))
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                .on_failure(DefaultOnFailure::new().level(Level::WARN)),
        );
    Ok(app)
}

async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers. The backend is named so a fake mint is never mistaken.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.mint.mint_info().await {
        Ok(_) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "lightning_backend": state.backend.name() })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not ready" })),
            )
        }
    }
}

/// The request path as logged: quote ids are bearer secrets for whoever holds them (they let
/// one mint a paid quote), so they are replaced by a placeholder. Query strings are never logged.
pub fn log_path(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["", "v1", kind @ ("mint" | "melt"), "quote", method, _id] => {
            format!("/v1/{kind}/quote/{method}/{{quote_id}}")
        }
        _ if path.len() > 200 => format!("{}...", &path[..path.floor_char_boundary_compat(200)]),
        _ => path.to_string(),
    }
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, index: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, index: usize) -> usize {
        (0..=index.min(self.len()))
            .rev()
            .find(|&i| self.is_char_boundary(i))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_ids_are_not_logged() {
        assert_eq!(
            log_path("/v1/mint/quote/bolt11/9f8e7d6c"),
            "/v1/mint/quote/bolt11/{quote_id}"
        );
        assert_eq!(
            log_path("/v1/melt/quote/bolt11/x"),
            "/v1/melt/quote/bolt11/{quote_id}"
        );
        assert_eq!(log_path("/v1/swap"), "/v1/swap");
        let long = format!("/{}", "é".repeat(300));
        assert!(log_path(&long).len() < 210);
    }
}
