//! Forwarding to the upstream: the request streams up, the response streams back.
//!
//! Hop-by-hop headers (RFC 9110 §7.6.1, plus any the `Connection` header names) are dropped in
//! both directions, as is the request's `X-Cashu` credential: the upstream never sees the
//! agent's token. Redirects are passed back to the client, not followed.

use axum::body::Body;
use axum::http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, HOST};
use axum::http::{Request, StatusCode};
use axum::response::Response;
use cashu_402::error_body::codes;
use futures::TryStreamExt;

use crate::error::json_error;

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including those listed in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Sends `req` to `upstream` (a base URL; the request's path and query are appended) and
/// streams the answer back. An unreachable upstream is a 502.
pub async fn forward(
    client: &reqwest::Client,
    upstream: &url::Url,
    req: Request<Body>,
) -> Response {
    let (parts, body) = req.into_parts();
    let base = upstream.as_str().trim_end_matches('/');
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let target = format!("{base}{path_and_query}");

    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    crate::paywall::strip_credentials(&mut headers);
    if let Some(host) = headers.remove(HOST) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host);
    }
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("http"),
    );

    let upstream_response = client
        .request(parts.method, &target)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let upstream_response = match upstream_response {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(target = %target, error = %e, "upstream request failed");
            return json_error(
                StatusCode::BAD_GATEWAY,
                codes::INTERNAL,
                "the upstream server cannot be reached",
            );
        }
    };

    let status = upstream_response.status();
    let mut response_headers = upstream_response.headers().clone();
    strip_hop_by_hop(&mut response_headers);
    let stream = upstream_response
        .bytes_stream()
        .inspect_err(|e| tracing::warn!(error = %e, "upstream body broke off"));
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_named_in_connection_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("close, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("content-type"));
    }
}
