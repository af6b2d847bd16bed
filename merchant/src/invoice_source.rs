//! Where the automatic settler gets an invoice for a given amount: a Lightning address or an
//! LNURL-pay endpoint (LUD-06/LUD-16), or a command that prints one.

use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use cdk::Bolt11Invoice;
use serde::Deserialize;
use url::Url;

/// Environment variables a command source gets.
pub const AMOUNT_SAT_ENV: &str = "MERCHANT_SETTLE_AMOUNT_SAT";
pub const AMOUNT_MSAT_ENV: &str = "MERCHANT_SETTLE_AMOUNT_MSAT";

/// How long an invoice source may take.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(60);

/// A source of invoices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvoiceSource {
    /// `user@domain`: LNURL-pay at `https://domain/.well-known/lnurlp/user` (plain http for
    /// `localhost` and `127.0.0.1`, for tests).
    LightningAddress(String),
    /// The URL of an LNURL-pay endpoint.
    Lnurl(String),
    /// A shell command (`sh -c`) that prints a BOLT11 invoice for the amount in
    /// `MERCHANT_SETTLE_AMOUNT_SAT` / `MERCHANT_SETTLE_AMOUNT_MSAT`. Its invoice may ask for less
    /// than that, never more.
    Command(String),
}

#[derive(Debug, thiserror::Error)]
pub enum InvoiceSourceError {
    #[error("not a Lightning address (user@domain): {0}")]
    BadAddress(String),
    #[error("bad LNURL-pay URL: {0}")]
    BadUrl(String),
    #[error("LNURL-pay request failed: {0}")]
    Http(String),
    #[error("the LNURL-pay service answered an error: {0}")]
    Service(String),
    #[error(
        "{sat} sat is outside what the LNURL-pay service accepts ({min_msat}..={max_msat} msat)"
    )]
    OutOfRange {
        sat: u64,
        min_msat: u64,
        max_msat: u64,
    },
    #[error("the invoice source returned something that is not a BOLT11 invoice: {0}")]
    NotAnInvoice(String),
    #[error("the invoice is for {got_msat} msat, {wanted_msat} msat were asked for")]
    WrongAmount { got_msat: u64, wanted_msat: u64 },
    #[error("the invoice command failed: {0}")]
    Command(String),
}

#[derive(Deserialize)]
struct PayRequest {
    tag: Option<String>,
    callback: Option<String>,
    #[serde(rename = "minSendable")]
    min_sendable: Option<u64>,
    #[serde(rename = "maxSendable")]
    max_sendable: Option<u64>,
    status: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct PayResponse {
    pr: Option<String>,
    status: Option<String>,
    reason: Option<String>,
}

impl InvoiceSource {
    /// An invoice for `amount_sat` satoshis (or, for a command, at most that).
    pub async fn invoice(
        &self,
        http: &reqwest::Client,
        amount_sat: u64,
    ) -> Result<String, InvoiceSourceError> {
        match self {
            Self::LightningAddress(address) => {
                lnurl_pay(http, &lightning_address_url(address)?, amount_sat).await
            }
            Self::Lnurl(url) => {
                let url = Url::parse(url).map_err(|e| InvoiceSourceError::BadUrl(e.to_string()))?;
                lnurl_pay(http, &url, amount_sat).await
            }
            Self::Command(command) => run_command(command, amount_sat).await,
        }
    }
}

/// `user@domain` → `https://domain/.well-known/lnurlp/user` (http for local hosts).
pub fn lightning_address_url(address: &str) -> Result<Url, InvoiceSourceError> {
    let bad = || InvoiceSourceError::BadAddress(address.to_string());
    let (user, domain) = address.trim().split_once('@').ok_or_else(bad)?;
    if user.is_empty() || domain.is_empty() || user.contains('/') || domain.contains('/') {
        return Err(bad());
    }
    let host = domain.split(':').next().unwrap_or(domain);
    let scheme = if host == "localhost" || host == "127.0.0.1" {
        "http"
    } else {
        "https"
    };
    Url::parse(&format!("{scheme}://{domain}/.well-known/lnurlp/{user}")).map_err(|_| bad())
}

fn http_err(e: reqwest::Error) -> InvoiceSourceError {
    InvoiceSourceError::Http(e.to_string())
}

async fn lnurl_pay(
    http: &reqwest::Client,
    url: &Url,
    amount_sat: u64,
) -> Result<String, InvoiceSourceError> {
    let msat = amount_sat.saturating_mul(1000);
    let request: PayRequest = http
        .get(url.clone())
        .timeout(SOURCE_TIMEOUT)
        .send()
        .await
        .map_err(http_err)?
        .error_for_status()
        .map_err(http_err)?
        .json()
        .await
        .map_err(http_err)?;
    if request.status.as_deref() == Some("ERROR") {
        return Err(InvoiceSourceError::Service(
            request.reason.unwrap_or_default(),
        ));
    }
    if request.tag.as_deref() != Some("payRequest") {
        return Err(InvoiceSourceError::Service(
            "not a payRequest (tag is missing or different)".into(),
        ));
    }
    let (min, max) = (
        request.min_sendable.unwrap_or(0),
        request.max_sendable.unwrap_or(u64::MAX),
    );
    if msat < min || msat > max {
        return Err(InvoiceSourceError::OutOfRange {
            sat: amount_sat,
            min_msat: min,
            max_msat: max,
        });
    }
    let callback = request
        .callback
        .ok_or_else(|| InvoiceSourceError::Service("no callback".into()))?;
    let mut callback =
        Url::parse(&callback).map_err(|e| InvoiceSourceError::BadUrl(e.to_string()))?;
    callback
        .query_pairs_mut()
        .append_pair("amount", &msat.to_string());
    let response: PayResponse = http
        .get(callback)
        .timeout(SOURCE_TIMEOUT)
        .send()
        .await
        .map_err(http_err)?
        .error_for_status()
        .map_err(http_err)?
        .json()
        .await
        .map_err(http_err)?;
    if response.status.as_deref() == Some("ERROR") {
        return Err(InvoiceSourceError::Service(
            response.reason.unwrap_or_default(),
        ));
    }
    let pr = response
        .pr
        .ok_or_else(|| InvoiceSourceError::Service("no invoice (`pr`) in the answer".into()))?;
    let got = invoice_msat(&pr)?;
    if got != msat {
        return Err(InvoiceSourceError::WrongAmount {
            got_msat: got,
            wanted_msat: msat,
        });
    }
    Ok(pr)
}

/// The amount of a BOLT11 invoice in msat; an amountless one is refused.
fn invoice_msat(invoice: &str) -> Result<u64, InvoiceSourceError> {
    let parsed = Bolt11Invoice::from_str(invoice)
        .map_err(|e| InvoiceSourceError::NotAnInvoice(e.to_string()))?;
    parsed
        .amount_milli_satoshis()
        .ok_or_else(|| InvoiceSourceError::NotAnInvoice("the invoice has no amount".into()))
}

async fn run_command(command: &str, amount_sat: u64) -> Result<String, InvoiceSourceError> {
    let msat = amount_sat.saturating_mul(1000);
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env(AMOUNT_SAT_ENV, amount_sat.to_string())
        .env(AMOUNT_MSAT_ENV, msat.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| InvoiceSourceError::Command(format!("cannot start `sh -c`: {e}")))?;
    let output = tokio::time::timeout(SOURCE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| InvoiceSourceError::Command("timed out".into()))?
        .map_err(|e| InvoiceSourceError::Command(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(InvoiceSourceError::Command(format!(
            "exited with {}: {}",
            output.status,
            stderr.trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| InvoiceSourceError::Command("printed nothing".into()))?;
    let invoice = line
        .strip_prefix("lightning:")
        .or_else(|| line.strip_prefix("LIGHTNING:"))
        .unwrap_or(line)
        .to_string();
    let got = invoice_msat(&invoice)?;
    if got > msat || got == 0 {
        return Err(InvoiceSourceError::WrongAmount {
            got_msat: got,
            wanted_msat: msat,
        });
    }
    Ok(invoice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lightning_addresses_map_to_well_known_urls() {
        assert_eq!(
            lightning_address_url("alice@example.com").unwrap().as_str(),
            "https://example.com/.well-known/lnurlp/alice"
        );
        assert_eq!(
            lightning_address_url("bob@127.0.0.1:8080")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/.well-known/lnurlp/bob"
        );
        for bad in ["alice", "@example.com", "alice@", "a/b@c", "a@b/c"] {
            assert!(lightning_address_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_command_that_fails_or_prints_garbage_is_an_error() {
        for cmd in ["exit 3", "echo hello", "true"] {
            let r = InvoiceSource::Command(cmd.into())
                .invoice(&reqwest::Client::new(), 10)
                .await;
            assert!(r.is_err(), "{cmd}: {r:?}");
        }
    }

    #[tokio::test]
    async fn a_command_sees_the_amount() {
        // The command fails on purpose with the amount in its message.
        let r = InvoiceSource::Command(
            "echo \"$MERCHANT_SETTLE_AMOUNT_SAT/$MERCHANT_SETTLE_AMOUNT_MSAT\" >&2; exit 1".into(),
        )
        .invoice(&reqwest::Client::new(), 42)
        .await;
        let e = r.unwrap_err().to_string();
        assert!(e.contains("42/42000"), "{e}");
    }
}
