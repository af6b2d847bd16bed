//! The checks a credential passes before the paywall tries to redeem it: it is a token, from an
//! accepted mint, in the price's unit, worth the price plus the mint's input fee, locked as the
//! offer asks (NUT-11) and carrying valid DLEQ proofs when required (NUT-12). None of them
//! contacts the mint when the wallet's keyset cache is warm.

use axum::http::HeaderValue;
use cashu_402::parse_credential;
use cdk::dhke::hash_to_curve;
use cdk::mint_url::MintUrl;
use cdk::nuts::nut10::{Kind, Secret as Nut10Secret};
use cdk::nuts::{CurrencyUnit, KeySetInfo, Proofs, PublicKey, SpendingConditions, Token};
use cdk::secp256k1::hashes::{sha256, Hash};
use cdk::wallet::types::KeysetLoadPolicy;
use cdk::wallet::Wallet;
use cdk::Amount;

use crate::error::PaywallError;
use crate::merchant::Merchant;
use crate::paywall::Offer;
use crate::store::RedemptionState;

/// A credential that passed every offline check.
pub(crate) struct Checked {
    pub encoded: String,
    pub wallet: Wallet,
    pub mint_url: MintUrl,
    pub unit: CurrencyUnit,
    pub ys: Vec<PublicKey>,
    pub key: String,
    pub value: Amount,
    /// The token's proofs (full keyset ids) and the mint's input fee for them.
    pub proofs: Proofs,
    pub fee: Amount,
    /// Whether the DLEQ proofs were verified (`false` when [`check`] was asked to leave them
    /// for later and the offer requires them: [`dleq`] must then run before serving).
    pub dleq_verified: bool,
}

/// The replay-record key of a set of proofs: SHA-256 over their sorted Y values, so that the
/// same proofs give the same key however the token is encoded (V3/V4, padding, short ids).
pub fn token_key(ys: &[PublicKey]) -> String {
    let mut sorted: Vec<[u8; 33]> = ys.iter().map(|y| y.to_bytes()).collect();
    sorted.sort_unstable();
    let mut bytes = Vec::with_capacity(sorted.len() * 33);
    for y in &sorted {
        bytes.extend_from_slice(y);
    }
    sha256::Hash::hash(&bytes).to_string()
}

/// Y values of the token's proofs (hash_to_curve of each secret: no keysets needed).
pub fn token_ys(token: &Token) -> Result<Vec<PublicKey>, PaywallError> {
    let secrets = token.token_secrets();
    if secrets.is_empty() {
        return Err(PaywallError::Malformed("the token holds no proofs".into()));
    }
    let mut ys = Vec::with_capacity(secrets.len());
    for s in secrets {
        let y = hash_to_curve(s.as_bytes())
            .map_err(|e| PaywallError::Malformed(format!("bad proof secret: {e}")))?;
        ys.push(y);
    }
    let mut unique = ys.clone();
    unique.sort_unstable_by_key(|y| y.to_bytes());
    unique.dedup();
    if unique.len() != ys.len() {
        return Err(PaywallError::Malformed(
            "the token holds the same proof twice".into(),
        ));
    }
    Ok(ys)
}

/// A wallet error met while checking: ambiguous ones (network, 5xx) mean the mint is
/// unreachable, definitive ones that the token cannot be redeemed.
pub(crate) fn wallet_error(e: cdk::Error) -> PaywallError {
    if e.is_definitive_failure() {
        PaywallError::Refused(e.to_string())
    } else {
        PaywallError::MintUnavailable {
            detail: e.to_string(),
        }
    }
}

/// Runs every check of `header` against `offer`; with `defer_dleq`, all but the DLEQ
/// verification, which the caller then runs with [`dleq`] (offline acceptance overlaps it with
/// the commit of the held token).
pub(crate) async fn check(
    merchant: &Merchant,
    offer: &Offer,
    header: &HeaderValue,
    defer_dleq: bool,
) -> Result<Checked, PaywallError> {
    let encoded = header
        .to_str()
        .map_err(|_| PaywallError::Malformed("the header is not ASCII".into()))?
        .trim()
        .to_string();
    let token = parse_credential(&encoded).map_err(|e| PaywallError::Malformed(e.to_string()))?;
    let mint_url = token
        .mint_url()
        .map_err(|e| PaywallError::Malformed(e.to_string()))?;
    if !offer.mints.contains(&mint_url) {
        return Err(PaywallError::MintNotAccepted {
            mint: mint_url.to_string(),
        });
    }
    let unit = token.unit().unwrap_or_default();
    if unit != offer.price.unit {
        return Err(PaywallError::UnitMismatch {
            got: unit.to_string(),
            want: offer.price.unit.to_string(),
        });
    }
    let ys = token_ys(&token)?;
    let key = token_key(&ys);

    // A token already used is refused here, without asking the wallet or the mint.
    let record = merchant
        .store()
        .redemption(&key)
        .await
        .map_err(|e| PaywallError::Internal {
            detail: e.to_string(),
        })?;
    if let Some(r) = record {
        if matches!(
            r.state,
            RedemptionState::Redeeming
                | RedemptionState::Redeemed
                | RedemptionState::Spent
                | RedemptionState::Held
        ) {
            return Err(PaywallError::Replay);
        }
    }

    let wallet = merchant
        .wallet(&mint_url, &unit)
        .await
        .map_err(|e| PaywallError::Internal {
            detail: e.to_string(),
        })?;
    let proofs = token_proofs(&wallet, &token).await?;
    let value = proofs
        .iter()
        .try_fold(Amount::ZERO, |acc, p| acc.checked_add(p.amount))
        .ok_or_else(|| PaywallError::Malformed("the token's amounts overflow".into()))?;
    let fee = wallet
        .get_proofs_fee(&proofs)
        .await
        .map_err(wallet_error)?
        .total;
    let required = offer
        .price
        .amount
        .checked_add(fee)
        .ok_or_else(|| PaywallError::Internal {
            detail: "price plus fee overflows".into(),
        })?;
    if value < required {
        return Err(PaywallError::Insufficient {
            value: value.into(),
            fee: fee.into(),
            price: offer.price.amount.into(),
            required: required.into(),
            unit: unit.to_string(),
        });
    }

    if let Some(pubkey) = offer.lock {
        check_lock(&wallet, &token, &proofs, pubkey).await?;
    }
    let verify_now = offer.require_dleq && !defer_dleq;
    if verify_now {
        wallet
            .verify_token_dleq(&token)
            .await
            .map_err(|e| PaywallError::DleqInvalid(e.to_string()))?;
    }
    Ok(Checked {
        encoded,
        wallet,
        mint_url,
        unit,
        ys,
        key,
        value,
        proofs,
        fee,
        dleq_verified: verify_now,
    })
}

/// Verifies the DLEQ proof of every proof of `checked` against the mint's keys (from the
/// wallet's cache), unless [`check`] already did.
pub(crate) async fn dleq(checked: &Checked) -> Result<(), PaywallError> {
    if checked.dleq_verified {
        return Ok(());
    }
    let keys = crate::offline::mint_keys(&checked.wallet, &checked.proofs)
        .await
        .map_err(|e| PaywallError::DleqInvalid(e.to_string()))?;
    crate::offline::dleqs_valid(&checked.proofs, |p| {
        keys.get(&p.keyset_id).and_then(|k| k.amount_key(p.amount))
    })
    .map_err(|e| PaywallError::DleqInvalid(e.to_string()))
}

/// The token's proofs with their full keyset ids (V4 tokens carry short ids).
pub(crate) async fn token_proofs(wallet: &Wallet, token: &Token) -> Result<Proofs, PaywallError> {
    let keysets = wallet
        .keysets(KeysetLoadPolicy::CacheThenNetwork)
        .await
        .map_err(wallet_error)?;
    let infos: Vec<KeySetInfo> = keysets
        .into_iter()
        .map(|k| KeySetInfo {
            id: k.id,
            unit: k.unit,
            active: k.active.unwrap_or(false),
            input_fee_ppk: k.input_fee_ppk,
            final_expiry: k.final_expiry,
        })
        .collect();
    token
        .proofs(&infos)
        .map_err(|e| PaywallError::Refused(format!("the token's keyset is unknown: {e}")))
}

/// Every proof must be a P2PK secret locked to exactly `pubkey`: no other signers, no refund
/// path (cdk's `verify_token_p2pk` checks the key set, signature count and refund rules).
async fn check_lock(
    wallet: &Wallet,
    token: &Token,
    proofs: &Proofs,
    pubkey: PublicKey,
) -> Result<(), PaywallError> {
    for proof in proofs {
        let secret = Nut10Secret::try_from(&proof.secret).map_err(|_| {
            PaywallError::LockInvalid("a proof is not locked (plain secret)".into())
        })?;
        if secret.kind() != Kind::P2PK {
            return Err(PaywallError::LockInvalid(format!(
                "a proof is locked with {:?}, not P2PK",
                secret.kind()
            )));
        }
        lock_lasts(&proof.secret, cdk::util::unix_time())?;
    }
    wallet
        .verify_token_p2pk(token, SpendingConditions::new_p2pk(pubkey, None))
        .await
        .map_err(|e| PaywallError::LockInvalid(e.to_string()))
}

/// How long a lock must still hold when a token arrives. Once a P2PK lock's locktime passes,
/// its refund keys (or, without any, everyone) can spend the proofs: a lock that ends before the
/// merchant has surely redeemed the token protects nothing.
pub const MIN_LOCK_REMAINING_SECS: u64 = 3600;

/// Refuses a lock whose locktime is less than [`MIN_LOCK_REMAINING_SECS`] after `now`.
fn lock_lasts(secret: &cdk::secret::Secret, now: u64) -> Result<(), PaywallError> {
    let conditions = match SpendingConditions::try_from(secret) {
        Ok(SpendingConditions::P2PKConditions { conditions, .. }) => conditions,
        _ => return Ok(()),
    };
    match conditions.and_then(|c| c.locktime) {
        Some(locktime) if locktime < now.saturating_add(MIN_LOCK_REMAINING_SECS) => {
            Err(PaywallError::LockInvalid(format!(
                "the lock expires too soon (locktime {locktime}); it must hold for at least \
                 {MIN_LOCK_REMAINING_SECS} s"
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_that_expire_within_the_hour_are_refused() {
        use cdk::nuts::{Conditions, SecretKey};
        let now = cdk::util::unix_time();
        let key = SecretKey::generate().public_key();
        let secret = |locktime: Option<u64>| {
            let conditions = Conditions {
                locktime,
                ..Default::default()
            };
            cdk::secret::Secret::try_from(SpendingConditions::new_p2pk(key, Some(conditions)))
                .unwrap()
        };
        assert!(lock_lasts(&secret(Some(now + 30)), now).is_err());
        // Already past by the time the token arrives.
        assert!(lock_lasts(&secret(Some(now + 30)), now + 60).is_err());
        assert!(lock_lasts(&secret(Some(now + 2 * MIN_LOCK_REMAINING_SECS)), now).is_ok());
        assert!(lock_lasts(&secret(None), now).is_ok());
    }

    #[test]
    fn token_key_ignores_order() {
        let a = hash_to_curve(b"a").unwrap();
        let b = hash_to_curve(b"b").unwrap();
        assert_eq!(token_key(&[a, b]), token_key(&[b, a]));
        assert_ne!(token_key(&[a, b]), token_key(&[a]));
        assert_eq!(token_key(&[a]).len(), 64);
    }
}
