//! Allowances on the wire: the policy a human sets, the agent's credential, how an agent signs a
//! draw (a NUT-04 mint quote of the custom method [`METHOD`]), and the admin API's JSON types.
//!
//! # A draw
//!
//! `POST /v1/mint/quote/allowance` with a standard custom-method mint quote body whose `pubkey`
//! (NUT-20) is the allowance's agent key, plus four fields ([`DrawAuth`]):
//!
//! ```json
//! {"amount": 100, "unit": "sat", "pubkey": "02…",
//!  "allowance": "al…", "nonce": "<32 hex>", "time": 1767225600, "signature": "<schnorr hex>"}
//! ```
//!
//! `signature` is a BIP-340 signature by the agent key over SHA-256 of [`draw_message`]. The
//! mint refuses a nonce it has seen for this allowance, and a `time` more than
//! [`DRAW_CLOCK_SKEW_SECS`] away from its clock. A paid quote comes back; the agent mints it
//! with a NUT-20 signed `POST /v1/mint/allowance`.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cdk::mint_url::MintUrl;
use cdk::nuts::{PublicKey, SecretKey};
use cdk::secp256k1::schnorr::Signature;
use serde::{Deserialize, Serialize};

/// The custom NUT-04 payment method of draws.
pub const METHOD: &str = "allowance";
/// How far a draw's `time` may be from the mint's clock.
pub const DRAW_CLOCK_SKEW_SECS: u64 = 300;
/// Seconds in the rolling window of the per-day cap.
pub const DAY_SECS: u64 = 24 * 60 * 60;
/// What an agent credential string starts with.
pub const CREDENTIAL_PREFIX: &str = "callowA";

/// The bounds of a metered allowance, enforced by the mint on every draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowancePolicy {
    /// Most one draw may take, in sat.
    pub max_per_draw: u64,
    /// Most the draws of any rolling 24 hours may add up to, in sat.
    pub max_per_day: u64,
    /// Unix seconds after which no draw is allowed (the balance can still be withdrawn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

impl AllowancePolicy {
    /// Checks the numbers make sense on their own.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_per_draw == 0 {
            return Err("max_per_draw must be at least 1".into());
        }
        if self.max_per_day < self.max_per_draw {
            return Err("max_per_day must be at least max_per_draw".into());
        }
        Ok(())
    }
}

/// The four fields a draw request carries besides the NUT-04 ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawAuth {
    pub allowance: String,
    /// 32 lowercase hex characters, fresh for every draw.
    pub nonce: String,
    /// Unix seconds when the agent signed.
    pub time: u64,
    /// BIP-340 signature (hex) over SHA-256 of [`draw_message`].
    pub signature: String,
}

/// The bytes an agent signs to draw `amount` sat from `allowance`.
pub fn draw_message(
    allowance: &str,
    amount: u64,
    unit: &str,
    nonce: &str,
    time: u64,
    pubkey: &PublicKey,
) -> Vec<u8> {
    format!("cashu-allowance-draw:v1:{allowance}:{amount}:{unit}:{nonce}:{time}:{pubkey}")
        .into_bytes()
}

/// Why a draw's signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrawAuthError {
    #[error("nonce must be 32 lowercase hex characters")]
    BadNonce,
    #[error("signature is not a hex BIP-340 signature")]
    Malformed,
    #[error("signature does not verify against the allowance's agent key")]
    Invalid,
}

impl DrawAuth {
    /// Signs a draw of `amount` sat in `unit` with the agent `key`.
    pub fn sign(
        key: &SecretKey,
        allowance: &str,
        amount: u64,
        unit: &str,
        nonce: String,
        time: u64,
    ) -> Result<Self, DrawAuthError> {
        let msg = draw_message(allowance, amount, unit, &nonce, time, &key.public_key());
        let sig = key.sign(&msg).map_err(|_| DrawAuthError::Malformed)?;
        Ok(Self {
            allowance: allowance.to_string(),
            nonce,
            time,
            signature: sig.to_string(),
        })
    }

    /// Checks the nonce's shape and the signature by `pubkey`.
    pub fn verify(&self, amount: u64, unit: &str, pubkey: &PublicKey) -> Result<(), DrawAuthError> {
        if !is_nonce(&self.nonce) {
            return Err(DrawAuthError::BadNonce);
        }
        let sig = Signature::from_str(&self.signature).map_err(|_| DrawAuthError::Malformed)?;
        let msg = draw_message(
            &self.allowance,
            amount,
            unit,
            &self.nonce,
            self.time,
            pubkey,
        );
        pubkey
            .verify(&msg, &sig)
            .map_err(|_| DrawAuthError::Invalid)
    }
}

/// True for 32 lowercase hex characters.
pub fn is_nonce(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True for an allowance id as the mint makes them: `al` and 24 lowercase hex characters.
pub fn is_allowance_id(s: &str) -> bool {
    s.len() == 26
        && s.starts_with("al")
        && s[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What an agent needs to draw: the mint, the allowance id and the agent key. Shown once.
/// Without `secret_key`, the agent registered its own public key and holds the secret itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub mint: MintUrl,
    pub allowance: String,
    pub secret_key: Option<SecretKey>,
}

#[derive(Serialize, Deserialize)]
struct CredentialWire {
    m: String,
    i: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<String>,
}

/// Why a credential string does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an allowance credential: {0}")]
pub struct CredentialError(String);

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wire = CredentialWire {
            m: self.mint.to_string(),
            i: self.allowance.clone(),
            k: self.secret_key.as_ref().map(|k| k.to_secret_hex()),
        };
        let json = serde_json::to_vec(&wire).map_err(|_| fmt::Error)?;
        write!(f, "{CREDENTIAL_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("mint", &self.mint.to_string())
            .field("allowance", &self.allowance)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

impl FromStr for Credential {
    type Err = CredentialError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |m: &str| CredentialError(m.to_string());
        let body = s
            .trim()
            .strip_prefix(CREDENTIAL_PREFIX)
            .ok_or_else(|| err("it does not start with callowA"))?;
        let json = URL_SAFE_NO_PAD
            .decode(body.trim_end_matches('='))
            .map_err(|_| err("bad base64"))?;
        let wire: CredentialWire = serde_json::from_slice(&json).map_err(|_| err("bad JSON"))?;
        let mint = MintUrl::from_str(&wire.m).map_err(|_| err("bad mint URL"))?;
        if !is_allowance_id(&wire.i) {
            return Err(err("bad allowance id"));
        }
        let secret_key = wire
            .k
            .map(|k| SecretKey::from_hex(k).map_err(|_| err("bad key")))
            .transpose()?;
        Ok(Self {
            mint,
            allowance: wire.i,
            secret_key,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Admin API types

/// `POST /admin/v1/allowances/prepaid`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePrepaid {
    pub amount: u64,
    #[serde(default)]
    pub memo: Option<String>,
}

/// `POST /admin/v1/allowances/metered`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMetered {
    /// The first funding invoice's amount, in sat.
    pub amount: u64,
    pub max_per_draw: u64,
    pub max_per_day: u64,
    /// Unix seconds; none means no expiry.
    #[serde(default)]
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub memo: Option<String>,
    /// The agent's own public key (hex). Without it the mint makes a key and puts its secret in
    /// the credential.
    #[serde(default)]
    pub agent_pubkey: Option<String>,
}

/// `POST /admin/v1/allowances/{id}/topup`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopUp {
    pub amount: u64,
}

/// `POST /admin/v1/allowances/{id}/withdraw`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdraw {
    /// A bolt11 invoice with an amount.
    pub invoice: String,
}

/// A Lightning invoice the human pays to fund an allowance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundingView {
    pub quote_id: String,
    pub invoice: String,
    pub amount: u64,
    /// `unpaid`, `paid` (credited) or `expired`.
    pub state: String,
    pub created: u64,
}

/// One entry of a metered allowance's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub time: u64,
    /// `created`, `funding_requested`, `funded`, `draw`, `draw_released`, `withdrawal_started`,
    /// `withdrawn`, `withdrawal_failed` or `revoked`.
    pub kind: String,
    pub amount: u64,
    #[serde(default)]
    pub fee: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// One allowance as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowanceView {
    pub id: String,
    /// `prepaid` or `metered`.
    pub kind: String,
    /// `awaiting_payment`, `active`, `expired`, `revoked` (metered); `awaiting_payment`,
    /// `delivered` (prepaid).
    pub state: String,
    pub memo: Option<String>,
    pub created: u64,
    /// Prepaid: the token's value. Metered: everything funded so far.
    pub amount: u64,
    /// Metered: what can still be drawn or withdrawn. Prepaid: the unspent part of the token.
    pub balance: u64,
    /// Metered: drawn in the last 24 hours.
    #[serde(default)]
    pub drawn_24h: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<AllowancePolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_pubkey: Option<String>,
    #[serde(default)]
    pub fundings: Vec<FundingView>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// Sat drawn per UTC day, the last 14 days, oldest first (metered).
    #[serde(default)]
    pub per_day: Vec<u64>,
    /// Prepaid: the token, once, in the answer that first sees the invoice paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Metered: the agent credential, once, in the answer to `create`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_round_trips_and_hides_its_key() {
        let key = SecretKey::generate();
        let c = Credential {
            mint: MintUrl::from_str("http://127.0.0.1:3338").unwrap(),
            allowance: "al0123456789abcdef01234567".into(),
            secret_key: Some(key.clone()),
        };
        let s = c.to_string();
        assert!(s.starts_with(CREDENTIAL_PREFIX));
        assert_eq!(Credential::from_str(&s).unwrap(), c);
        assert!(!format!("{c:?}").contains(&key.to_secret_hex()));
        assert!(Credential::from_str("cashuBxyz").is_err());
        assert!(Credential::from_str("callowA!!").is_err());
    }

    #[test]
    fn draw_signatures_bind_every_field() {
        let key = SecretKey::generate();
        let id = "al0123456789abcdef01234567";
        let nonce = "0123456789abcdef0123456789abcdef".to_string();
        let auth = DrawAuth::sign(&key, id, 100, "sat", nonce, 1000).unwrap();
        let pk = key.public_key();
        auth.verify(100, "sat", &pk).unwrap();
        assert_eq!(auth.verify(101, "sat", &pk), Err(DrawAuthError::Invalid));
        let other = SecretKey::generate().public_key();
        assert_eq!(auth.verify(100, "sat", &other), Err(DrawAuthError::Invalid));
        let mut moved = auth.clone();
        moved.allowance = "al0123456789abcdef01234568".into();
        assert_eq!(moved.verify(100, "sat", &pk), Err(DrawAuthError::Invalid));
        let mut bad = auth;
        bad.nonce = "xyz".into();
        assert_eq!(bad.verify(100, "sat", &pk), Err(DrawAuthError::BadNonce));
    }

    #[test]
    fn policy_validation() {
        let p = AllowancePolicy {
            max_per_draw: 10,
            max_per_day: 5,
            expires_at: None,
        };
        assert!(p.validate().is_err());
        let p = AllowancePolicy {
            max_per_draw: 10,
            max_per_day: 10,
            expires_at: None,
        };
        p.validate().unwrap();
    }
}
