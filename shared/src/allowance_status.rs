//! An agent asking the mint what its metered allowance still lets it draw.
//!
//! `POST /v1/allowance/status` with a [`StatusRequest`]: the allowance id, the agent's clock,
//! and a BIP-340 signature by the allowance's agent key over SHA-256 of [`status_message`].
//! The mint answers with an [`AgentStatus`]. Only the agent key can ask (the admin API, with
//! its bearer token, shows the human everything else); the signed time keeps a captured
//! request useful for [`crate::allowance::DRAW_CLOCK_SKEW_SECS`] at most, and it only ever
//! reads.

use std::str::FromStr;

use cdk::nuts::{PublicKey, SecretKey};
use cdk::secp256k1::schnorr::Signature;
use serde::{Deserialize, Serialize};

use crate::allowance::{is_allowance_id, AllowancePolicy, DrawAuthError};

/// The route on the mint's public listener.
pub const STATUS_PATH: &str = "/v1/allowance/status";

/// The bytes an agent signs to read the status of `allowance` at `time`.
pub fn status_message(allowance: &str, time: u64, pubkey: &PublicKey) -> Vec<u8> {
    format!("cashu-allowance-status:v1:{allowance}:{time}:{pubkey}").into_bytes()
}

/// The body of `POST /v1/allowance/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub allowance: String,
    /// Unix seconds when the agent signed.
    pub time: u64,
    /// BIP-340 signature (hex) over SHA-256 of [`status_message`].
    pub signature: String,
}

impl StatusRequest {
    /// Signs a status request for `allowance` with the agent `key`.
    pub fn sign(key: &SecretKey, allowance: &str, time: u64) -> Result<Self, DrawAuthError> {
        let msg = status_message(allowance, time, &key.public_key());
        let sig = key.sign(&msg).map_err(|_| DrawAuthError::Malformed)?;
        Ok(Self {
            allowance: allowance.to_string(),
            time,
            signature: sig.to_string(),
        })
    }

    /// Checks the id's shape and the signature by `pubkey` (the clock is the mint's to check).
    pub fn verify(&self, pubkey: &PublicKey) -> Result<(), DrawAuthError> {
        if !is_allowance_id(&self.allowance) {
            return Err(DrawAuthError::Malformed);
        }
        let sig = Signature::from_str(&self.signature).map_err(|_| DrawAuthError::Malformed)?;
        pubkey
            .verify(&status_message(&self.allowance, self.time, pubkey), &sig)
            .map_err(|_| DrawAuthError::Invalid)
    }
}

/// What a metered allowance still allows, as its agent sees it. Amounts in sat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub allowance: String,
    /// `active`, `awaiting_payment`, `expired` or `revoked`.
    pub state: String,
    /// What is left in the allowance.
    pub balance: u64,
    /// Drawn in the rolling last 24 hours.
    pub drawn_24h: u64,
    pub policy: AllowancePolicy,
    /// The most one draw may take right now: the smallest of the per-draw cap, what is left of
    /// the per-day cap and the balance; 0 unless the allowance is active.
    pub draw_now: u64,
    /// The most all draws together may take before the rolling day frees room: the smaller of
    /// what is left of the per-day cap and the balance; 0 unless the allowance is active.
    pub draw_room_24h: u64,
    /// The mint's clock when it answered (unix seconds).
    pub time: u64,
}

impl AgentStatus {
    /// Computes the two room figures from the rest.
    pub fn with_room(mut self) -> Self {
        let active = self.state == "active";
        let day_left = self.policy.max_per_day.saturating_sub(self.drawn_24h);
        self.draw_room_24h = if active {
            day_left.min(self.balance)
        } else {
            0
        };
        self.draw_now = self.draw_room_24h.min(self.policy.max_per_draw);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "al0123456789abcdef01234567";

    #[test]
    fn the_signature_binds_the_allowance_and_the_time() {
        let key = SecretKey::generate();
        let pk = key.public_key();
        let req = StatusRequest::sign(&key, ID, 1000).unwrap();
        req.verify(&pk).unwrap();
        let mut later = req.clone();
        later.time = 1001;
        assert_eq!(later.verify(&pk), Err(DrawAuthError::Invalid));
        let mut other = req.clone();
        other.allowance = "al0123456789abcdef01234568".into();
        assert_eq!(other.verify(&pk), Err(DrawAuthError::Invalid));
        let stranger = SecretKey::generate().public_key();
        assert_eq!(req.verify(&stranger), Err(DrawAuthError::Invalid));
        let mut garbage = req;
        garbage.signature = "zz".into();
        assert_eq!(garbage.verify(&pk), Err(DrawAuthError::Malformed));
        garbage.allowance = "not-an-id".into();
        assert_eq!(garbage.verify(&pk), Err(DrawAuthError::Malformed));
    }

    #[test]
    fn a_draw_signature_is_no_status_signature() {
        // The messages differ in their prefix, so one can never stand in for the other.
        let pk = SecretKey::generate().public_key();
        let status = status_message(ID, 5, &pk);
        let draw = crate::allowance::draw_message(ID, 5, "sat", "00", 5, &pk);
        assert_ne!(status, draw);
    }

    fn status(state: &str, balance: u64, drawn: u64) -> AgentStatus {
        AgentStatus {
            allowance: ID.into(),
            state: state.into(),
            balance,
            drawn_24h: drawn,
            policy: AllowancePolicy {
                max_per_draw: 100,
                max_per_day: 500,
                expires_at: None,
            },
            draw_now: 0,
            draw_room_24h: 0,
            time: 0,
        }
        .with_room()
    }

    #[test]
    fn room_is_the_smallest_bound_left() {
        let s = status("active", 1000, 0);
        assert_eq!((s.draw_now, s.draw_room_24h), (100, 500));
        let s = status("active", 1000, 450);
        assert_eq!((s.draw_now, s.draw_room_24h), (50, 50));
        let s = status("active", 30, 0);
        assert_eq!((s.draw_now, s.draw_room_24h), (30, 30));
        let s = status("active", 1000, 600);
        assert_eq!((s.draw_now, s.draw_room_24h), (0, 0));
        for state in ["revoked", "expired", "awaiting_payment"] {
            let s = status(state, 1000, 0);
            assert_eq!((s.draw_now, s.draw_room_24h), (0, 0), "{state}");
        }
    }
}
