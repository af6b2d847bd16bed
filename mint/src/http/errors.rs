//! The one place where answers become client-facing errors.
//!
//! cdk-axum already answers mint errors with a Cashu body (`{"detail", "code"}`, status 400).
//! Everything else a client can trigger (malformed JSON, wrong content type, unknown routes, an
//! oversize body, a timeout) comes out of axum or tower-http as plain text. This middleware turns
//! those into Cashu bodies too, keeps 5xx bodies free of internals, and logs what it hid.

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cashu_402::error_body::{codes, ErrorBody};

/// Largest error body we read back to rewrite it; axum's rejection texts are far smaller.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// cdk's catch-all code for errors it has no NUT code for.
const CDK_UNKNOWN: u32 = 50000;

/// Details that cdk sends under its catch-all code and that describe the client's request, not
/// the mint's internals; anything else under that code is replaced before it leaves.
const SAFE_UNKNOWN_DETAILS: &[&str] = &[
    "Unknown quote",
    "Invalid payment request",
    "Unknown payment state",
    "Payment backend error",
    "Amount overflow",
];

pub async fn normalize_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = crate::http::log_path(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, MAX_ERROR_BODY).await.unwrap_or_default();

    if let Ok(mut cashu) = serde_json::from_slice::<ErrorBody>(&bytes) {
        if cashu.code == CDK_UNKNOWN && !SAFE_UNKNOWN_DETAILS.contains(&cashu.detail.as_str()) {
            tracing::error!(%method, %path, detail = %cashu.detail, "internal error hidden from client");
            cashu.detail = "Internal error".into();
        }
        let mut out = Response::from_parts(
            parts,
            Body::from(serde_json::to_vec(&cashu).unwrap_or_default()),
        );
        out.headers_mut().remove(header::CONTENT_LENGTH);
        return out;
    }

    let text = String::from_utf8_lossy(&bytes);
    let (status, body) = classify(status, text.trim());
    if status.is_server_error() {
        tracing::error!(%method, %path, original = %text, "server error");
    }
    let mut out = (status, axum::Json(body)).into_response();
    // Keep headers such as Retry-After and Allow that the original answer carried.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out
}

/// Maps a plain-text error answer to its status and Cashu body.
fn classify(status: StatusCode, text: &str) -> (StatusCode, ErrorBody) {
    match status {
        // axum's JSON rejections: syntax (400), wrong shape (422), wrong content type (415).
        StatusCode::BAD_REQUEST
        | StatusCode::UNPROCESSABLE_ENTITY
        | StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            StatusCode::BAD_REQUEST,
            ErrorBody::new(codes::MALFORMED_REQUEST, malformed_detail(text)),
        ),
        StatusCode::NOT_FOUND => (
            StatusCode::NOT_FOUND,
            ErrorBody::new(codes::NOT_FOUND, "Not found"),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorBody::new(codes::METHOD_NOT_ALLOWED, "Method not allowed"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorBody::new(codes::BODY_TOO_LARGE, "Request body too large"),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            StatusCode::REQUEST_TIMEOUT,
            ErrorBody::new(codes::TIMEOUT, "Request timed out"),
        ),
        s if s.is_client_error() => (
            s,
            ErrorBody::new(codes::MALFORMED_REQUEST, malformed_detail(text)),
        ),
        s => (s, ErrorBody::new(codes::INTERNAL, "Internal error")),
    }
}

/// axum's rejection texts describe the client's input (e.g. "missing field `inputs`"), which
/// helps a client developer; cap the length so a huge input is not echoed back.
fn malformed_detail(text: &str) -> String {
    let text: String = text.chars().take(300).collect();
    if text.is_empty() {
        "Malformed request".into()
    } else {
        format!("Malformed request: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rejections_become_400_with_a_cashu_body() {
        for s in [
            StatusCode::BAD_REQUEST,
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ] {
            let (status, body) = classify(
                s,
                "Failed to parse the request body as JSON: expected value",
            );
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(body.code, codes::MALFORMED_REQUEST);
            assert!(body.detail.contains("expected value"));
        }
    }

    #[test]
    fn server_errors_say_nothing_internal() {
        let (status, body) = classify(StatusCode::INTERNAL_SERVER_ERROR, "db at /var/lib/x locked");
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body.detail, "Internal error");
    }

    #[test]
    fn echoed_input_is_capped() {
        let long = "x".repeat(10_000);
        assert!(malformed_detail(&long).len() < 400);
    }
}
