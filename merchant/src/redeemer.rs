//! The background redeemer of held tokens (payments accepted offline, [`crate::offline`]): one
//! task per process swaps each held token at the mint with the paywall's own redemption step
//! ([`crate::redeem`]) and in-doubt recovery ([`crate::indoubt`]), following the token's replay
//! record wherever a crash or an earlier attempt left it. While a mint is unreachable its tokens
//! are put off, 1 s after the first failure and doubling up to 30 s; it runs at start-up, so
//! tokens a killed process held are redeemed by the next.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, Token};
use cdk::wallet::Wallet;
use cdk::Amount;
use tokio::sync::Notify;

use crate::error::PaywallError;
use crate::indoubt::{self, Fate};
use crate::merchant::{Merchant, WeakMerchant};
use crate::redeem;
use crate::store::held::HeldToken;
use crate::store::{now, RedemptionState, StoreError};
use crate::verify::{self, Checked};

/// First retry delay after the mint could not be reached; doubles up to [`RETRY_MAX_SECS`].
const RETRY_MIN_SECS: i64 = 1;
pub(crate) const RETRY_MAX_SECS: i64 = 30;
/// Longest one background swap may take before it is treated as in doubt.
const REDEEM_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts a refused held token gets before it is given up as lost.
const REFUSALS_TOLERATED: u32 = 5;
/// Held tokens taken per query.
const BATCH: usize = 32;
/// How often an idle redeemer looks at the table anyway.
const IDLE: Duration = Duration::from_secs(60);

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
pub(crate) async fn round(merchant: &Merchant) -> Result<Duration, StoreError> {
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
        // Verified when the token was accepted offline.
        dleq_verified: true,
    })
}
