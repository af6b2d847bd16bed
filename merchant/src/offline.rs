//! Offline acceptance of merchant-locked tokens, and the background redeemer that swaps them
//! later.
//!
//! A token whose every proof only the merchant's key can spend (NUT-11 P2PK: `data` is the
//! merchant's key, no further `pubkeys`, one signature, `SIG_INPUTS`, and no locktime, or one far
//! enough ahead that neither refund keys nor anyone else can take the proofs back before the
//! merchant redeems them) and whose proofs carry valid DLEQ proofs (NUT-12: the mint did sign
//! them) is worth as much to the merchant before the swap as after: nobody else can spend it.
//! Such a token is served at once:
//!
//! 1. the replay record (the same first-one-wins insert online redemption uses, keyed by the
//!    proofs' Y values) is written as `held`, in one transaction with the encoded token in the
//!    held table ([`crate::store::held`]); a copy of the token, online or offline, is refused;
//! 2. the request is served;
//! 3. the redeemer ([`crate::redeemer`]) picks the token up (at once, and at every start, so a
//!    crash loses nothing) and swaps it at the mint with the paywall's own redemption step ([`crate::redeem`]) and
//!    in-doubt recovery ([`crate::indoubt`]), retrying with backoff while the mint is
//!    unreachable.
//!
//! What the merchant risks is the mint itself: a token held is ecash the mint still owes; a mint
//! that disappears before the swap never pays it. `merchant balance` shows it as `held`, apart
//! from the spendable (redeemed) balance.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use cdk::nuts::nut10::{Kind, Secret as Nut10Secret};
use cdk::nuts::{Id, Keys, Proof, PublicKey, SigFlag, SpendingConditions};
use cdk::wallet::Wallet;
use cdk::Amount;

use crate::error::PaywallError;
use crate::merchant::Merchant;
use crate::paywall::{Offer, Paid};
use crate::store::replay::NewRecord;
use crate::store::{Begin, RedemptionState};
use crate::verify::Checked;

/// Default of how long a lock must still hold for a token to be taken offline.
pub const DEFAULT_LOCK_MARGIN: Duration = Duration::from_secs(3600);

/// Why a token cannot be taken offline; it then goes the online way (a swap before serving).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotOffline(String);

fn not(reason: impl Into<String>) -> NotOffline {
    NotOffline(reason.into())
}

/// Every proof can be spent by `merchant`'s key alone, and by nobody else until at least
/// `margin_secs` after `now`.
pub(crate) fn merchant_only(
    proofs: &[Proof],
    merchant: &PublicKey,
    now: u64,
    margin_secs: u64,
) -> Result<(), NotOffline> {
    for proof in proofs {
        let secret =
            Nut10Secret::try_from(&proof.secret).map_err(|_| not("a proof is unlocked"))?;
        if secret.kind() != Kind::P2PK {
            return Err(not("a proof is not P2PK-locked"));
        }
        let conditions = match SpendingConditions::try_from(secret) {
            Ok(SpendingConditions::P2PKConditions { data, conditions }) => {
                if data != *merchant {
                    return Err(not("a proof is locked to another key"));
                }
                conditions
            }
            _ => return Err(not("a proof's lock cannot be read")),
        };
        let Some(c) = conditions else { continue };
        // Other keys might sign alone, or be needed beside the merchant's; a repeat of the
        // merchant's own key is invalid at the mint.
        if c.pubkeys.as_ref().is_some_and(|k| !k.is_empty()) {
            return Err(not("a proof names further keys"));
        }
        if c.num_sigs.unwrap_or(1) > 1 {
            return Err(not("a proof needs more than one signature"));
        }
        if c.sig_flag != SigFlag::SigInputs {
            return Err(not("a proof asks for SIG_ALL"));
        }
        let refund = c.refund_keys.as_ref().is_some_and(|k| !k.is_empty());
        match c.locktime {
            // Past the locktime the refund keys, or without any everyone, may spend the proof.
            Some(t) if t < now.saturating_add(margin_secs) => {
                return Err(not(format!(
                    "a proof's lock opens at {t}, less than {margin_secs} s ahead"
                )));
            }
            None if refund => return Err(not("a proof has refund keys but no locktime")),
            _ => {}
        }
    }
    Ok(())
}

/// Every proof carries a DLEQ proof valid against the key `key_of` gives for its keyset and
/// amount.
pub(crate) fn dleqs_valid(
    proofs: &[Proof],
    key_of: impl Fn(&Proof) -> Option<PublicKey>,
) -> Result<(), NotOffline> {
    for proof in proofs {
        let key =
            key_of(proof).ok_or_else(|| not("no mint key for a proof's keyset and amount"))?;
        proof
            .verify_dleq(key)
            .map_err(|e| not(format!("a proof's DLEQ proof does not verify: {e}")))?;
    }
    Ok(())
}

/// The mint's keys of every keyset the proofs use (the wallet's cache first).
pub(crate) async fn mint_keys(
    wallet: &Wallet,
    proofs: &[Proof],
) -> Result<HashMap<Id, Keys>, NotOffline> {
    let ids: HashSet<Id> = proofs.iter().map(|p| p.keyset_id).collect();
    let mut out = HashMap::new();
    for id in ids {
        let keyset = wallet
            .keyset(id)
            .await
            .map_err(|e| not(format!("the keys of keyset {id} are not at hand: {e}")))?;
        out.insert(id, keyset.keys);
    }
    Ok(out)
}

/// Takes `checked` offline if it qualifies: `Ok(Some)` once it is held (serve the request),
/// `Ok(None)` when it must be redeemed online, `Err` for a replay.
pub(crate) async fn accept(
    merchant: &Merchant,
    offer: &Offer,
    checked: &Checked,
    margin: Duration,
) -> Result<Option<Paid>, PaywallError> {
    let pubkey = merchant.pubkey();
    if offer.lock != Some(pubkey) {
        return Ok(None);
    }
    if let Err(why) = merchant_only(
        &checked.proofs,
        &pubkey,
        cdk::util::unix_time(),
        margin.as_secs(),
    ) {
        tracing::debug!(key = %checked.key, %why, "redeeming online");
        return Ok(None);
    }
    let record = NewRecord {
        key: checked.key.clone(),
        mint_url: checked.mint_url.to_string(),
        unit: checked.unit.to_string(),
        value: checked.value.into(),
        ys: checked.ys.iter().map(|y| y.to_string()).collect(),
    };
    // The DLEQ verification (CPU) runs while the held token is committed (the disk's flush):
    // nothing is served before both are done, and a token whose proofs fail is taken back.
    let store = merchant.store();
    let (begin, dleq) = tokio::join!(
        store.hold_token(record, checked.encoded.clone()),
        crate::verify::dleq(checked)
    );
    let internal = |e: crate::store::StoreError| PaywallError::Internal {
        detail: e.to_string(),
    };
    let begin = begin.map_err(internal)?;
    if let Err(why) = dleq {
        if begin == Begin::Started && !store.unhold_token(&checked.key).await.map_err(internal)? {
            tracing::warn!(key = %checked.key, %why,
                "a token with a bad DLEQ proof was taken up by the redeemer before it could be \
                 taken back");
        }
        if offer.require_dleq {
            return Err(why);
        }
        tracing::debug!(key = %checked.key, %why, "redeeming online");
        return Ok(None);
    }
    match begin {
        Begin::Started => {
            merchant.wake_redeemer();
            tracing::info!(mint = %checked.mint_url, value = %checked.value,
                "accepted a locked payment offline; redeeming it in the background");
            Ok(Some(Paid {
                mint_url: checked.mint_url.clone(),
                unit: checked.unit.clone(),
                value: checked.value,
                received: checked
                    .value
                    .checked_sub(checked.fee)
                    .unwrap_or(Amount::ZERO),
                token_key: checked.key.clone(),
            }))
        }
        // A record left in doubt or paid by an earlier online attempt: online redemption
        // knows how to settle those.
        Begin::Existing(RedemptionState::InDoubt | RedemptionState::Paid) => Ok(None),
        Begin::Existing(_) | Begin::Overlap => Err(PaywallError::Replay),
    }
}

#[cfg(test)]
#[path = "offline_tests.rs"]
mod tests;
