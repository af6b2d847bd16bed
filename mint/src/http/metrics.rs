//! Prometheus metrics at `/metrics`: requests and latency by route, Cashu operations by outcome,
//! and the ecash issued and redeemed per keyset (read from the mint's books at scrape time).

use std::time::Instant;

use crate::allowance::Allowances;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The mint's metrics. Cloning shares the same registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    operations: IntCounterVec,
    issued: GaugeVec,
    redeemed: GaugeVec,
    books: IntGaugeVec,
}

impl Metrics {
    pub fn new(backend: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("allowance_mint".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["route", "method"],
        )?;
        let operations = IntCounterVec::new(
            Opts::new(
                "operations_total",
                "Cashu operations (swap, mint, melt, mint_quote, melt_quote, checkstate, restore) by outcome",
            ),
            &["operation", "outcome"],
        )?;
        let issued = GaugeVec::new(
            Opts::new(
                "ecash_issued_sat",
                "Ecash ever issued (blind-signed), per keyset",
            ),
            &["keyset"],
        )?;
        let redeemed = GaugeVec::new(
            Opts::new(
                "ecash_redeemed_sat",
                "Ecash ever redeemed (spent as input), per keyset",
            ),
            &["keyset"],
        )?;
        let books = IntGaugeVec::new(
            Opts::new(
                "books_sat",
                "The books: ecash_outstanding + allowance_balances + unminted_quotes should equal \
                 received - paid_out - lightning_fees - input_fees (imbalance = the difference)",
            ),
            &["term"],
        )?;
        let backend_gauge = IntGaugeVec::new(
            Opts::new(
                "lightning_backend_info",
                "The Lightning backend in use (1 for the active one)",
            ),
            &["backend"],
        )?;
        backend_gauge.with_label_values(&[backend]).set(1);
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(operations.clone()))?;
        registry.register(Box::new(issued.clone()))?;
        registry.register(Box::new(redeemed.clone()))?;
        registry.register(Box::new(backend_gauge.clone()))?;
        registry.register(Box::new(books.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            operations,
            issued,
            redeemed,
            books,
        })
    }

    fn observe(&self, route: &str, method: &str, status: StatusCode, seconds: f64, path: &str) {
        self.requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
        self.latency
            .with_label_values(&[route, method])
            .observe(seconds);
        if let Some(op) = operation(method, path) {
            let outcome = if status.is_success() { "ok" } else { "error" };
            self.operations.with_label_values(&[op, outcome]).inc();
        }
    }

    async fn render(&self, allowances: &Allowances) -> Result<String, String> {
        let mint = &allowances.mint;
        let books = allowances.books().await.map_err(|e| e.to_string())?;
        let clamp = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
        for (term, value) in [
            ("ecash_outstanding", i128::from(books.ecash_outstanding)),
            ("allowance_balances", i128::from(books.allowance_balances)),
            ("unminted_quotes", i128::from(books.unminted_quotes)),
            ("received", i128::from(books.received)),
            ("paid_out", i128::from(books.paid_out)),
            ("lightning_fees", i128::from(books.lightning_fees)),
            ("input_fees", i128::from(books.input_fees)),
            ("imbalance", books.imbalance()),
        ] {
            self.books.with_label_values(&[term]).set(clamp(value));
        }
        let issued = mint.total_issued().await.map_err(|e| e.to_string())?;
        let redeemed = mint.total_redeemed().await.map_err(|e| e.to_string())?;
        for (id, amount) in issued {
            self.issued
                .with_label_values(&[&id.to_string()])
                .set(u64::from(amount) as f64);
        }
        for (id, amount) in redeemed {
            self.redeemed
                .with_label_values(&[&id.to_string()])
                .set(u64::from(amount) as f64);
        }
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .map_err(|e| e.to_string())?;
        String::from_utf8(buf).map_err(|e| e.to_string())
    }
}

/// Which Cashu operation a request is, from its concrete path.
fn operation(method: &str, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["v1", "swap"]) => Some("swap"),
        ("POST", ["v1", "mint", "quote", _]) => Some("mint_quote"),
        ("POST", ["v1", "melt", "quote", _]) => Some("melt_quote"),
        ("POST", ["v1", "mint", _]) => Some("mint"),
        ("POST", ["v1", "melt", _]) => Some("melt"),
        ("POST", ["v1", "checkstate"]) => Some("checkstate"),
        ("POST", ["v1", "restore"]) => Some("restore"),
        _ => None,
    }
}

/// Route layer: records every matched request. Unmatched requests (404) carry no route template
/// and are left out, so random scanning cannot blow up the label space.
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe(
        &route,
        &method,
        response.status(),
        start.elapsed().as_secs_f64(),
        &path,
    );
    response
}

pub async fn handler(State((metrics, allowances)): State<(Metrics, Allowances)>) -> Response {
    match metrics.render(&allowances).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_recognised_from_paths() {
        assert_eq!(operation("POST", "/v1/swap"), Some("swap"));
        assert_eq!(operation("POST", "/v1/mint/bolt11"), Some("mint"));
        assert_eq!(
            operation("POST", "/v1/mint/quote/bolt11"),
            Some("mint_quote")
        );
        assert_eq!(operation("POST", "/v1/melt/bolt11"), Some("melt"));
        assert_eq!(operation("GET", "/v1/mint/quote/bolt11/abc"), None);
        assert_eq!(operation("GET", "/v1/keys"), None);
    }

    #[test]
    fn observed_requests_show_up_in_the_text() {
        let m = Metrics::new("fake").unwrap();
        m.observe("/v1/swap", "POST", StatusCode::OK, 0.01, "/v1/swap");
        m.observe(
            "/v1/swap",
            "POST",
            StatusCode::BAD_REQUEST,
            0.01,
            "/v1/swap",
        );
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&m.registry.gather(), &mut buf)
            .unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.contains("allowance_mint_operations_total{operation=\"swap\",outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(text
            .contains("allowance_mint_operations_total{operation=\"swap\",outcome=\"error\"} 1"));
        assert!(text.contains("allowance_mint_lightning_backend_info{backend=\"fake\"} 1"));
    }
}
