//! Refuses melts against expired quotes.
//!
//! cdk 0.18 records each melt quote's expiry and publishes it, but `Mint::melt` never compares it
//! with the clock: a wallet could pay an invoice at a fee reserve quoted long ago. NUT-05 says an
//! expired quote cannot be paid, so this route layer checks `POST /v1/melt/{method}` requests
//! before cdk sees them. Only unpaid quotes are refused; pending and paid ones are left to cdk,
//! which answers them by their state.

use std::str::FromStr;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cdk::error::ErrorResponse;
use cdk::nuts::MeltQuoteState;
use cdk::util::unix_time;
use cdk::Mint;
use cdk_common::QuoteId;

/// The mint, and the body limit that also bounds what this layer buffers.
#[derive(Clone)]
pub struct ExpiryGuard {
    pub mint: Arc<Mint>,
    pub body_limit: usize,
}

pub async fn refuse_expired_melts(
    State(guard): State<ExpiryGuard>,
    request: Request,
    next: Next,
) -> Response {
    if !is_melt(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, guard.body_limit).await {
        Ok(bytes) => bytes,
        // Too large or broken: let the inner layers answer it in their usual way.
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    if let Some(response) = check(&guard.mint, &bytes).await {
        return response;
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn is_melt(method: &Method, path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    method == Method::POST && matches!(segments.as_slice(), ["v1", "melt", m] if *m != "quote")
}

/// `Some(answer)` when the request names an unpaid quote whose expiry has passed.
async fn check(mint: &Mint, body: &[u8]) -> Option<Response> {
    // A body cdk cannot parse is cdk's to refuse; only a well-formed quote id is looked up.
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let id = QuoteId::from_str(value.get("quote")?.as_str()?).ok()?;
    let quote = match mint.localstore().get_melt_quote(&id).await {
        Ok(Some(quote)) => quote,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read melt quote to check its expiry");
            return None;
        }
    };
    let now = unix_time();
    if quote.state == MeltQuoteState::Unpaid && quote.expiry <= now {
        let body = ErrorResponse::from(cdk::Error::ExpiredQuote(quote.expiry, now));
        return Some((StatusCode::BAD_REQUEST, Json(body)).into_response());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_melt_executions_are_checked() {
        assert!(is_melt(&Method::POST, "/v1/melt/bolt11"));
        assert!(!is_melt(&Method::POST, "/v1/melt/quote/bolt11"));
        assert!(!is_melt(&Method::GET, "/v1/melt/bolt11"));
        assert!(!is_melt(&Method::POST, "/v1/mint/bolt11"));
        assert!(!is_melt(&Method::POST, "/v1/swap"));
    }
}
