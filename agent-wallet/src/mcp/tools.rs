//! The tools: their arguments and what each does with the wallet.

use std::collections::BTreeMap;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router, ErrorData};
use schemars::JsonSchema;
use serde::Deserialize;

use super::results::{self, DEFAULT_MAX_BODY_CHARS};
use super::WalletServer;
use crate::error::WalletError;
use crate::http::PayRequest;

/// Rows `ledger` returns when no limit is given.
pub const DEFAULT_LEDGER_LIMIT: u32 = 20;
/// Most rows one `ledger` call returns.
pub const MAX_LEDGER_LIMIT: u32 = 1_000;

/// Arguments of `fetch`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchParams {
    /// The URL to request (http or https).
    pub url: String,
    /// The HTTP method (default GET).
    #[serde(default)]
    pub method: Option<String>,
    /// Request headers, name to value.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request body, sent as is.
    #[serde(default)]
    pub body: Option<String>,
    /// The most this request may cost in sat (price plus fees); lower than the policy's caps
    /// to be stricter for this one call.
    #[serde(default)]
    pub max_cost: Option<u64>,
    /// The most body text to return, in characters (default 100000); the rest is cut off and
    /// `body_truncated` says so.
    #[serde(default)]
    pub max_body_chars: Option<usize>,
}

/// Arguments of `budget`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetParams {
    /// A host name (such as api.example.com) or URL: also show what that host may still be
    /// paid in the rolling 24 hours.
    #[serde(default)]
    pub host: Option<String>,
}

/// Arguments of `ledger`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerParams {
    /// Only payments to this host (a host name or URL).
    #[serde(default)]
    pub host: Option<String>,
    /// How many payments to return, newest first (default 20, at most 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Arguments of `receive`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveParams {
    /// A Cashu token in sat: `cashuB...` (or the older `cashuA...`).
    pub token: String,
}

#[tool_router(router = tool_router, vis = "pub(super)")]
impl WalletServer {
    #[tool(
        description = "Send an HTTP request, paying a 402 Cashu challenge within the spending policy.",
        annotations(title = "Fetch a URL, paying if asked", open_world_hint = true)
    )]
    pub async fn fetch(
        &self,
        Parameters(p): Parameters<FetchParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let req = match build_request(&p) {
            Ok(r) => r,
            Err(e) => return Ok(results::wallet_error(&self.wallet, &e)),
        };
        let max_chars = p.max_body_chars.unwrap_or(DEFAULT_MAX_BODY_CHARS);
        let wallet = self.wallet.clone();
        // The payment runs in a task of its own: a client that hangs up mid-payment does not
        // cut it short, and the server waits for it before exiting.
        let task = self.payments.spawn(async move { wallet.fetch(req).await });
        Ok(match task.await {
            Ok(Ok(answer)) => results::fetched(&answer, max_chars),
            Ok(Err(e)) => results::wallet_error(&self.wallet, &e),
            Err(e) => results::failure(format!("the payment task failed: {e}")),
        })
    }

    #[tool(
        description = "The ecash the wallet holds, per mint.",
        annotations(title = "Balance", read_only_hint = true, open_world_hint = false)
    )]
    pub async fn balance(&self) -> Result<CallToolResult, ErrorData> {
        Ok(match self.wallet.balances().await {
            Ok(b) => results::balance(&b),
            Err(e) => results::wallet_error(&self.wallet, &e),
        })
    }

    #[tool(
        description = "What the spending policy still allows.",
        annotations(title = "Budget", read_only_hint = true, open_world_hint = false)
    )]
    pub async fn budget(
        &self,
        Parameters(p): Parameters<BudgetParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let host = p.host.as_deref().map(host_of);
        Ok(match self.wallet.budget(host.as_deref()).await {
            Ok(b) => results::budget(&b),
            Err(e) => results::wallet_error(&self.wallet, &e),
        })
    }

    #[tool(
        description = "Recent payments, newest first.",
        annotations(title = "Ledger", read_only_hint = true, open_world_hint = false)
    )]
    pub async fn ledger(
        &self,
        Parameters(p): Parameters<LedgerParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let limit = p
            .limit
            .unwrap_or(DEFAULT_LEDGER_LIMIT)
            .min(MAX_LEDGER_LIMIT);
        let host = p.host.as_deref().map(host_of);
        Ok(
            match self.wallet.recent_payments(host.as_deref(), limit as usize) {
                Ok(rows) => results::ledger(&rows, host.as_deref()),
                Err(e) => results::wallet_error(&self.wallet, &e),
            },
        )
    }

    #[tool(
        description = "Import a Cashu token into the wallet.",
        annotations(
            title = "Receive a token",
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn receive(
        &self,
        Parameters(p): Parameters<ReceiveParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let wallet = self.wallet.clone();
        let task = self
            .payments
            .spawn(async move { wallet.receive(&p.token).await });
        let outcome = match task.await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => return Ok(results::wallet_error(&self.wallet, &e)),
            Err(e) => return Ok(results::failure(format!("the import task failed: {e}"))),
        };
        let balance = self.wallet.balances().await.map(|b| b.total).ok();
        Ok(results::received(outcome, balance))
    }
}

/// The request `fetch` sends.
fn build_request(p: &FetchParams) -> Result<PayRequest, WalletError> {
    let url = url::Url::parse(p.url.trim())
        .map_err(|e| WalletError::Invalid(format!("url {:?}: {e}", p.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(WalletError::Invalid(format!(
            "url {:?}: only http and https are supported",
            p.url
        )));
    }
    let method = p.method.as_deref().unwrap_or("GET").trim();
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|e| WalletError::Invalid(format!("method {method:?}: {e}")))?;
    let mut req = PayRequest::new(method, url).max_cost(p.max_cost);
    for (name, value) in &p.headers {
        req = req.header_line(&format!("{name}: {value}"))?;
    }
    if let Some(body) = &p.body {
        req = req.body(body.clone());
    }
    Ok(req)
}

/// The host of a host name or URL, as the argument gave it.
fn host_of(arg: &str) -> String {
    let arg = arg.trim();
    match url::Url::parse(arg) {
        Ok(u) if u.host_str().is_some() => u.host_str().unwrap_or_default().to_string(),
        _ => arg
            .split(['/', '?'])
            .next()
            .map(|h| crate::policy::split_port(h).0)
            .unwrap_or(arg)
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_takes_host_names_and_urls() {
        assert_eq!(host_of("api.example.com"), "api.example.com");
        assert_eq!(host_of("https://API.example.com:8443/x"), "api.example.com");
        assert_eq!(host_of("localhost:8080"), "localhost");
        assert_eq!(host_of("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn bad_arguments_are_invalid_input() {
        let p = |url: &str, method: Option<&str>| FetchParams {
            url: url.into(),
            method: method.map(str::to_string),
            headers: BTreeMap::new(),
            body: None,
            max_cost: None,
            max_body_chars: None,
        };
        assert!(matches!(
            build_request(&p("not a url", None)),
            Err(WalletError::Invalid(_))
        ));
        assert!(matches!(
            build_request(&p("file:///etc/passwd", None)),
            Err(WalletError::Invalid(_))
        ));
        assert!(matches!(
            build_request(&p("http://x.test/", Some("BAD METHOD"))),
            Err(WalletError::Invalid(_))
        ));
        let mut ok = p("http://x.test/a", Some("post"));
        ok.headers.insert("Accept".into(), "text/plain".into());
        ok.max_cost = Some(3);
        let req = build_request(&ok).unwrap();
        assert_eq!(req.method, reqwest::Method::POST);
        assert_eq!(req.headers["accept"], "text/plain");
        assert_eq!(req.max_cost, Some(3));
    }
}
