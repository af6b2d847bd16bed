//! The allowance registry's errors, and the one function that turns them into HTTP answers
//! (for the draw route and the admin API alike).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cashu_402::error_body::{codes, ErrorBody};

use super::policy::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum AllowanceError {
    /// A draw the policy (or the signature check) refuses.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("no such allowance: {0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// The allowance is not in a state that allows the operation.
    #[error("{0}")]
    Conflict(String),
    #[error("the Lightning payment failed: {0}")]
    Lightning(String),
    #[error("allowance storage: {0}")]
    Storage(String),
    #[error("mint: {0}")]
    Mint(#[from] cdk::Error),
}

impl From<cdk::cdk_database::Error> for AllowanceError {
    fn from(e: cdk::cdk_database::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

impl From<serde_json::Error> for AllowanceError {
    fn from(e: serde_json::Error) -> Self {
        Self::Storage(format!("corrupt record: {e}"))
    }
}

impl IntoResponse for AllowanceError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::Refused(r) => {
                let status = if matches!(r, Refusal::Busy) {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::BAD_REQUEST
                };
                (status, ErrorBody::new(r.code(), r.to_string()))
            }
            e @ Self::NotFound(_) => (
                StatusCode::NOT_FOUND,
                ErrorBody::new(codes::NOT_FOUND, e.to_string()),
            ),
            e @ Self::Invalid(_) => (
                StatusCode::BAD_REQUEST,
                ErrorBody::new(codes::MALFORMED_REQUEST, e.to_string()),
            ),
            e @ Self::Conflict(_) => (
                StatusCode::CONFLICT,
                ErrorBody::new(codes::CONFLICT, e.to_string()),
            ),
            e @ Self::Lightning(_) => {
                tracing::warn!(error = %e, "allowance payment failed");
                (
                    StatusCode::BAD_GATEWAY,
                    ErrorBody::new(codes::LIGHTNING_FAILED, e.to_string()),
                )
            }
            Self::Mint(e) => {
                let text = e.to_string();
                let body = cdk::error::ErrorResponse::from(e);
                let code = u32::from(body.code.to_code());
                if code == codes::INTERNAL {
                    tracing::error!(error = %text, "allowance operation failed in the mint");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        ErrorBody::new(codes::INTERNAL, "Internal error"),
                    )
                } else {
                    // cdk's own refusals (limits, unit) are the client's; the body says why.
                    (StatusCode::BAD_REQUEST, ErrorBody::new(code, body.detail))
                }
            }
            e @ Self::Storage(_) => {
                tracing::error!(error = %e, "allowance storage error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorBody::new(codes::INTERNAL, "Internal error"),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}
