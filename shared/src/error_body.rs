//! The JSON body of every error answer our servers give, in Cashu's shape.

use serde::{Deserialize, Serialize};

/// A Cashu error body: `{"detail": "...", "code": N}`.
///
/// The mint answers every client error with this shape (NUT-00 "errors"), and the merchant's 402
/// and 400 answers carry it too, so that one decoder serves every client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a human; never an internal message.
    pub detail: String,
    /// A stable machine-readable code (Cashu's codes where one exists).
    pub code: u32,
}

impl ErrorBody {
    pub fn new(code: u32, detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_round_trips_in_cashu_shape() {
        let body = ErrorBody::new(11001, "Token already spent");
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(json, r#"{"detail":"Token already spent","code":11001}"#);
        assert_eq!(serde_json::from_str::<ErrorBody>(&json).unwrap(), body);
    }
}

/// The codes our servers use for errors Cashu's NUTs give no code to. Cashu's own codes
/// (10001 "proof not verified", 11001 "already spent", ...) pass through unchanged.
///
/// | code  | status | meaning |
/// |-------|--------|---------|
/// | 40000 | 400    | the request is malformed: bad JSON, wrong shape, wrong content type |
/// | 40400 | 404    | no such route |
/// | 40500 | 405    | the route exists but not with this method |
/// | 40800 | 408    | the request took longer than the server allows |
/// | 41300 | 413    | the body is larger than the server accepts |
/// | 50000 | 5xx    | an internal error; the body says nothing more, the server log does |
pub mod codes {
    pub const MALFORMED_REQUEST: u32 = 40000;
    pub const NOT_FOUND: u32 = 40400;
    pub const METHOD_NOT_ALLOWED: u32 = 40500;
    pub const TIMEOUT: u32 = 40800;
    pub const BODY_TOO_LARGE: u32 = 41300;
    pub const INTERNAL: u32 = 50000;
}
