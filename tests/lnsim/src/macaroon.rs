//! Macaroons as aperture mints them for L402, written independently of our merchant's code so
//! that the test server is a second implementation: the libmacaroons V2 binary format, the L402
//! identifier `version u16 ‖ payment_hash[32] ‖ token_id[32]`, and first-party caveats in an
//! HMAC-SHA256 chain (`sig0 = HMAC(derive(root), id)`, `sig_i = HMAC(sig_{i-1}, caveat_i)`).

use cdk_common::bitcoin::hashes::hmac::{Hmac, HmacEngine};
use cdk_common::bitcoin::hashes::{sha256, Hash, HashEngine};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MacaroonError {
    #[error("not a V2 macaroon: {0}")]
    Format(&'static str),
    #[error("the signature does not verify")]
    Signature,
    #[error("not an L402 identifier")]
    Identifier,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Macaroon {
    pub location: String,
    pub identifier: Vec<u8>,
    pub caveats: Vec<String>,
    pub signature: [u8; 32],
}

const LOCATION: u8 = 1;
const IDENTIFIER: u8 = 2;
const SIGNATURE: u8 = 6;
const EOS: u8 = 0;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut engine = HmacEngine::<sha256::Hash>::new(key);
    engine.input(data);
    Hmac::<sha256::Hash>::from_engine(engine).to_byte_array()
}

/// libmacaroons derives the HMAC key from the root key with this fixed generator key.
fn derive(root: &[u8]) -> [u8; 32] {
    let mut generator = [0u8; 32];
    generator[..23].copy_from_slice(b"macaroons-key-generator");
    hmac(&generator, root)
}

/// The L402 identifier: version 0, the invoice's payment hash, a random token id.
pub fn l402_identifier(payment_hash: &[u8; 32], token_id: &[u8; 32]) -> Vec<u8> {
    let mut id = vec![0u8, 0u8];
    id.extend_from_slice(payment_hash);
    id.extend_from_slice(token_id);
    id
}

impl Macaroon {
    pub fn new(root: &[u8], location: &str, identifier: Vec<u8>, caveats: &[String]) -> Self {
        let mut signature = hmac(&derive(root), &identifier);
        for c in caveats {
            signature = hmac(&signature, c.as_bytes());
        }
        Self {
            location: location.to_string(),
            identifier,
            caveats: caveats.to_vec(),
            signature,
        }
    }

    /// Checks the signature chain against `root`.
    pub fn verify(&self, root: &[u8]) -> Result<(), MacaroonError> {
        let expected = Self::new(root, &self.location, self.identifier.clone(), &self.caveats);
        // Not constant time: a test fixture, never a product.
        if expected.signature == self.signature {
            Ok(())
        } else {
            Err(MacaroonError::Signature)
        }
    }

    /// The payment hash the L402 identifier commits to.
    pub fn payment_hash(&self) -> Result<[u8; 32], MacaroonError> {
        if self.identifier.len() != 66 || self.identifier[..2] != [0, 0] {
            return Err(MacaroonError::Identifier);
        }
        let mut h = [0u8; 32];
        h.copy_from_slice(&self.identifier[2..34]);
        Ok(h)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![2u8];
        if !self.location.is_empty() {
            field(&mut out, LOCATION, self.location.as_bytes());
        }
        field(&mut out, IDENTIFIER, &self.identifier);
        out.push(EOS);
        for c in &self.caveats {
            field(&mut out, IDENTIFIER, c.as_bytes());
            out.push(EOS);
        }
        out.push(EOS);
        field(&mut out, SIGNATURE, &self.signature);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MacaroonError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.byte()? != 2 {
            return Err(MacaroonError::Format("version is not 2"));
        }
        let mut location = String::new();
        let (mut kind, mut data) = r.field()?;
        if kind == LOCATION {
            location = String::from_utf8(data.to_vec())
                .map_err(|_| MacaroonError::Format("location is not UTF-8"))?;
            (kind, data) = r.field()?;
        }
        if kind != IDENTIFIER {
            return Err(MacaroonError::Format("no identifier"));
        }
        let identifier = data.to_vec();
        if r.byte()? != EOS {
            return Err(MacaroonError::Format(
                "unexpected field after the identifier",
            ));
        }
        let mut caveats = Vec::new();
        loop {
            if r.peek()? == EOS {
                r.byte()?;
                break;
            }
            let (kind, data) = r.field()?;
            if kind != IDENTIFIER {
                return Err(MacaroonError::Format(
                    "third-party caveats are not supported",
                ));
            }
            caveats.push(
                String::from_utf8(data.to_vec())
                    .map_err(|_| MacaroonError::Format("caveat is not UTF-8"))?,
            );
            if r.byte()? != EOS {
                return Err(MacaroonError::Format("unexpected field in a caveat"));
            }
        }
        let (kind, data) = r.field()?;
        if kind != SIGNATURE || data.len() != 32 {
            return Err(MacaroonError::Format("no 32-byte signature"));
        }
        let mut signature = [0u8; 32];
        signature.copy_from_slice(data);
        Ok(Self {
            location,
            identifier,
            caveats,
            signature,
        })
    }
}

fn field(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    out.push(kind);
    let mut n = data.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
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
        let kind = self.byte()?;
        let mut len: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            len |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        let len = usize::try_from(len).map_err(|_| MacaroonError::Format("length"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(MacaroonError::Format("truncated"))?;
        let data = &self.bytes[self.pos..end];
        self.pos = end;
        Ok((kind, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_verifies() {
        let id = l402_identifier(&[7; 32], &[9; 32]);
        let caveats = vec!["services=fixture:0".to_string()];
        let m = Macaroon::new(b"root", "fixture", id, &caveats);
        let decoded = Macaroon::decode(&m.encode()).unwrap();
        assert_eq!(decoded, m);
        assert_eq!(decoded.verify(b"root"), Ok(()));
        assert_eq!(decoded.verify(b"other"), Err(MacaroonError::Signature));
        assert_eq!(decoded.payment_hash().unwrap(), [7; 32]);
    }

    #[test]
    fn a_changed_caveat_breaks_the_signature() {
        let m = Macaroon::new(b"root", "", l402_identifier(&[1; 32], &[2; 32]), &[]);
        let mut widened = m.clone();
        widened.caveats.push("anything=goes".into());
        assert_eq!(widened.verify(b"root"), Err(MacaroonError::Signature));
    }
}
