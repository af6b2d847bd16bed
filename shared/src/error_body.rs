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
///
/// A paywall (NUT-24) answers a request it will not serve with one of these. Every refusal of a
/// credential also carries a fresh `X-Cashu` challenge, so a client can pay again.
///
/// | code  | status | meaning |
/// |-------|--------|---------|
/// | 40200 | 402    | payment required: no credential was sent |
/// | 40201 | 400    | the `X-Cashu` value is not a Cashu token |
/// | 40202 | 400    | the token is from a mint the merchant does not accept |
/// | 40203 | 400    | the token's unit is not the price's unit |
/// | 40204 | 400    | the token is worth less than the price (plus the mint's input fee) |
/// | 40205 | 400    | the proofs are not locked as the challenge asked |
/// | 40206 | 400    | a proof lacks a valid DLEQ proof (NUT-12) for an offline check |
/// | 40207 | 400    | the token was already spent (a replay) |
/// | 40208 | 400    | the mint refused the token for another reason (the detail says which) |
/// | 50300 | 503    | the mint cannot be reached; the token was not consumed, retry later |
pub mod codes {
    pub const MALFORMED_REQUEST: u32 = 40000;
    pub const NOT_FOUND: u32 = 40400;
    pub const METHOD_NOT_ALLOWED: u32 = 40500;
    pub const TIMEOUT: u32 = 40800;
    pub const BODY_TOO_LARGE: u32 = 41300;
    pub const INTERNAL: u32 = 50000;

    pub const PAYMENT_REQUIRED: u32 = 40200;
    pub const TOKEN_MALFORMED: u32 = 40201;
    pub const MINT_NOT_ACCEPTED: u32 = 40202;
    pub const UNIT_MISMATCH: u32 = 40203;
    pub const AMOUNT_TOO_LOW: u32 = 40204;
    pub const LOCK_INVALID: u32 = 40205;
    pub const DLEQ_INVALID: u32 = 40206;
    pub const TOKEN_SPENT: u32 = 40207;
    pub const TOKEN_REFUSED: u32 = 40208;
    pub const MINT_UNAVAILABLE: u32 = 50300;
    pub const L402_UNPAID: u32 = 40209;
    pub const L402_INVALID: u32 = 40100;

    pub const ALLOWANCE_UNKNOWN: u32 = 40300;
    pub const ALLOWANCE_BAD_SIGNATURE: u32 = 40301;
    pub const ALLOWANCE_REVOKED: u32 = 40302;
    pub const ALLOWANCE_EXPIRED: u32 = 40303;
    pub const ALLOWANCE_PER_DRAW: u32 = 40304;
    pub const ALLOWANCE_PER_DAY: u32 = 40305;
    pub const ALLOWANCE_BALANCE: u32 = 40306;
    pub const ALLOWANCE_BUSY: u32 = 40307;

    pub const CONFLICT: u32 = 40900;
    pub const LIGHTNING_FAILED: u32 = 50200;
}
