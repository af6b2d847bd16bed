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
//! 3. the redeemer picks the token up (at once, and at every start, so a crash loses nothing)
//!    and swaps it at the mint with the paywall's own redemption step ([`crate::redeem`]) and
//!    in-doubt recovery ([`crate::indoubt`]), retrying with backoff while the mint is
//!    unreachable.
//!
//! What the merchant risks is the mint itself: a token held is ecash the mint still owes; a mint
//! that disappears before the swap never pays it. `merchant balance` shows it as `held`, apart
//! from the spendable (redeemed) balance.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cdk::mint_url::MintUrl;
use cdk::nuts::nut10::{Kind, Secret as Nut10Secret};
use cdk::nuts::{CurrencyUnit, Id, Keys, Proof, PublicKey, SigFlag, SpendingConditions, Token};
use cdk::wallet::Wallet;
use cdk::Amount;
use tokio::sync::Notify;

use crate::error::PaywallError;
use crate::indoubt::{self, Fate};
use crate::merchant::{Merchant, WeakMerchant};
use crate::paywall::{Offer, Paid};
use crate::redeem;
use crate::store::held::HeldToken;
use crate::store::replay::NewRecord;
use crate::store::{now, Begin, RedemptionState, StoreError};
use crate::verify::{self, Checked};

/// Default of how long a lock must still hold for a token to be taken offline.
pub const DEFAULT_LOCK_MARGIN: Duration = Duration::from_secs(3600);

/// First retry delay after the mint could not be reached; doubles up to [`RETRY_MAX_SECS`].
const RETRY_MIN_SECS: i64 = 1;
const RETRY_MAX_SECS: i64 = 30;
/// Longest one background swap may take before it is treated as in doubt.
const REDEEM_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts a refused held token gets before it is given up as lost.
const REFUSALS_TOLERATED: u32 = 5;
/// Held tokens taken per query.
const BATCH: usize = 32;
/// How often an idle redeemer looks at the table anyway.
const IDLE: Duration = Duration::from_secs(60);

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
async fn mint_keys(wallet: &Wallet, proofs: &[Proof]) -> Result<HashMap<Id, Keys>, NotOffline> {
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
    let eligible = match merchant_only(
        &checked.proofs,
        &pubkey,
        cdk::util::unix_time(),
        margin.as_secs(),
    ) {
        // `verify::check` already verified the DLEQ proofs when the offer requires them.
        Ok(()) if offer.require_dleq => Ok(()),
        Ok(()) => match mint_keys(&checked.wallet, &checked.proofs).await {
            Ok(keys) => dleqs_valid(&checked.proofs, |p| {
                keys.get(&p.keyset_id).and_then(|k| k.amount_key(p.amount))
            }),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    if let Err(why) = eligible {
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
    let begin = merchant
        .store()
        .hold_token(record, checked.encoded.clone())
        .await
        .map_err(|e| PaywallError::Internal {
            detail: e.to_string(),
        })?;
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

/// What one attempt at a held token came to.
enum Outcome {
    Redeemed,
    /// The mint will not redeem it.
    Failed(String),
    /// The mint refused the swap: given up after [`REFUSALS_TOLERATED`] attempts, in case the
    /// refusal was the mint's passing state rather than the token's.
    Refused(String),
    /// Try again later (mint unreachable, redemption in doubt).
    Retry(String),
}

/// The background loop: redeems due held tokens, then sleeps until the next one is due or
/// [`Merchant::wake_redeemer`] is called. Ends when the merchant is dropped.
pub(crate) async fn run(merchant: WeakMerchant, wake: Arc<Notify>) {
    loop {
        let Some(m) = merchant.upgrade() else { return };
        let wait = match round(&m).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "the held-token redeemer could not read its table");
                Duration::from_secs(RETRY_MAX_SECS.unsigned_abs())
            }
        };
        drop(m);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Redeems every held token that is due; returns how long to wait for the next.
async fn round(merchant: &Merchant) -> Result<Duration, StoreError> {
    let store = merchant.store();
    // Bounded: every token handled leaves the due set (redeemed, failed, or moved later).
    for _ in 0..1000 {
        let due = store.due_held_tokens(now(), BATCH).await?;
        if due.is_empty() {
            break;
        }
        // A mint found unreachable is not asked again in this round.
        let mut down: HashMap<String, String> = HashMap::new();
        for held in due {
            let outcome = match down.get(&held.mint_url) {
                Some(e) => Outcome::Retry(e.clone()),
                None => redeem_held(merchant, &held).await,
            };
            match outcome {
                Outcome::Redeemed => {
                    tracing::info!(key = %held.key, value = held.value, mint = %held.mint_url,
                        "redeemed a held payment");
                }
                Outcome::Refused(e) if held.attempts + 1 >= REFUSALS_TOLERATED => {
                    tracing::error!(key = %held.key, value = held.value, mint = %held.mint_url,
                        error = %e, "the mint keeps refusing a held payment: it is lost");
                    store.held_failed(&held.key, e).await?;
                }
                Outcome::Failed(e) => {
                    tracing::error!(key = %held.key, value = held.value, mint = %held.mint_url,
                        error = %e, "a held payment cannot be redeemed: it is lost");
                    store.held_failed(&held.key, e).await?;
                }
                Outcome::Refused(e) => {
                    tracing::warn!(key = %held.key, error = %e, "the mint refused a held payment");
                    retry_later(merchant, &held, e).await?;
                }
                Outcome::Retry(e) => {
                    down.insert(held.mint_url.clone(), e.clone());
                    retry_later(merchant, &held, e).await?;
                }
            }
        }
    }
    Ok(match store.next_held_due().await? {
        Some(at) => {
            Duration::from_secs(u64::try_from(at.saturating_sub(now())).unwrap_or(0)).min(IDLE)
        }
        None => IDLE,
    })
}

/// Puts `held` off: 1 s after the first failed attempt, doubling up to [`RETRY_MAX_SECS`].
async fn retry_later(
    merchant: &Merchant,
    held: &HeldToken,
    error: String,
) -> Result<(), StoreError> {
    let exp = held.attempts.min(16);
    let delay = RETRY_MIN_SECS.saturating_mul(1 << exp).min(RETRY_MAX_SECS);
    tracing::debug!(key = %held.key, %error, delay, "held payment: retrying later");
    merchant
        .store()
        .held_retry_at(&held.key, now().saturating_add(delay), error)
        .await
}

/// One attempt at `held`, following its replay record wherever a crash or an earlier attempt
/// left it.
async fn redeem_held(merchant: &Merchant, held: &HeldToken) -> Outcome {
    let store = merchant.store();
    let (Ok(mint_url), Ok(unit)) = (
        MintUrl::from_str(&held.mint_url),
        CurrencyUnit::from_str(&held.unit),
    ) else {
        return Outcome::Failed("the held token's mint or unit cannot be read".into());
    };
    let wallet = match merchant.wallet(&mint_url, &unit).await {
        Ok(w) => w,
        Err(e) => return Outcome::Retry(e.to_string()),
    };
    for _ in 0..4 {
        let state = match store.redemption(&held.key).await {
            Ok(Some(r)) => r.state,
            Ok(None) => return Outcome::Failed("its replay record is missing".into()),
            Err(e) => return Outcome::Retry(e.to_string()),
        };
        let step = match state {
            RedemptionState::Held => {
                match store
                    .transition_redemption(
                        &held.key,
                        RedemptionState::Held,
                        RedemptionState::Redeeming,
                    )
                    .await
                {
                    Ok(true) => swap(merchant, &wallet, held).await,
                    Ok(false) => None,
                    Err(e) => Some(Outcome::Retry(e.to_string())),
                }
            }
            RedemptionState::InDoubt => {
                match indoubt::resolve(merchant, &wallet, &held.key).await {
                    Ok(Fate::StillInDoubt) => Some(Outcome::Retry("the swap is in doubt".into())),
                    Ok(_) => None,
                    Err(e) => Some(Outcome::Retry(e.to_string())),
                }
            }
            // Left by an attempt that ended without a verdict: find out what the mint did.
            RedemptionState::Redeeming => match store
                .transition_redemption(
                    &held.key,
                    RedemptionState::Redeeming,
                    RedemptionState::InDoubt,
                )
                .await
            {
                Ok(_) => None,
                Err(e) => Some(Outcome::Retry(e.to_string())),
            },
            RedemptionState::Redeemed | RedemptionState::Paid => {
                let _ = store
                    .transition_redemption(
                        &held.key,
                        RedemptionState::Paid,
                        RedemptionState::Redeemed,
                    )
                    .await;
                Some(match store.held_redeemed(&held.key, None).await {
                    Ok(()) => Outcome::Redeemed,
                    Err(e) => Outcome::Retry(e.to_string()),
                })
            }
            RedemptionState::Spent => Some(Outcome::Failed(
                "the mint says its proofs were spent before the merchant redeemed them".into(),
            )),
        };
        if let Some(outcome) = step {
            return outcome;
        }
    }
    Outcome::Retry("its replay record keeps changing".into())
}

/// The swap of a held token whose record this redeemer just moved to `redeeming`; `None` when
/// the record must be looked at again.
async fn swap(merchant: &Merchant, wallet: &Wallet, held: &HeldToken) -> Option<Outcome> {
    let checked = match rebuild(wallet, held).await {
        Ok(c) => c,
        Err(e) => {
            let _ = merchant
                .store()
                .transition_redemption(&held.key, RedemptionState::Redeeming, RedemptionState::Held)
                .await;
            // Only an unreadable token is lost for good; an unknown keyset may be learnt once
            // the mint answers again.
            return Some(match e {
                PaywallError::Malformed(_) => Outcome::Failed(e.to_string()),
                e => Outcome::Retry(e.to_string()),
            });
        }
    };
    match redeem::attempt(merchant, &checked, REDEEM_TIMEOUT).await {
        Ok(paid) => Some(
            match merchant
                .store()
                .held_redeemed(&held.key, Some(paid.received.into()))
                .await
            {
                Ok(()) => Outcome::Redeemed,
                Err(e) => Outcome::Retry(e.to_string()),
            },
        ),
        // The record is now `spent`, or the swap's fate is unknown: look at it again.
        Err(PaywallError::Replay) => None,
        Err(PaywallError::MintUnavailable { detail }) => Some(Outcome::Retry(detail)),
        Err(PaywallError::Internal { detail }) => Some(Outcome::Retry(detail)),
        Err(refusal) => Some(Outcome::Refused(refusal.to_string())),
    }
}

/// The checked credential of a held token, as the paywall had it when it accepted the token.
async fn rebuild(wallet: &Wallet, held: &HeldToken) -> Result<Checked, PaywallError> {
    let token = Token::from_str(&held.token)
        .map_err(|e| PaywallError::Malformed(format!("held token: {e}")))?;
    let ys = verify::token_ys(&token)?;
    let proofs = verify::token_proofs(wallet, &token).await?;
    Ok(Checked {
        encoded: held.token.clone(),
        wallet: wallet.clone(),
        mint_url: wallet.mint_url.clone(),
        unit: wallet.unit.clone(),
        key: held.key.clone(),
        ys,
        value: Amount::from(held.value),
        proofs,
        fee: Amount::ZERO,
    })
}

#[cfg(test)]
#[path = "offline_tests.rs"]
mod tests;
