//! Blind signing with a NUT-12 DLEQ proof, byte-identical to cdk's
//! `DbSignatory::blind_sign` (`cashu::dhke::sign_message` + `BlindSignature::new`), with what
//! depends only on the mint's key computed once per key instead of once per output.
//!
//! Why: cdk's `calculate_dleq` recomputes the mint's public key `A = a·G` twice per output (once
//! for the deterministic nonce, once for the challenge) and re-keys the HMAC each time; that was
//! about a third of a swap's instructions. The construction is unchanged (NUT-12, cashu 0.18.3):
//!
//! ```text
//! C' = a·B'
//! r  = HMAC-SHA256(key = a, "Cashu_DLEQ_R_v1" || A || B' || C' || ctr)   (first ctr giving a valid scalar)
//! R1 = r·G,  R2 = r·B'
//! e  = SHA256(hex(R1) || hex(R2) || hex(A) || hex(C'))                  (uncompressed points, lowercase hex)
//! s  = r + e·a  (mod n)
//! ```
//!
//! The nonce is deterministic, so the same key and `B'` give the same bytes as cdk; the tests in
//! `signatory.rs` compare against `DbSignatory` output for output.

use cdk::nuts::{BlindSignature, BlindSignatureDleq, Id, PublicKey, SecretKey};
use cdk::{Amount, SECP256K1};
use cdk_common::bitcoin::secp256k1::hashes::{hmac, sha256, Hash, HashEngine, HmacEngine};
use cdk_common::bitcoin::secp256k1::{self, Scalar};

const NONCE_TAG: &[u8] = b"Cashu_DLEQ_R_v1";

/// One amount's key of a keyset, with what every signature under it reuses.
#[derive(Clone)]
pub struct MintKey {
    secret: SecretKey,
    public: PublicKey,
    /// `A` uncompressed, for the nonce message.
    public_uncompressed: [u8; 65],
    /// `A` uncompressed in lowercase hex, for the challenge.
    public_hex: [u8; 130],
    /// HMAC-SHA256 keyed with `a`: cloning it skips hashing the key pads per output.
    nonce_hmac: HmacEngine<sha256::Hash>,
}

impl MintKey {
    /// `public` must be `secret·G`; the caller checked it against the published keys.
    pub fn new(secret: SecretKey, public: PublicKey) -> Self {
        let public_uncompressed = public.to_uncompressed_bytes();
        let nonce_hmac = HmacEngine::<sha256::Hash>::new(secret.as_secret_bytes());
        Self {
            public_uncompressed,
            public_hex: hex_of(&public_uncompressed),
            secret,
            public,
            nonce_hmac,
        }
    }

    pub fn secret(&self) -> &SecretKey {
        &self.secret
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// `C' = a·B'` and its DLEQ proof, as `DbSignatory::blind_sign` builds them.
    pub fn blind_sign(
        &self,
        amount: Amount,
        keyset_id: Id,
        blinded: &PublicKey,
    ) -> Result<BlindSignature, secp256k1::Error> {
        let a = self.secret.as_scalar();
        let c: PublicKey = blinded.mul_tweak(&SECP256K1, &a)?.into();
        let b_bytes = blinded.to_uncompressed_bytes();
        let c_bytes = c.to_uncompressed_bytes();

        let r = self.nonce(&b_bytes, &c_bytes)?;
        let r1 = r.public_key(&SECP256K1).serialize_uncompressed();
        let r2 = blinded
            .mul_tweak(&SECP256K1, &Scalar::from(r))?
            .serialize_uncompressed();

        // cdk's `hash_e` hashes the hex text of the four points; so do we, without the String.
        let mut engine = sha256::Hash::engine();
        engine.input(&hex_of(&r1));
        engine.input(&hex_of(&r2));
        engine.input(&self.public_hex);
        engine.input(&hex_of(&c_bytes));
        let e =
            secp256k1::SecretKey::from_slice(&sha256::Hash::from_engine(engine).to_byte_array())?;

        let s = r.add_tweak(&Scalar::from(e.mul_tweak(&a)?))?;
        Ok(BlindSignature {
            amount,
            keyset_id,
            c,
            dleq: Some(BlindSignatureDleq {
                e: e.into(),
                s: s.into(),
            }),
        })
    }

    /// The deterministic nonce of cashu's `derive_deterministic_nonce`: the first counter whose
    /// HMAC is a valid scalar.
    fn nonce(
        &self,
        blinded: &[u8; 65],
        signature: &[u8; 65],
    ) -> Result<secp256k1::SecretKey, secp256k1::Error> {
        for counter in u8::MIN..=u8::MAX {
            let mut engine = self.nonce_hmac.clone();
            engine.input(NONCE_TAG);
            engine.input(&self.public_uncompressed);
            engine.input(blinded);
            engine.input(signature);
            engine.input(&[counter]);
            let digest = hmac::Hmac::<sha256::Hash>::from_engine(engine).to_byte_array();
            if let Ok(nonce) = secp256k1::SecretKey::from_slice(&digest) {
                return Ok(nonce);
            }
        }
        // Unreachable in practice (each try fails with probability ~2^-128); the caller then
        // hands the batch to cdk, which reports its own error.
        Err(secp256k1::Error::InvalidSecretKey)
    }
}

/// Lowercase hex of an uncompressed point, as the `hex` crate writes it.
fn hex_of(bytes: &[u8; 65]) -> [u8; 130] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 130];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use cdk::dhke::sign_message;

    use super::*;

    #[test]
    fn matches_cashu_for_random_keys_and_messages() {
        let id = Id::from_bytes(&[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
        for i in 0..200u64 {
            let a = SecretKey::generate();
            let key = MintKey::new(a.clone(), a.public_key());
            let blinded = SecretKey::generate().public_key();
            let amount = Amount::from(1u64 << (i % 20));
            let ours = key.blind_sign(amount, id, &blinded).unwrap();
            let c = sign_message(&a, &blinded).unwrap();
            let theirs = BlindSignature::new(amount, c, id, &blinded, &a).unwrap();
            assert_eq!(ours, theirs);
            assert_eq!(
                serde_json::to_string(&ours).unwrap(),
                serde_json::to_string(&theirs).unwrap()
            );
            ours.verify_dleq(a.public_key(), blinded).unwrap();
        }
    }

    #[test]
    fn hex_matches_the_hex_crate_alphabet() {
        let mut bytes = [0u8; 65];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37);
        }
        let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex_of(&bytes).as_slice(), expected.as_bytes());
    }
}
