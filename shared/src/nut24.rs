//! Cashu NUT-24: HTTP 402 with an in-band ecash payment.
//!
//! The server answers `402 Payment Required` with `X-Cashu: creqA...` (a NUT-18 payment request;
//! NUT-26 `creqB...` is accepted on input) naming the amount, unit, accepted mints and optionally a
//! P2PK lock. The client retries with `X-Cashu: cashuB...`, a token from one of those mints, in
//! that unit, worth at least the amount (plus the receiver's input fee: the amount is net of
//! fees, as in NUT-18). Encoding and decoding are cdk's (`PaymentRequest`, `Token`); this module
//! adds the NUT-24 rules on top.

use std::str::FromStr;

use cdk::mint_url::MintUrl;
use cdk::nuts::nut10::Kind;
use cdk::nuts::{
    CurrencyUnit, Nut10Secret, Nut10SecretRequest, PaymentRequest, PublicKey, SpendingConditions,
    Token,
};
use cdk::Amount;

/// The header that carries both the challenge and the credential.
pub const X_CASHU: &str = "X-Cashu";

/// Longest header value we try to decode. A token of a few hundred proofs fits comfortably; an
/// attacker's megabyte of base64 is refused before any decoding work.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// What a merchant asks for, decoded from or encoded to an `X-Cashu` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Amount the payee must net, after its input fee.
    pub amount: Amount,
    pub unit: CurrencyUnit,
    /// Mints whose ecash is accepted (never empty).
    pub mints: Vec<MintUrl>,
    /// Opaque request id (`i`), for the merchant's own bookkeeping.
    pub request_id: Option<String>,
    /// Human-readable description (`d`). Never trust it for the amount.
    pub description: Option<String>,
    /// The lock the proofs must carry (`nut10`), when the merchant asks for one.
    pub lock: Option<SpendingConditions>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("X-Cashu challenge is longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    #[error("X-Cashu challenge is not a NUT-18/NUT-26 payment request: {0}")]
    Decode(String),
    #[error("X-Cashu challenge has no amount (`a`)")]
    MissingAmount,
    #[error("X-Cashu challenge amount is zero")]
    ZeroAmount,
    #[error("X-Cashu challenge has no unit (`u`)")]
    MissingUnit,
    #[error("X-Cashu challenge names no accepted mint (`m`)")]
    NoMints,
    #[error("X-Cashu challenge names a mint that is not an http(s) URL: {0:?}")]
    BadMint(String),
    #[error("X-Cashu challenge asks for an unsupported lock: {0}")]
    UnsupportedLock(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("X-Cashu token is empty")]
    Empty,
    #[error("X-Cashu token is longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    #[error("X-Cashu value is not a Cashu token (cashuA/cashuB): {0}")]
    Decode(String),
    #[error("X-Cashu token names a mint that is not an http(s) URL: {0:?}")]
    BadMint(String),
}

impl Challenge {
    /// A challenge for `amount` `unit` payable with ecash from `mint`.
    pub fn new(amount: Amount, unit: CurrencyUnit, mint: MintUrl) -> Self {
        Self {
            amount,
            unit,
            mints: vec![mint],
            request_id: None,
            description: None,
            lock: None,
        }
    }

    /// Asks for proofs locked to `pubkey` (NUT-11 P2PK), so that the token is worthless to
    /// anyone who intercepts it.
    pub fn locked_to(mut self, pubkey: PublicKey) -> Self {
        self.lock = Some(SpendingConditions::new_p2pk(pubkey, None));
        self
    }

    /// The P2PK key the proofs must be locked to, if the challenge asks for a P2PK lock.
    pub fn lock_pubkey(&self) -> Option<PublicKey> {
        match &self.lock {
            Some(SpendingConditions::P2PKConditions { data, .. }) => Some(*data),
            _ => None,
        }
    }

    /// The NUT-18 request this challenge is.
    pub fn to_payment_request(&self) -> Result<PaymentRequest, ChallengeError> {
        let mut builder = PaymentRequest::builder()
            .amount(self.amount)
            .unit(self.unit.clone())
            .mints(self.mints.clone());
        if let Some(id) = &self.request_id {
            builder = builder.payment_id(id.clone());
        }
        if let Some(d) = &self.description {
            builder = builder.description(d.clone());
        }
        if let Some(lock) = &self.lock {
            let nut10 = Nut10SecretRequest::try_from(lock.clone())
                .map_err(|e| ChallengeError::UnsupportedLock(e.to_string()))?;
            builder = builder.nut10(nut10);
        }
        Ok(builder.build())
    }

    /// The `X-Cashu` header value (`creqA...`).
    pub fn encode(&self) -> Result<String, ChallengeError> {
        Ok(self.to_payment_request()?.to_string())
    }

    /// Decodes an `X-Cashu` challenge: `creqA` (padded or not, CBOR `undefined` as absent) or
    /// `creqB` (either case).
    pub fn parse(header: &str) -> Result<Self, ChallengeError> {
        let header = header.trim();
        if header.len() > MAX_HEADER_LEN {
            return Err(ChallengeError::TooLong);
        }
        let request =
            PaymentRequest::from_str(header).map_err(|e| ChallengeError::Decode(e.to_string()))?;
        Self::try_from(request)
    }
}

impl TryFrom<PaymentRequest> for Challenge {
    type Error = ChallengeError;

    fn try_from(request: PaymentRequest) -> Result<Self, Self::Error> {
        let amount = request.amount.ok_or(ChallengeError::MissingAmount)?;
        if amount == Amount::ZERO {
            return Err(ChallengeError::ZeroAmount);
        }
        let unit = request.unit.ok_or(ChallengeError::MissingUnit)?;
        if request.mints.is_empty() {
            return Err(ChallengeError::NoMints);
        }
        if let Some(bad) = request.mints.iter().find(|m| !is_http_mint_url(m)) {
            return Err(ChallengeError::BadMint(bad.to_string()));
        }
        let lock = match request.nut10 {
            None => None,
            Some(nut10) => {
                if nut10.kind != Kind::P2PK {
                    return Err(ChallengeError::UnsupportedLock(format!(
                        "kind {:?} (only P2PK is supported)",
                        nut10.kind
                    )));
                }
                let conditions = SpendingConditions::try_from(Nut10Secret::from(nut10))
                    .map_err(|e| ChallengeError::UnsupportedLock(e.to_string()))?;
                Some(conditions)
            }
        };
        Ok(Self {
            amount,
            unit,
            mints: request.mints,
            request_id: request.payment_id,
            description: request.description,
            lock,
        })
    }
}

/// Decodes an `X-Cashu` credential: a `cashuB` (V4) or `cashuA` (V3) token.
pub fn parse_credential(header: &str) -> Result<Token, CredentialError> {
    let header = header.trim();
    if header.is_empty() {
        return Err(CredentialError::Empty);
    }
    if header.len() > MAX_HEADER_LEN {
        return Err(CredentialError::TooLong);
    }
    let token = Token::from_str(header).map_err(|e| CredentialError::Decode(e.to_string()))?;
    let mints = match &token {
        Token::TokenV3(t) => t.mint_urls(),
        Token::TokenV4(t) => vec![t.mint_url.clone()],
    };
    if let Some(bad) = mints.iter().find(|m| !is_http_mint_url(m)) {
        return Err(CredentialError::BadMint(bad.to_string()));
    }
    Ok(token)
}

/// True when `mint` is an `http` or `https` URL with a host, written the way it decodes.
///
/// cdk's `MintUrl` only normalises the text around `://`, so it takes `https://://x` or a
/// leading control character and yields a "URL" such as `https://` that no HTTP client can reach
/// and that does not decode again once re-encoded (found by the `nut24_challenge` fuzz target).
pub fn is_http_mint_url(mint: &MintUrl) -> bool {
    let text = mint.to_string();
    let Ok(url) = mint.join_paths(&[]) else {
        return false;
    };
    matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && !text.chars().any(|c| c.is_control() || c.is_whitespace())
        && MintUrl::from_str(&text).is_ok_and(|again| &again == mint)
}

#[cfg(test)]
#[path = "nut24_tests.rs"]
mod tests;
