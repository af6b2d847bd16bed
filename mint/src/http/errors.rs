//! The one place where answers become client-facing errors.
//!
//! cdk-axum already answers mint errors with a Cashu body (`{"detail", "code"}`, status 400).
//! Everything else a client can trigger (malformed JSON, wrong content type, unknown routes, an
//! oversize body, a timeout) comes out of axum or tower-http as plain text. This middleware turns
//! those into Cashu bodies too, keeps 5xx bodies free of internals, and logs what it hid. It also
//! corrects the few cdk answers whose code misnames a client's mistake (see [`remap_cdk`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cashu_402::error_body::{codes, ErrorBody};
use futures::StreamExt;

/// Largest error body we read back to rewrite it; axum's rejection texts are far smaller.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// cdk's catch-all code for errors it has no NUT code for.
const CDK_UNKNOWN: u32 = 50000;

/// Details that cdk sends under its catch-all code and that describe the client's request, not
/// the mint's internals; anything else under that code is replaced before it leaves.
const SAFE_UNKNOWN_DETAILS: &[&str] = &[
    "Unknown quote",
    "Unknown payment state",
    "Payment backend error",
    "Amount overflow",
];

/// cdk's catch-all details that mean "your request body does not parse as this method's request"
/// (cdk-axum parses mint and melt bodies itself, after axum's JSON extractor accepted them), or
/// "this is not a payment request": the client's mistake, so they get our malformed code.
const CDK_MALFORMED_DETAILS: &[&str] = &["Invalid payment method", "Invalid payment request"];

/// cdk 0.18.3 sends an overflow of the amounts a client sent (inputs whose sum passes
/// `u64::MAX`) under its catch-all code; NUT-03 calls amounts that do not add up 11005.
const CDK_OVERFLOW_DETAILS: &[&str] = &["Amount Overflow"];
const TRANSACTION_UNBALANCED: u32 = 11005;

/// cdk 0.18.3 has no code for a failed HTLC (NUT-14) spend and sends these under its catch-all;
/// they are the client's witness failing, Cashu's 20008 "witness missing or invalid".
const CDK_WITNESS_DETAILS: &[&str] = &[
    "Secret is not a HTLC secret",
    "Locktime in past",
    "Invalid signature",
    "Hash required",
    "Hash is not valid",
    "Preimage does not match",
    "Preimage must be valid hex encoding",
    "Preimage must be exactly 32 bytes (64 hex characters)",
    "Witness did not provide signatures",
    "HTLC spend conditions are not met",
];
const WITNESS_MISSING_OR_INVALID: u32 = 20008;

/// Cashu's "blinded message already signed" (NUT-00), which cdk 0.18.3 does not send for outputs
/// it has seen before (see [`remap_cdk`]).
const BLINDED_MESSAGE_ALREADY_SIGNED: u32 = 11003;
const CDK_DUPLICATE_OUTPUTS: u32 = 11008;
const CDK_INVOICE_ALREADY_PAID: u32 = 20006;

/// Most request-body bytes kept to correct an answer afterwards; larger bodies are not corrected.
const MAX_RECORDED_BODY: usize = 1024 * 1024;

pub async fn normalize_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = crate::http::log_path(request.uri().path());
    let route = OutputsRoute::of(&method, request.uri().path());
    let quote_route = QuoteRoute::of(&method, request.uri().path());
    let (request, recorded) = match (route, quote_route) {
        (Some(_), _) | (_, Some(_)) => {
            let (request, recorded) = record_body(request);
            (request, Some(recorded))
        }
        (None, None) => (request, None),
    };
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, MAX_ERROR_BODY).await.unwrap_or_default();

    if let Ok(mut cashu) = serde_json::from_slice::<ErrorBody>(&bytes) {
        let request_body = recorded
            .and_then(|r| r.lock().ok().and_then(|mut b| b.take()))
            .unwrap_or_default();
        cashu = remap_cdk(route, cashu, &request_body);
        if let Some(detail) = quote_route
            .filter(|_| cashu.code == codes::MALFORMED_REQUEST)
            .and_then(|q| q.explain(&request_body))
        {
            cashu.detail = detail;
        }
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

/// Routes whose request carries blinded messages (`outputs`) that cdk may have seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputsRoute {
    /// `POST /v1/swap`
    Swap,
    /// `POST /v1/mint/{method}`
    Mint,
}

impl OutputsRoute {
    fn of(method: &Method, path: &str) -> Option<Self> {
        if method != Method::POST {
            return None;
        }
        let segments: Vec<&str> = path.split('/').collect();
        match segments.as_slice() {
            ["", "v1", "swap"] => Some(Self::Swap),
            ["", "v1", "mint", m] if *m != "quote" && !m.is_empty() => Some(Self::Mint),
            _ => None,
        }
    }
}

/// Quote routes whose malformed bodies cdk answers only with "Invalid payment method": we say
/// which field is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteRoute {
    /// `POST /v1/mint/quote/bolt11`
    MintBolt11,
    /// `POST /v1/melt/quote/bolt11`
    MeltBolt11,
}

impl QuoteRoute {
    fn of(method: &Method, path: &str) -> Option<Self> {
        match (method, path) {
            (&Method::POST, "/v1/mint/quote/bolt11") => Some(Self::MintBolt11),
            (&Method::POST, "/v1/melt/quote/bolt11") => Some(Self::MeltBolt11),
            _ => None,
        }
    }

    /// What is wrong with `body`, when it is one of the usual mistakes.
    fn explain(self, body: &[u8]) -> Option<String> {
        let request: serde_json::Value = serde_json::from_slice(body).ok()?;
        match self {
            Self::MintBolt11 => {
                let amount = request.get("amount")?;
                amount.as_u64().is_none().then(|| {
                    "Malformed request: `amount` must be a whole number of sat below 2^64".into()
                })
            }
            Self::MeltBolt11 => match request.get("request").and_then(|r| r.as_str()) {
                None => Some("Malformed request: `request` must be a BOLT11 invoice".into()),
                Some(invoice) => invoice
                    .trim()
                    .parse::<cdk::Bolt11Invoice>()
                    .is_err()
                    .then(|| "Malformed request: `request` is not a valid BOLT11 invoice".into()),
            },
        }
    }
}

/// Passes the request body through unchanged while keeping a copy (up to [`MAX_RECORDED_BODY`])
/// of what the handler read. The body limit inside still applies: nothing is read ahead of it.
fn record_body(request: Request) -> (Request, Arc<Mutex<Option<Vec<u8>>>>) {
    let recorded = Arc::new(Mutex::new(Some(Vec::new())));
    let sink = recorded.clone();
    let (parts, body) = request.into_parts();
    let stream = body.into_data_stream().inspect(move |chunk| {
        if let (Ok(chunk), Ok(mut kept)) = (chunk, sink.lock()) {
            let fits = kept
                .as_ref()
                .is_some_and(|k| k.len() + chunk.len() <= MAX_RECORDED_BODY);
            match kept.as_mut() {
                Some(k) if fits => k.extend_from_slice(chunk),
                _ => *kept = None,
            }
        }
    });
    (
        Request::from_parts(parts, Body::from_stream(stream)),
        recorded,
    )
}

/// Corrects cdk 0.18.3 answers whose code misnames what the client did.
///
/// - Outputs the mint has already signed: cdk's swap answers "Duplicate outputs" (11008), its mint
///   "Invoice already paid or pending" (20006), because both only see the database refuse the
///   blinded messages a second time. Cashu's code for it is 11003. Outputs repeated within one
///   request are cdk's check before any database work, and keep 11008.
/// - Mint and melt bodies that parse as JSON but not as the method's request come back as cdk's
///   catch-all 50000 "Invalid payment method" / "Invalid payment request": a malformed request.
fn remap_cdk(route: Option<OutputsRoute>, cashu: ErrorBody, request_body: &[u8]) -> ErrorBody {
    let seen_before = matches!(
        (route, cashu.code, cashu.detail.as_str()),
        (
            Some(OutputsRoute::Swap),
            CDK_DUPLICATE_OUTPUTS,
            "Duplicate outputs"
        ) | (
            Some(OutputsRoute::Mint),
            CDK_INVOICE_ALREADY_PAID,
            "Invoice already paid or pending"
        )
    );
    if seen_before && outputs_are_distinct(request_body) {
        return ErrorBody::new(
            BLINDED_MESSAGE_ALREADY_SIGNED,
            "Blinded Message is already signed",
        );
    }
    if cashu.code == CDK_UNKNOWN && CDK_MALFORMED_DETAILS.contains(&cashu.detail.as_str()) {
        return ErrorBody::new(codes::MALFORMED_REQUEST, cashu.detail);
    }
    if cashu.code == CDK_UNKNOWN && CDK_OVERFLOW_DETAILS.contains(&cashu.detail.as_str()) {
        return ErrorBody::new(
            TRANSACTION_UNBALANCED,
            "Amounts overflow: the request's amounts do not add up",
        );
    }
    if cashu.code == CDK_UNKNOWN && CDK_WITNESS_DETAILS.contains(&cashu.detail.as_str()) {
        return ErrorBody::new(WITNESS_MISSING_OR_INVALID, cashu.detail);
    }
    cashu
}

/// True when `body` is a request with at least one output and no blinded message twice.
fn outputs_are_distinct(body: &[u8]) -> bool {
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let Some(outputs) = request.get("outputs").and_then(|o| o.as_array()) else {
        return false;
    };
    let secrets: Option<Vec<&str>> = outputs
        .iter()
        .map(|o| o.get("B_").and_then(|b| b.as_str()))
        .collect();
    match secrets {
        Some(s) if !s.is_empty() => s.iter().collect::<HashSet<_>>().len() == s.len(),
        _ => false,
    }
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

    fn swap_body(secrets: &[&str]) -> Vec<u8> {
        let outputs: Vec<_> = secrets
            .iter()
            .map(|b| serde_json::json!({"amount": 1, "id": "00ffd48b8f5ecf80", "B_": b}))
            .collect();
        serde_json::json!({"inputs": [], "outputs": outputs})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn outputs_signed_before_get_11003_on_swap_and_mint() {
        let body = swap_body(&["02aa", "02bb"]);
        let swap = remap_cdk(
            Some(OutputsRoute::Swap),
            ErrorBody::new(CDK_DUPLICATE_OUTPUTS, "Duplicate outputs"),
            &body,
        );
        assert_eq!(swap.code, BLINDED_MESSAGE_ALREADY_SIGNED);
        let mint = remap_cdk(
            Some(OutputsRoute::Mint),
            ErrorBody::new(CDK_INVOICE_ALREADY_PAID, "Invoice already paid or pending"),
            &body,
        );
        assert_eq!(mint.code, BLINDED_MESSAGE_ALREADY_SIGNED);
    }

    #[test]
    fn outputs_repeated_in_one_request_keep_11008() {
        let dup = ErrorBody::new(CDK_DUPLICATE_OUTPUTS, "Duplicate outputs");
        let out = remap_cdk(
            Some(OutputsRoute::Swap),
            dup.clone(),
            &swap_body(&["02aa", "02aa"]),
        );
        assert_eq!(out, dup);
        // Unknown or truncated body: no correction.
        assert_eq!(remap_cdk(Some(OutputsRoute::Swap), dup.clone(), b""), dup);
        // Other routes, or another reason for the same code: no correction.
        let paid = ErrorBody::new(CDK_INVOICE_ALREADY_PAID, "Invoice already paid or pending");
        assert_eq!(remap_cdk(None, paid.clone(), &swap_body(&["02aa"])), paid);
        let paid_quote = ErrorBody::new(CDK_INVOICE_ALREADY_PAID, "Request already paid");
        assert_eq!(
            remap_cdk(
                Some(OutputsRoute::Mint),
                paid_quote.clone(),
                &swap_body(&["02aa"])
            ),
            paid_quote
        );
    }

    #[test]
    fn mint_quote_body_cdk_cannot_parse_is_malformed_not_internal() {
        for detail in CDK_MALFORMED_DETAILS {
            let out = remap_cdk(None, ErrorBody::new(CDK_UNKNOWN, *detail), b"");
            assert_eq!(out, ErrorBody::new(codes::MALFORMED_REQUEST, *detail));
        }
        let unknown = ErrorBody::new(CDK_UNKNOWN, "Unknown quote");
        assert_eq!(remap_cdk(None, unknown.clone(), b""), unknown);
    }

    #[test]
    fn amounts_that_overflow_are_11005_not_internal() {
        let out = remap_cdk(None, ErrorBody::new(CDK_UNKNOWN, "Amount Overflow"), b"");
        assert_eq!(out.code, TRANSACTION_UNBALANCED);
    }

    #[test]
    fn malformed_quote_bodies_name_the_wrong_field() {
        let melt = QuoteRoute::of(&Method::POST, "/v1/melt/quote/bolt11");
        assert_eq!(melt, Some(QuoteRoute::MeltBolt11));
        let explain = |route: QuoteRoute, body: &str| route.explain(body.as_bytes());
        let said = explain(
            QuoteRoute::MeltBolt11,
            r#"{"request":"lnbc1garbage","unit":"sat"}"#,
        );
        assert!(said.is_some_and(|d| d.contains("not a valid BOLT11 invoice")));
        let said = explain(
            QuoteRoute::MintBolt11,
            r#"{"amount":18446744073709551616,"unit":"sat"}"#,
        );
        assert!(said.is_some_and(|d| d.contains("below 2^64")));
        // A body whose fields are fine is left to cdk's own detail.
        assert_eq!(
            explain(QuoteRoute::MintBolt11, r#"{"amount":5,"unit":"sat"}"#),
            None
        );
        assert_eq!(QuoteRoute::of(&Method::GET, "/v1/melt/quote/bolt11"), None);
    }

    #[test]
    fn only_post_swap_and_mint_record_bodies() {
        assert_eq!(
            OutputsRoute::of(&Method::POST, "/v1/swap"),
            Some(OutputsRoute::Swap)
        );
        assert_eq!(
            OutputsRoute::of(&Method::POST, "/v1/mint/bolt11"),
            Some(OutputsRoute::Mint)
        );
        assert_eq!(
            OutputsRoute::of(&Method::POST, "/v1/mint/quote/bolt11"),
            None
        );
        assert_eq!(OutputsRoute::of(&Method::GET, "/v1/swap"), None);
        assert_eq!(OutputsRoute::of(&Method::POST, "/v1/melt/bolt11"), None);
    }

    #[tokio::test]
    async fn recorded_body_passes_through_unchanged() -> Result<(), Box<dyn std::error::Error>> {
        let body = br#"{"outputs": []}"#;
        let request = Request::builder()
            .method(Method::POST)
            .uri("/v1/swap")
            .body(Body::from(&body[..]))?;
        let (request, recorded) = record_body(request);
        let read = to_bytes(request.into_body(), 1024).await?;
        assert_eq!(&read[..], &body[..]);
        let kept = recorded.lock().map_err(|e| e.to_string())?.clone();
        assert_eq!(kept.as_deref(), Some(&body[..]));
        Ok(())
    }

    #[tokio::test]
    async fn bodies_over_the_cap_are_passed_on_but_not_kept(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let body = vec![b'x'; MAX_RECORDED_BODY + 1];
        let request = Request::builder()
            .method(Method::POST)
            .uri("/v1/swap")
            .body(Body::from(body.clone()))?;
        let (request, recorded) = record_body(request);
        let read = to_bytes(request.into_body(), usize::MAX).await?;
        assert_eq!(read.len(), body.len());
        assert!(recorded.lock().map_err(|e| e.to_string())?.is_none());
        Ok(())
    }

    #[test]
    fn failed_htlc_witness_is_20008_not_internal() {
        let cdk = ErrorBody::new(CDK_UNKNOWN, "Preimage does not match");
        let out = remap_cdk(None, cdk, b"{}");
        assert_eq!(out, ErrorBody::new(20008, "Preimage does not match"));
        let other = ErrorBody::new(CDK_UNKNOWN, "database is locked");
        assert_eq!(
            remap_cdk(None, other.clone(), b"{}"),
            other,
            "left for the internal-error rule"
        );
    }

    #[test]
    fn echoed_input_is_capped() {
        let long = "x".repeat(10_000);
        assert!(malformed_detail(&long).len() < 400);
    }
}
