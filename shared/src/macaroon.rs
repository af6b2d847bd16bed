//! The L402 token: a macaroon (Birgisson et al. 2014) in the libmacaroons **v2 binary format**,
//! with first-party caveats only, as Aperture issues them (lightninglabs/L402 macaroon-spec.md).
//!
//! - Identifier (66 bytes, big-endian): `version u16 (0) ‖ payment_hash[32] ‖ token_id[32]`.
//! - Signature chain: `k = HMAC-SHA256("macaroons-key-generator", root_key)` (the libmacaroons key
//!   derivation), `sig0 = HMAC(k, identifier)`, `sig_i = HMAC(sig_{i-1}, caveat_i)`.
//!   Caveats can only be appended, so every caveat narrows what the macaroon allows.
//! - Caveats are `name=value` strings; the merchant decides what they mean.
//! - Binary: `0x02 [1 len location] 2 len id 0 {[1 len loc] 2 len caveat-id 0} 0 6 32 sig`
//!   (field type byte, LEB128 length, data; `0` ends a section). Third-party caveats (field 4)
//!   are refused on decode.

use base64::Engine;
use cdk::secp256k1::hashes::hmac::{Hmac, HmacEngine};
use cdk::secp256k1::hashes::{sha256, Hash, HashEngine};

use crate::l402::decode_base64;

/// Longest macaroon we decode.
pub const MAX_MACAROON_LEN: usize = 16 * 1024;
/// The identifier version we issue and accept.
pub const IDENTIFIER_VERSION: u16 = 0;

const FIELD_EOS: u8 = 0;
const FIELD_LOCATION: u8 = 1;
const FIELD_IDENTIFIER: u8 = 2;
const FIELD_VID: u8 = 4;
const FIELD_SIGNATURE: u8 = 6;
const FORMAT_V2: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacaroonError {
    #[error("macaroon is longer than {MAX_MACAROON_LEN} bytes")]
    TooLong,
    #[error("macaroon is not base64")]
    NotBase64,
    #[error("macaroon is not in the v2 binary format: {0}")]
    Format(&'static str),
    #[error("macaroon has a third-party caveat, which is not supported")]
    ThirdPartyCaveat,
    #[error("macaroon identifier is not an L402 identifier (66 bytes, version 0)")]
    Identifier,
}

/// The L402 identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identifier {
    pub version: u16,
    pub payment_hash: [u8; 32],
    pub token_id: [u8; 32],
}

impl Identifier {
    pub fn new(payment_hash: [u8; 32], token_id: [u8; 32]) -> Self {
        Self {
            version: IDENTIFIER_VERSION,
            payment_hash,
            token_id,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(66);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.payment_hash);
        out.extend_from_slice(&self.token_id);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MacaroonError> {
        if bytes.len() != 66 {
            return Err(MacaroonError::Identifier);
        }
        let version = u16::from_be_bytes([bytes[0], bytes[1]]);
        if version != IDENTIFIER_VERSION {
            return Err(MacaroonError::Identifier);
        }
        let mut payment_hash = [0u8; 32];
        payment_hash.copy_from_slice(&bytes[2..34]);
        let mut token_id = [0u8; 32];
        token_id.copy_from_slice(&bytes[34..66]);
        Ok(Self {
            version,
            payment_hash,
            token_id,
        })
    }
}

/// A macaroon with first-party caveats.
#[derive(Clone, PartialEq, Eq)]
pub struct Macaroon {
    pub location: String,
    pub identifier: Vec<u8>,
    pub caveats: Vec<String>,
    signature: [u8; 32],
}

impl std::fmt::Debug for Macaroon {
    // The signature is what makes the macaroon a bearer credential: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Macaroon")
            .field("location", &self.location)
            .field("identifier_len", &self.identifier.len())
            .field("caveats", &self.caveats)
            .finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut engine = HmacEngine::<sha256::Hash>::new(key);
    engine.input(data);
    Hmac::<sha256::Hash>::from_engine(engine).to_byte_array()
}

fn derive_key(root_key: &[u8]) -> [u8; 32] {
    let mut generator = [0u8; 32];
    generator[..23].copy_from_slice(b"macaroons-key-generator");
    hmac(&generator, root_key)
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Macaroon {
    /// A new macaroon signed with `root_key`.
    pub fn new(root_key: &[u8], identifier: Vec<u8>, location: impl Into<String>) -> Self {
        let signature = hmac(&derive_key(root_key), &identifier);
        Self {
            location: location.into(),
            identifier,
            caveats: Vec::new(),
            signature,
        }
    }

    /// Appends a first-party caveat (`name=value`), extending the signature chain.
    pub fn add_caveat(&mut self, caveat: impl Into<String>) {
        let caveat = caveat.into();
        self.signature = hmac(&self.signature, caveat.as_bytes());
        self.caveats.push(caveat);
    }

    /// Whether the signature chain is the one `root_key` produces. Caveats are not checked.
    pub fn verify_signature(&self, root_key: &[u8]) -> bool {
        let mut sig = hmac(&derive_key(root_key), &self.identifier);
        for c in &self.caveats {
            sig = hmac(&sig, c.as_bytes());
        }
        ct_eq(&sig, &self.signature)
    }

    /// The L402 identifier.
    pub fn l402_identifier(&self) -> Result<Identifier, MacaroonError> {
        Identifier::decode(&self.identifier)
    }

    /// Caveats as `(name, value)`; a caveat without `=` has an empty value.
    pub fn caveat_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.caveats
            .iter()
            .map(|c| c.split_once('=').unwrap_or((c.as_str(), "")))
            .map(|(n, v)| (n.trim(), v.trim()))
    }

    /// The v2 binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_V2];
        if !self.location.is_empty() {
            put_field(&mut out, FIELD_LOCATION, self.location.as_bytes());
        }
        put_field(&mut out, FIELD_IDENTIFIER, &self.identifier);
        out.push(FIELD_EOS);
        for c in &self.caveats {
            put_field(&mut out, FIELD_IDENTIFIER, c.as_bytes());
            out.push(FIELD_EOS);
        }
        out.push(FIELD_EOS);
        put_field(&mut out, FIELD_SIGNATURE, &self.signature);
        out
    }

    /// Standard base64 with padding, as L402 headers carry it.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.encode())
    }

    pub fn from_base64(s: &str) -> Result<Self, MacaroonError> {
        if s.len() > MAX_MACAROON_LEN * 2 {
            return Err(MacaroonError::TooLong);
        }
        let bytes = decode_base64(s.trim()).ok_or(MacaroonError::NotBase64)?;
        Self::decode(&bytes)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MacaroonError> {
        if bytes.len() > MAX_MACAROON_LEN {
            return Err(MacaroonError::TooLong);
        }
        let mut r = Reader { bytes, pos: 0 };
        if r.byte()? != FORMAT_V2 {
            return Err(MacaroonError::Format("not version 2"));
        }
        let mut location = String::new();
        let (mut ty, mut data) = r.field()?;
        if ty == FIELD_LOCATION {
            location = utf8(data)?;
            (ty, data) = r.field()?;
        }
        if ty != FIELD_IDENTIFIER {
            return Err(MacaroonError::Format("identifier missing"));
        }
        let identifier = data.to_vec();
        if r.byte()? != FIELD_EOS {
            return Err(MacaroonError::Format("header not terminated"));
        }
        let mut caveats = Vec::new();
        loop {
            if r.peek()? == FIELD_EOS {
                r.pos += 1;
                break;
            }
            let (mut ty, mut data) = r.field()?;
            if ty == FIELD_LOCATION {
                (ty, data) = r.field()?;
            }
            if ty != FIELD_IDENTIFIER {
                return Err(MacaroonError::Format("caveat identifier missing"));
            }
            let caveat = utf8(data)?;
            match r.byte()? {
                FIELD_EOS => caveats.push(caveat),
                FIELD_VID => return Err(MacaroonError::ThirdPartyCaveat),
                _ => return Err(MacaroonError::Format("caveat not terminated")),
            }
        }
        let (ty, data) = r.field()?;
        if ty != FIELD_SIGNATURE || data.len() != 32 {
            return Err(MacaroonError::Format("signature missing"));
        }
        let mut signature = [0u8; 32];
        signature.copy_from_slice(data);
        if r.pos != bytes.len() {
            return Err(MacaroonError::Format("trailing bytes"));
        }
        Ok(Self {
            location,
            identifier,
            caveats,
            signature,
        })
    }
}

fn utf8(data: &[u8]) -> Result<String, MacaroonError> {
    String::from_utf8(data.to_vec()).map_err(|_| MacaroonError::Format("field is not UTF-8"))
}

fn put_field(out: &mut Vec<u8>, ty: u8, data: &[u8]) {
    out.push(ty);
    let mut len = data.len();
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(data);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Result<u8, MacaroonError> {
        self.bytes
            .get(self.pos)
            .copied()
            .ok_or(MacaroonError::Format("truncated"))
    }

    fn byte(&mut self) -> Result<u8, MacaroonError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    fn field(&mut self) -> Result<(u8, &'a [u8]), MacaroonError> {
        let ty = self.byte()?;
        let mut len: usize = 0;
        for shift in (0..).step_by(7).take(4) {
            let b = self.byte()?;
            len |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|e| *e <= self.bytes.len())
                    .ok_or(MacaroonError::Format("truncated field"))?;
                let data = &self.bytes[self.pos..end];
                self.pos = end;
                return Ok((ty, data));
            }
        }
        Err(MacaroonError::Format("field length too long"))
    }
}

#[cfg(test)]
#[path = "macaroon_tests.rs"]
mod tests;
