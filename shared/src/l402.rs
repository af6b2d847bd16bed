//! L402 (formerly LSAT): a Lightning invoice in a 402 challenge, a macaroon plus the payment
//! preimage as the credential (lightninglabs/L402 protocol-specification.md).
//!
//! Challenge (server → client, on `402`):
//! `WWW-Authenticate: L402 version="0", token="<base64 macaroon>", invoice="<bolt11>"`.
//! On input we also accept the scheme name `LSAT`, the parameter name `macaroon=` for `token=`,
//! a missing `version`, unknown parameters (ignored), several challenges in one header value
//! (`L402 ..., Basic realm="x"`) and several `WWW-Authenticate` headers.
//!
//! Credential (client → server): `Authorization: L402 <macaroon>[,<macaroon>…]:<hex preimage>`.
//!
//! Same-mint payments (our extension, see [`Preimage`]): when the payer's Cashu mint is the mint
//! that issued the merchant's invoice, the mint settles the melt internally and returns no
//! preimage. The payer then sends the credential with an **empty** preimage field,
//! `Authorization: L402 <macaroon>:`. A merchant accepts that form only when the macaroon is
//! authentic and its own mint quote for the macaroon's payment hash is paid at the mint.

use std::str::FromStr;

use base64::Engine;
use cdk::lightning_invoice::Bolt11Invoice;
use cdk::secp256k1::hashes::{sha256, Hash};

use crate::www_auth::{self, AuthChallenge};

/// The header that carries the challenge.
pub const WWW_AUTHENTICATE: &str = "WWW-Authenticate";
/// The header that carries the credential.
pub const AUTHORIZATION: &str = "Authorization";
/// The scheme name we emit.
pub const SCHEME: &str = "L402";
/// The legacy scheme name, accepted on input.
pub const LEGACY_SCHEME: &str = "LSAT";
/// Longest header value we try to decode.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// One L402 challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L402Challenge {
    /// The macaroon, base64 as sent (opaque to the payer).
    pub token: String,
    /// The BOLT11 invoice to pay.
    pub invoice: String,
    /// The `version` parameter, when present.
    pub version: Option<String>,
}

/// What a payer needs to know about an L402 invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceInfo {
    /// Amount in millisatoshi; `None` for an amountless invoice.
    pub amount_msat: Option<u64>,
    pub payment_hash: [u8; 32],
    /// Unix time after which the invoice can no longer be paid.
    pub expires_at: u64,
}

impl InvoiceInfo {
    /// The amount rounded up to whole satoshi.
    pub fn amount_sat(&self) -> Option<u64> {
        self.amount_msat.map(|m| m.div_ceil(1000))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum L402Error {
    #[error("L402 header is longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    #[error("L402 challenge has no token (`token=` or `macaroon=`)")]
    MissingToken,
    #[error("L402 challenge has no invoice (`invoice=`)")]
    MissingInvoice,
    #[error("L402 invoice is not a BOLT11 invoice: {0}")]
    Invoice(String),
    #[error("L402 invoice names no amount (amountless invoices are not paid)")]
    AmountlessInvoice,
    #[error("Authorization header is not an L402 credential (scheme L402 or LSAT)")]
    NotL402,
    #[error("L402 credential has no `:` between the macaroon and the preimage")]
    MissingColon,
    #[error("L402 credential has no macaroon")]
    MissingMacaroon,
    #[error("L402 preimage is not 32 bytes of hex")]
    BadPreimage,
}

impl L402Challenge {
    pub fn new(token: impl Into<String>, invoice: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            invoice: invoice.into(),
            version: Some("0".into()),
        }
    }

    /// The `WWW-Authenticate` header value.
    pub fn encode(&self) -> String {
        match &self.version {
            Some(v) => format!(
                "{SCHEME} version=\"{v}\", token=\"{}\", invoice=\"{}\"",
                self.token, self.invoice
            ),
            None => format!(
                "{SCHEME} token=\"{}\", invoice=\"{}\"",
                self.token, self.invoice
            ),
        }
    }

    /// Every L402/LSAT challenge in the given `WWW-Authenticate` header values, in order, with
    /// the reason for each L402 challenge that is malformed. Other schemes are skipped. When a
    /// server sends the same challenge as `LSAT` and as `L402` (Aperture does), it is listed once.
    pub fn parse_all<'a>(
        header_values: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Result<Self, L402Error>> {
        let mut out: Vec<Result<Self, L402Error>> = Vec::new();
        for value in header_values {
            if value.len() > MAX_HEADER_LEN {
                out.push(Err(L402Error::TooLong));
                continue;
            }
            for challenge in www_auth::parse(value) {
                if !is_l402_scheme(&challenge.scheme) {
                    continue;
                }
                let parsed = Self::from_auth(&challenge);
                if !out.contains(&parsed) {
                    out.push(parsed);
                }
            }
        }
        out
    }

    /// The first well-formed L402 challenge in one header value.
    pub fn parse(header_value: &str) -> Result<Self, L402Error> {
        let all = Self::parse_all([header_value]);
        let mut first_err = None;
        for c in all {
            match c {
                Ok(c) => return Ok(c),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or(L402Error::NotL402))
    }

    fn from_auth(c: &AuthChallenge) -> Result<Self, L402Error> {
        let token = c
            .param("token")
            .or_else(|| c.param("macaroon"))
            .filter(|t| !t.is_empty())
            .ok_or(L402Error::MissingToken)?;
        let invoice = c
            .param("invoice")
            .filter(|i| !i.is_empty())
            .ok_or(L402Error::MissingInvoice)?;
        Ok(Self {
            token: token.to_string(),
            invoice: invoice.to_string(),
            version: c.param("version").map(str::to_string),
        })
    }

    /// Decodes the invoice (amount, payment hash, expiry).
    pub fn invoice_info(&self) -> Result<InvoiceInfo, L402Error> {
        decode_invoice(&self.invoice)
    }
}

fn is_l402_scheme(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case(SCHEME) || scheme.eq_ignore_ascii_case(LEGACY_SCHEME)
}

/// Decodes a BOLT11 invoice's amount, payment hash and expiry.
pub fn decode_invoice(bolt11: &str) -> Result<InvoiceInfo, L402Error> {
    let bolt11 = bolt11.trim();
    if bolt11.len() > MAX_HEADER_LEN {
        return Err(L402Error::TooLong);
    }
    let invoice = Bolt11Invoice::from_str(bolt11).map_err(|e| L402Error::Invoice(e.to_string()))?;
    let expires_at = invoice
        .expires_at()
        .map(|d| d.as_secs())
        .unwrap_or(u64::MAX);
    Ok(InvoiceInfo {
        amount_msat: invoice.amount_milli_satoshis(),
        payment_hash: invoice.payment_hash().to_byte_array(),
        expires_at,
    })
}

/// The payment preimage part of a credential.
#[derive(Clone, PartialEq, Eq)]
pub enum Preimage {
    /// 32 bytes whose SHA-256 is the invoice's payment hash.
    Known([u8; 32]),
    /// The payer's mint settled the invoice internally and returned no preimage (encoded as an
    /// empty field). Proof of payment is then the issuing mint's quote state, which only the
    /// merchant that owns the quote can check.
    SettledByMint,
}

impl std::fmt::Debug for Preimage {
    // A preimage is a bearer secret once paired with its macaroon: never log it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Known(_) => f.write_str("Preimage::Known(..)"),
            Self::SettledByMint => f.write_str("Preimage::SettledByMint"),
        }
    }
}

impl Preimage {
    /// The credential's preimage field: 64 hex digits, or empty for `SettledByMint`.
    pub fn to_hex(&self) -> String {
        match self {
            Self::Known(p) => hex_encode(p),
            Self::SettledByMint => String::new(),
        }
    }

    /// The inverse of [`Preimage::to_hex`]; `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Self> {
        match s.trim() {
            "" => Some(Self::SettledByMint),
            hex => parse_hex32(hex).map(Self::Known),
        }
    }

    /// Whether `sha256(preimage) == payment_hash`. `SettledByMint` never matches: it needs the
    /// mint's word instead.
    pub fn matches(&self, payment_hash: &[u8; 32]) -> bool {
        match self {
            Self::Known(p) => sha256::Hash::hash(p).to_byte_array() == *payment_hash,
            Self::SettledByMint => false,
        }
    }
}

/// An L402 credential: one or more macaroons and the preimage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L402Credential {
    /// Base64 macaroons, as received in the challenge (never empty).
    pub macaroons: Vec<String>,
    pub preimage: Preimage,
}

impl L402Credential {
    pub fn new(macaroon: impl Into<String>, preimage: Preimage) -> Self {
        Self {
            macaroons: vec![macaroon.into()],
            preimage,
        }
    }

    /// The `Authorization` header value.
    pub fn encode(&self) -> String {
        format!(
            "{SCHEME} {}:{}",
            self.macaroons.join(","),
            self.preimage.to_hex()
        )
    }

    /// Decodes an `Authorization: L402|LSAT <mac>[,<mac>]:<hex preimage>` value.
    pub fn parse(header_value: &str) -> Result<Self, L402Error> {
        let value = header_value.trim();
        if value.len() > MAX_HEADER_LEN {
            return Err(L402Error::TooLong);
        }
        let (scheme, rest) = value.split_once(' ').ok_or(L402Error::NotL402)?;
        if !is_l402_scheme(scheme) {
            return Err(L402Error::NotL402);
        }
        let (macs, preimage) = rest
            .trim()
            .rsplit_once(':')
            .ok_or(L402Error::MissingColon)?;
        let macaroons: Vec<String> = macs
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect();
        if macaroons.is_empty() {
            return Err(L402Error::MissingMacaroon);
        }
        // Macaroons stay opaque here (the spec's own example is not valid base64); the
        // server that issued them decodes them.
        if macaroons.iter().any(|m| m.contains(char::is_whitespace)) {
            return Err(L402Error::MissingColon);
        }
        let preimage = match preimage.trim() {
            "" => Preimage::SettledByMint,
            hex => Preimage::Known(parse_hex32(hex).ok_or(L402Error::BadPreimage)?),
        };
        Ok(Self {
            macaroons,
            preimage,
        })
    }
}

/// Decodes standard or URL-safe base64, padded or not.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits (either case) to 32 bytes.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
#[path = "l402_tests.rs"]
pub(crate) mod tests;
