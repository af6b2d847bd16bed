//! x402-style 402s (x402-foundation/x402, v1 and v2) with our `cashu` scheme.
//!
//! ## Transport
//!
//! | version | challenge (server → client, status 402) | credential (client → server) |
//! |---|---|---|
//! | v2 | header `PAYMENT-REQUIRED: base64(JSON PaymentRequired)` | header `PAYMENT-SIGNATURE: base64(JSON PaymentPayload)` |
//! | v1 | JSON body `{"x402Version": 1, "accepts": [...], "error": ...}` | header `X-PAYMENT: base64(JSON PaymentPayload)` |
//!
//! Base64 is standard with padding on output; any standard or URL-safe form is accepted on input.
//!
//! ## The `cashu` scheme (ours; x402 has no merged Cashu scheme)
//!
//! A `PaymentRequirements` entry in `accepts`:
//!
//! ```json
//! {
//!   "scheme": "cashu",
//!   "network": "cashu",
//!   "amount": "21",                       // v2; v1 names it "maxAmountRequired"
//!   "asset": "sat",                       // the Cashu unit again, for x402 tooling
//!   "payTo": "02a82e…",                   // the merchant's P2PK key, or "" when no lock is asked
//!   "maxTimeoutSeconds": 60,
//!   "extra": {
//!     "mints": ["https://mint.example.com"],   // accepted mints, never empty
//!     "unit": "sat",
//!     "nut10": {"k": "P2PK", "d": "02a82e…", "t": [["sigflag", "SIG_INPUTS"]]}  // optional
//!   }
//! }
//! ```
//!
//! It means exactly what the NUT-24 challenge `X-Cashu: creqA…` with the same `a`, `u`, `m` and
//! `nut10` means, and is verified by the same code ([`CashuRequirements::to_challenge`]): a
//! token from one of `mints`, in `unit`, worth at least `amount` net of the receiver's input fee,
//! locked as `nut10` asks.
//!
//! The credential is a `PaymentPayload` whose `payload` is `{"token": "cashuB…"}`:
//! v2 `{"x402Version": 2, "accepted": <the entry>, "payload": {"token": "cashuB…"}}`,
//! v1 `{"x402Version": 1, "scheme": "cashu", "network": "cashu", "payload": {"token": "cashuB…"}}`.
//!
//! Entries of other schemes (`exact` on EVM, …) are parsed so that a payer can say what it was
//! offered, but only `cashu` on network `cashu` is payable.

use std::str::FromStr;

use base64::Engine;
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, Nut10SecretRequest, PaymentRequest, Token};
use cdk::Amount;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::l402::decode_base64;
use crate::nut24::{self, Challenge};

/// v2 challenge header.
pub const PAYMENT_REQUIRED: &str = "PAYMENT-REQUIRED";
/// v2 credential header.
pub const PAYMENT_SIGNATURE: &str = "PAYMENT-SIGNATURE";
/// v1 credential header.
pub const X_PAYMENT: &str = "X-PAYMENT";
/// Our scheme and network name.
pub const CASHU_SCHEME: &str = "cashu";
pub const CASHU_NETWORK: &str = "cashu";
/// Longest header or body we try to decode.
pub const MAX_LEN: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum X402Error {
    #[error("x402 value is longer than {MAX_LEN} bytes")]
    TooLong,
    #[error("x402 value is not base64")]
    NotBase64,
    #[error("x402 value is not the expected JSON: {0}")]
    Json(String),
    #[error("x402 version {0} is not supported (1 and 2 are)")]
    UnsupportedVersion(u64),
    #[error(
        "x402 scheme `{scheme}` on network `{network}` is not supported (only `cashu` on `cashu`)"
    )]
    UnsupportedScheme { scheme: String, network: String },
    #[error("x402 cashu entry: {0}")]
    BadCashuEntry(String),
    #[error("x402 cashu entry is not a valid Cashu request: {0}")]
    Challenge(#[from] nut24::ChallengeError),
    #[error("x402 payload carries no Cashu token: {0}")]
    BadToken(String),
}

/// x402 protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum X402Version {
    V1,
    V2,
}

impl X402Version {
    fn from_number(n: u64) -> Result<Self, X402Error> {
        match n {
            1 => Ok(Self::V1),
            2 => Ok(Self::V2),
            n => Err(X402Error::UnsupportedVersion(n)),
        }
    }

    pub fn number(self) -> u64 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }

    /// The header the credential goes in.
    pub fn credential_header(self) -> &'static str {
        match self {
            Self::V1 => X_PAYMENT,
            Self::V2 => PAYMENT_SIGNATURE,
        }
    }
}

/// v2 `resource` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// One `accepts` entry, v1 or v2 (v1 names the amount `maxAmountRequired` and carries
/// `resource`/`description`/`mimeType` inline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    pub scheme: String,
    pub network: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_amount_required: Option<String>,
    #[serde(default)]
    pub asset: String,
    #[serde(default)]
    pub pay_to: String,
    #[serde(default)]
    pub max_timeout_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Value>,
}

/// The 402 answer: v2 `PAYMENT-REQUIRED` header content or the v1 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    pub x402_version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
    #[serde(default)]
    pub accepts: Vec<PaymentRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// The credential, v1 or v2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    pub x402_version: u64,
    /// v1 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// v1 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// v2 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
    /// v2 only: the `accepts` entry being paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<PaymentRequirements>,
    pub payload: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Value>,
}

/// `extra` of a `cashu` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashuExtra {
    pub mints: Vec<String>,
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nut10: Option<Nut10SecretRequest>,
}

/// A `cashu` entry, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CashuRequirements {
    pub challenge: Challenge,
    pub max_timeout_seconds: u64,
}

fn b64_json<T: for<'de> Deserialize<'de>>(value: &str) -> Result<T, X402Error> {
    let value = value.trim();
    if value.len() > MAX_LEN {
        return Err(X402Error::TooLong);
    }
    let bytes = decode_base64(value).ok_or(X402Error::NotBase64)?;
    serde_json::from_slice(&bytes).map_err(|e| X402Error::Json(e.to_string()))
}

fn json_b64<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail (no maps with non-string keys).
    let json = serde_json::to_vec(value).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(json)
}

impl PaymentRequired {
    pub fn version(&self) -> Result<X402Version, X402Error> {
        X402Version::from_number(self.x402_version)
    }

    /// Decodes a v2 `PAYMENT-REQUIRED` header value.
    pub fn from_header(value: &str) -> Result<Self, X402Error> {
        let pr: Self = b64_json(value)?;
        pr.version()?;
        Ok(pr)
    }

    /// Encodes the `PAYMENT-REQUIRED` header value.
    pub fn to_header(&self) -> String {
        json_b64(self)
    }

    /// Decodes a v1 402 JSON body. `Ok(None)` when the body is JSON but not an x402 answer.
    pub fn from_body(body: &[u8]) -> Result<Option<Self>, X402Error> {
        if body.len() > MAX_LEN {
            return Err(X402Error::TooLong);
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| X402Error::Json(e.to_string()))?;
        if value.get("x402Version").is_none() {
            return Ok(None);
        }
        let pr: Self = serde_json::from_value(value).map_err(|e| X402Error::Json(e.to_string()))?;
        pr.version()?;
        Ok(Some(pr))
    }
}

impl PaymentRequirements {
    /// The amount, from `amount` (v2) or `maxAmountRequired` (v1).
    pub fn amount_str(&self) -> Option<&str> {
        self.amount
            .as_deref()
            .or(self.max_amount_required.as_deref())
    }

    pub fn is_cashu(&self) -> bool {
        self.scheme == CASHU_SCHEME && self.network == CASHU_NETWORK
    }

    /// Decodes a `cashu` entry into the NUT-24 challenge it stands for.
    pub fn cashu(&self) -> Result<CashuRequirements, X402Error> {
        if !self.is_cashu() {
            return Err(X402Error::UnsupportedScheme {
                scheme: self.scheme.clone(),
                network: self.network.clone(),
            });
        }
        let amount: u64 = self
            .amount_str()
            .ok_or_else(|| X402Error::BadCashuEntry("no amount".into()))?
            .trim()
            .parse()
            .map_err(|_| X402Error::BadCashuEntry("amount is not a whole number".into()))?;
        let extra: CashuExtra = serde_json::from_value(
            self.extra
                .clone()
                .ok_or_else(|| X402Error::BadCashuEntry("no `extra`".into()))?,
        )
        .map_err(|e| X402Error::BadCashuEntry(format!("`extra`: {e}")))?;
        let mints = extra
            .mints
            .iter()
            .map(|m| MintUrl::from_str(m))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| X402Error::BadCashuEntry(format!("mint URL: {e}")))?;
        let unit = CurrencyUnit::from_str(&extra.unit)
            .map_err(|e| X402Error::BadCashuEntry(format!("unit: {e}")))?;
        let mut builder = PaymentRequest::builder()
            .amount(Amount::from(amount))
            .unit(unit)
            .mints(mints);
        if let Some(nut10) = extra.nut10 {
            builder = builder.nut10(nut10);
        }
        Ok(CashuRequirements {
            challenge: Challenge::try_from(builder.build())?,
            max_timeout_seconds: self.max_timeout_seconds,
        })
    }

    /// The `cashu` entry for a NUT-24 challenge, in the given version's field names.
    pub fn for_cashu(
        challenge: &Challenge,
        version: X402Version,
        resource: Option<&str>,
        max_timeout_seconds: u64,
    ) -> Result<Self, X402Error> {
        let nut10 = challenge
            .lock
            .clone()
            .map(Nut10SecretRequest::try_from)
            .transpose()
            .map_err(|e| X402Error::BadCashuEntry(e.to_string()))?;
        let extra = CashuExtra {
            mints: challenge.mints.iter().map(|m| m.to_string()).collect(),
            unit: challenge.unit.to_string(),
            nut10,
        };
        let amount = challenge.amount.to_string();
        let (amount, max_amount_required, resource) = match version {
            X402Version::V2 => (Some(amount), None, None),
            X402Version::V1 => (None, Some(amount), resource.map(str::to_string)),
        };
        Ok(Self {
            scheme: CASHU_SCHEME.into(),
            network: CASHU_NETWORK.into(),
            amount,
            max_amount_required,
            asset: challenge.unit.to_string(),
            pay_to: challenge
                .lock_pubkey()
                .map(|k| k.to_hex())
                .unwrap_or_default(),
            max_timeout_seconds,
            resource,
            description: None,
            mime_type: None,
            extra: serde_json::to_value(extra).ok(),
        })
    }
}

impl PaymentPayload {
    pub fn version(&self) -> Result<X402Version, X402Error> {
        X402Version::from_number(self.x402_version)
    }

    /// A `cashu` payment: `accepted` is the entry paid (v2 keeps it, v1 keeps scheme/network).
    pub fn cashu(version: X402Version, accepted: &PaymentRequirements, token: &Token) -> Self {
        let payload = serde_json::json!({ "token": token.to_string() });
        match version {
            X402Version::V2 => Self {
                x402_version: 2,
                scheme: None,
                network: None,
                resource: None,
                accepted: Some(accepted.clone()),
                payload,
                extensions: None,
            },
            X402Version::V1 => Self {
                x402_version: 1,
                scheme: Some(accepted.scheme.clone()),
                network: Some(accepted.network.clone()),
                resource: None,
                accepted: None,
                payload,
                extensions: None,
            },
        }
    }

    /// Decodes a `PAYMENT-SIGNATURE` or `X-PAYMENT` header value.
    pub fn from_header(value: &str) -> Result<Self, X402Error> {
        let p: Self = b64_json(value)?;
        p.version()?;
        Ok(p)
    }

    pub fn to_header(&self) -> String {
        json_b64(self)
    }

    /// The scheme and network paid, from `accepted` (v2) or inline (v1).
    pub fn scheme_network(&self) -> (Option<&str>, Option<&str>) {
        match &self.accepted {
            Some(a) => (Some(a.scheme.as_str()), Some(a.network.as_str())),
            None => (self.scheme.as_deref(), self.network.as_deref()),
        }
    }

    /// The Cashu token of a `cashu` payload.
    pub fn cashu_token(&self) -> Result<Token, X402Error> {
        match self.scheme_network() {
            (Some(CASHU_SCHEME), Some(CASHU_NETWORK)) => {}
            (scheme, network) => {
                return Err(X402Error::UnsupportedScheme {
                    scheme: scheme.unwrap_or("").to_string(),
                    network: network.unwrap_or("").to_string(),
                })
            }
        }
        let token = self
            .payload
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| X402Error::BadToken("`payload.token` is missing".into()))?;
        nut24::parse_credential(token).map_err(|e| X402Error::BadToken(e.to_string()))
    }
}

#[cfg(test)]
#[path = "x402_tests.rs"]
mod tests;
