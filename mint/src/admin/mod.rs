//! The admin API and the web page for humans, on their own listener (default 127.0.0.1:3339).
//!
//! Every route but the login form needs the admin token: `Authorization: Bearer <token>`, or the
//! session cookie the login form sets. A missing or wrong token gets `401` with an empty body.
//! Each call is logged (method, route, status, how it was authenticated), never a secret.
//!
//! | method | path | body → answer |
//! |---|---|---|
//! | GET | `/admin/v1/allowances` | → `[AllowanceView]` |
//! | POST | `/admin/v1/allowances/prepaid` | `CreatePrepaid` → `AllowanceView` (invoice in `fundings`) |
//! | POST | `/admin/v1/allowances/metered` | `CreateMetered` → `AllowanceView` with the `credential` (shown once) |
//! | GET | `/admin/v1/allowances/{id}` | → `AllowanceView` (prepaid: the `token`, once, when first seen paid) |
//! | POST | `/admin/v1/allowances/{id}/topup` | `TopUp` → `AllowanceView` (a new invoice) |
//! | POST | `/admin/v1/allowances/{id}/revoke` | → `AllowanceView` |
//! | POST | `/admin/v1/allowances/{id}/withdraw` | `Withdraw` → `AllowanceView` |
//! | GET | `/admin/v1/books` | → the mint's books |
//! | GET | `/admin/v1/qr.svg?data=TEXT` | → a QR code of TEXT as SVG |
//!
//! Types: `cashu_402::allowance`. Errors: `{"detail", "code"}` (`shared/src/error_body.rs`).

pub mod api;
pub mod qr;
pub mod token;
pub mod web;

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::allowance::Allowances;
pub use token::{AdminToken, TokenSource};

/// Largest admin request body.
const BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct AdminState {
    pub allowances: Allowances,
    pub token: AdminToken,
    pub cookie_secure: bool,
}

/// The whole admin listener: API, web page, auth and the call log.
pub fn router(state: AdminState) -> Router {
    let protected = api::routes()
        .merge(web::protected_routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state.clone());
    protected
        .merge(web::public_routes().with_state(state))
        .layer(middleware::from_fn(log_call))
        .layer(middleware::from_fn(crate::allowance::unconstrained))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(120),
        ))
        .layer(middleware::map_response(limits_as_json))
}

/// The body limit and the timeout answer in plain text; give them the JSON error body every
/// other admin answer has (no admin handler answers 413 or 408 itself).
async fn limits_as_json(response: Response) -> Response {
    use cashu_402::error_body::{codes, ErrorBody};
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => (
            StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(ErrorBody::new(
                codes::BODY_TOO_LARGE,
                "Request body too large",
            )),
        )
            .into_response(),
        StatusCode::REQUEST_TIMEOUT => (
            StatusCode::REQUEST_TIMEOUT,
            axum::Json(ErrorBody::new(codes::TIMEOUT, "Request timed out")),
        )
            .into_response(),
        _ => response,
    }
}

/// How a request proved it may use the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Bearer,
    Cookie,
}

pub fn authenticate(state: &AdminState, headers: &HeaderMap) -> Option<Auth> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return state.token.verify(token.trim()).then_some(Auth::Bearer);
    }
    let session = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == token::COOKIE)
        .map(|(_, value)| value.to_string())?;
    state.token.verify_session(&session).then_some(Auth::Cookie)
}

async fn require_token(
    State(state): State<AdminState>,
    mut request: Request,
    next: Next,
) -> Response {
    match authenticate(&state, request.headers()) {
        Some(auth) => {
            request.extensions_mut().insert(auth);
            next.run(request).await
        }
        None => unauthorized(),
    }
}

/// `401`, nothing more.
pub fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
    )
        .into_response()
}

/// One log line per admin call: method, route template, status, time. No headers, no bodies,
/// no query strings (they may carry tokens, invoices or credentials).
async fn log_call(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let path = route.unwrap_or_else(|| crate::http::log_path(request.uri().path()));
    let start = Instant::now();
    let response = next.run(request).await;
    tracing::info!(target: "allowance_mint::admin", %method, route = %path,
        status = response.status().as_u16(), ms = start.elapsed().as_millis() as u64, "admin call");
    response
}
