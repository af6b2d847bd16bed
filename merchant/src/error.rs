//! Why the paywall refuses a request, and the one place where refusals become HTTP answers.
//!
//! Every refusal is a JSON [`ErrorBody`] (`{"detail", "code"}`, codes from
//! `cashu_402::error_body::codes`) with `Cache-Control: no-store`. Refusals of a missing or bad
//! credential (402 and 400) carry a fresh `X-Cashu` challenge so the client can pay again; a
//! `503` (mint unreachable, token not consumed) carries `Retry-After` instead. Bad input never
//! gets a 5xx, and a 5xx body says nothing internal: the log says it.

use std::time::Duration;

use axum::http::header::{HeaderName, HeaderValue, CACHE_CONTROL, RETRY_AFTER};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cashu_402::error_body::{codes, ErrorBody};
use cashu_402::X_CASHU;

/// A credential the paywall will not accept, or a failure to redeem it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaywallError {
    #[error("payment required: retry with a Cashu token in the X-Cashu header")]
    PaymentRequired,
    #[error("the X-Cashu value is not a Cashu token: {0}")]
    Malformed(String),
    #[error("tokens from {mint} are not accepted here")]
    MintNotAccepted { mint: String },
    #[error("the token is in {got}, the price is in {want}")]
    UnitMismatch { got: String, want: String },
    #[error(
        "the token is worth {value} {unit}, but {required} {unit} are required \
         (price {price} plus the mint's input fee {fee})"
    )]
    Insufficient {
        value: u64,
        fee: u64,
        price: u64,
        required: u64,
        unit: String,
    },
    #[error("the proofs are not locked as the challenge asks: {0}")]
    LockInvalid(String),
    #[error("a proof lacks a valid DLEQ proof: {0}")]
    DleqInvalid(String),
    #[error("the token was already spent")]
    Replay,
    #[error("the mint refused the token: {0}")]
    Refused(String),
    /// A bad L402 credential: answered 401 with fresh challenges.
    #[error("the L402 credential is refused: {0}")]
    L402Invalid(String),
    /// An authentic L402 credential without a preimage whose invoice is not paid.
    #[error("the L402 invoice is not paid")]
    L402Unpaid,
    /// The mint could not be reached; `detail` is for the log only.
    #[error("the mint cannot be reached ({detail})")]
    MintUnavailable { detail: String },
    /// Something broke on our side; `detail` is for the log only.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

impl PaywallError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::PaymentRequired | Self::Insufficient { .. } | Self::L402Unpaid => {
                StatusCode::PAYMENT_REQUIRED
            }
            Self::L402Invalid(_) => StatusCode::UNAUTHORIZED,
            Self::Malformed(_)
            | Self::MintNotAccepted { .. }
            | Self::UnitMismatch { .. }
            | Self::LockInvalid(_)
            | Self::DleqInvalid(_)
            | Self::Replay
            | Self::Refused(_) => StatusCode::BAD_REQUEST,
            Self::MintUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> u32 {
        match self {
            Self::PaymentRequired => codes::PAYMENT_REQUIRED,
            Self::Malformed(_) => codes::TOKEN_MALFORMED,
            Self::MintNotAccepted { .. } => codes::MINT_NOT_ACCEPTED,
            Self::UnitMismatch { .. } => codes::UNIT_MISMATCH,
            Self::Insufficient { .. } => codes::AMOUNT_TOO_LOW,
            Self::LockInvalid(_) => codes::LOCK_INVALID,
            Self::DleqInvalid(_) => codes::DLEQ_INVALID,
            Self::Replay => codes::TOKEN_SPENT,
            Self::Refused(_) => codes::TOKEN_REFUSED,
            Self::L402Invalid(_) => codes::L402_INVALID,
            Self::L402Unpaid => codes::L402_UNPAID,
            Self::MintUnavailable { .. } => codes::MINT_UNAVAILABLE,
            Self::Internal { .. } => codes::INTERNAL,
        }
    }

    /// What the client reads: the error's text, except for 5xx answers.
    pub fn public_detail(&self) -> String {
        match self {
            Self::MintUnavailable { .. } => {
                "the mint cannot be reached; the token was not consumed, retry later".into()
            }
            Self::Internal { .. } => "internal error".into(),
            other => other.to_string(),
        }
    }

    /// Whether the answer offers a fresh challenge (every refusal of a credential does).
    fn offers_challenge(&self) -> bool {
        self.status().is_client_error()
    }
}

/// The `X-Cashu` header name as an `http` type.
pub fn x_cashu() -> HeaderName {
    HeaderName::from_static("x-cashu")
}

/// The fresh challenges a refusal carries: headers (`X-Cashu`, `WWW-Authenticate: L402`,
/// `PAYMENT-REQUIRED`) and the x402 v1 fields merged into the JSON error body.
#[derive(Debug, Clone, Default)]
pub struct Challenges {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `{"x402Version": 1, "error": ..., "accepts": [...]}` fields, added beside `detail`/`code`.
    pub x402_v1: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Turns a refusal into the HTTP answer with one `X-Cashu` challenge (see
/// [`refusal_response_with`]).
pub fn refusal_response(
    error: &PaywallError,
    challenge: Option<&HeaderValue>,
    retry_after: Duration,
) -> Response {
    let challenges = Challenges {
        headers: challenge
            .map(|c| vec![(x_cashu(), c.clone())])
            .unwrap_or_default(),
        x402_v1: None,
    };
    refusal_response_with(error, &challenges, retry_after)
}

/// Turns a refusal into the HTTP answer: status, JSON body, `Cache-Control: no-store`, the fresh
/// challenges on 4xx answers, `Retry-After` on 503. The only place a [`PaywallError`] becomes
/// a response; 5xx causes are logged here.
pub fn refusal_response_with(
    error: &PaywallError,
    challenges: &Challenges,
    retry_after: Duration,
) -> Response {
    let status = error.status();
    match error {
        PaywallError::Internal { detail } => tracing::error!(%detail, "paywall internal error"),
        PaywallError::MintUnavailable { detail } => {
            tracing::warn!(%detail, "mint unavailable; answering 503")
        }
        other => tracing::debug!(code = other.code(), error = %other, "credential refused"),
    }
    let offers = error.offers_challenge();
    let mut response = match (&challenges.x402_v1, offers) {
        (Some(fields), true) => {
            let mut body = serde_json::Map::new();
            body.insert("detail".into(), error.public_detail().into());
            body.insert("code".into(), error.code().into());
            body.extend(fields.clone());
            let mut r = (status, Json(serde_json::Value::Object(body))).into_response();
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        _ => json_error(status, error.code(), error.public_detail()),
    };
    let headers = response.headers_mut();
    if offers && !challenges.headers.is_empty() {
        let mut exposed: Vec<&str> = Vec::new();
        for (name, value) in &challenges.headers {
            headers.append(name.clone(), value.clone());
            let shown = match name.as_str() {
                "x-cashu" => X_CASHU,
                "www-authenticate" => "WWW-Authenticate",
                "payment-required" => "PAYMENT-REQUIRED",
                _ => continue,
            };
            if !exposed.contains(&shown) {
                exposed.push(shown);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&exposed.join(", ")) {
            headers.insert(HeaderName::from_static("access-control-expose-headers"), v);
        }
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
    }
    response
}

/// A JSON [`ErrorBody`] answer with `Cache-Control: no-store`.
pub fn json_error(status: StatusCode, code: u32, detail: impl Into<String>) -> Response {
    let mut response = (status, Json(ErrorBody::new(code, detail))).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_follow_the_table() {
        let cases = [
            (PaywallError::PaymentRequired, 402, 40200),
            (PaywallError::Malformed("x".into()), 400, 40201),
            (
                PaywallError::MintNotAccepted { mint: "m".into() },
                400,
                40202,
            ),
            (
                PaywallError::Insufficient {
                    value: 1,
                    fee: 0,
                    price: 2,
                    required: 2,
                    unit: "sat".into(),
                },
                402,
                40204,
            ),
            (PaywallError::Replay, 400, 40207),
            (
                PaywallError::MintUnavailable { detail: "d".into() },
                503,
                50300,
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert_eq!(e.code(), code, "{e:?}");
        }
    }

    #[test]
    fn a_503_says_nothing_internal_and_has_retry_after_but_no_challenge() {
        let e = PaywallError::MintUnavailable {
            detail: "connection refused to 10.0.0.7".into(),
        };
        let challenge = HeaderValue::from_static("creqAxyz");
        let r = refusal_response(&e, Some(&challenge), Duration::from_secs(7));
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[RETRY_AFTER], "7");
        assert!(r.headers().get(x_cashu()).is_none());
        assert!(!e.public_detail().contains("10.0.0.7"));
    }

    #[test]
    fn a_400_carries_a_fresh_challenge_and_no_store() {
        let r = refusal_response(
            &PaywallError::Replay,
            Some(&HeaderValue::from_static("creqAxyz")),
            Duration::from_secs(1),
        );
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[x_cashu()], "creqAxyz");
        assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    }
}
