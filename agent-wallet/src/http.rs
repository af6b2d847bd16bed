//! The request the paying client sends and the answers it hands back.

use cashu_402::error_body::ErrorBody;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::error::WalletError;
use crate::ledger::LedgerEntry;

/// Largest answer body the client reads; more is an error rather than unbounded memory.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A request to send, paying a 402 challenge if the server asks and the policy allows.
#[derive(Debug, Clone)]
pub struct PayRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
    /// The most this one request may cost, on top of the policy's caps.
    pub max_cost: Option<u64>,
}

impl PayRequest {
    pub fn new(method: Method, url: Url) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            max_cost: None,
        }
    }

    pub fn get(url: Url) -> Self {
        Self::new(Method::GET, url)
    }

    /// Adds a header from a curl-style `Name: value` line.
    pub fn header_line(mut self, line: &str) -> Result<Self, WalletError> {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| WalletError::Invalid(format!("header {line:?} is not `Name: value`")))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|e| WalletError::Invalid(format!("header name {name:?}: {e}")))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|e| WalletError::Invalid(format!("header value for {name}: {e}")))?;
        self.headers.append(name, value);
        Ok(self)
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn max_cost(mut self, max: Option<u64>) -> Self {
        self.max_cost = max;
        self
    }

    /// The host the policy and the ledger know the request by (lower case, no port).
    pub fn host(&self) -> String {
        self.url
            .host_str()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase()
    }
}

/// An answer, read whole.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub(crate) async fn read(mut resp: reqwest::Response) -> Result<Self, reqwest::Error> {
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            let room = MAX_BODY_BYTES.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.len() > room {
                break;
            }
        }
        Ok(Self {
            status,
            headers,
            body,
        })
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The Cashu-shaped error body (`{"detail", "code"}`), when the body is one.
    pub fn error_body(&self) -> Option<ErrorBody> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The final answer to a [`PayRequest`], and the payment made for it, if any.
#[derive(Debug, Clone)]
pub struct FetchResponse {
    pub response: HttpResponse,
    /// The ledger row of the payment, when the wallet paid.
    pub payment: Option<LedgerEntry>,
}

impl FetchResponse {
    /// What the payment cost (price plus fees), or 0.
    pub fn cost(&self) -> u64 {
        self.payment.as_ref().map_or(0, LedgerEntry::cost)
    }
}
