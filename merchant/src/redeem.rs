//! Redemption: the atomic replay record first, then the swap at the mint, before anything is
//! served.
//!
//! 1. `INSERT` the token's key (hash of its sorted Y values) and each Y into the replay record.
//!    The first request wins; every concurrent or later copy is refused (40207) without reaching
//!    the mint.
//! 2. Swap the proofs into the merchant's wallet (`Wallet::receive`, signing P2PK-locked proofs
//!    with the merchant's key). The mint's spent set stays the authority.
//!    The swap runs on a task of its own: a client hanging up (hyper dropping the request's
//!    future) never cancels it halfway.
//! 3. On success the record becomes `paid` (redeemed, not yet served), then the waiting request
//!    claims it (`paid` → `redeemed`) and is served. If the requester is gone, or the process
//!    dies in between, the record stays `paid` and the token's next presentation is served,
//!    once: the agent pays only for what was served. On a definitive
//!    refusal the record is removed (or kept as `spent` if the mint says so). On an ambiguous
//!    failure (mint unreachable) the answer is 503: if the swap never left the wallet the record
//!    is removed at once; otherwise it is `in_doubt`, and the token's next use (or the next
//!    start-up) runs recovery first, see [`crate::indoubt`].

use std::collections::HashSet;
use std::time::Duration;

use cdk::wallet::ReceiveOptions;
use cdk::Amount;
use tokio::sync::oneshot;

use crate::error::PaywallError;
use crate::indoubt::{self, hex_set, Fate};
use crate::merchant::Merchant;
use crate::paywall::Paid;
use crate::store::{Begin, RedemptionState, StoreError};
use crate::verify::Checked;

fn internal(e: impl std::fmt::Display) -> PaywallError {
    PaywallError::Internal {
        detail: e.to_string(),
    }
}

fn store_err(e: StoreError) -> PaywallError {
    internal(e)
}

/// How a failed `receive` is treated.
enum Failure {
    /// The mint says the proofs are spent.
    Spent,
    /// The token cannot be redeemed; the record can go.
    Refused(PaywallError),
    /// The outcome is unknown.
    InDoubt(String),
}

fn classify(e: cdk::Error) -> Failure {
    use cdk::Error as E;
    match e {
        E::TokenAlreadySpent => Failure::Spent,
        E::NUT11(_)
        | E::NUT10(_)
        | E::P2PKConditionsNotMet(_)
        | E::SignatureMissingOrInvalid
        | E::LocktimeNotProvided
        | E::InvalidSpendConditions(_)
        | E::PreimageNotProvided => Failure::Refused(PaywallError::LockInvalid(e.to_string())),
        E::NUT12(_) | E::CouldNotVerifyDleq | E::DleqProofNotProvided => {
            Failure::Refused(PaywallError::DleqInvalid(e.to_string()))
        }
        e if e.is_definitive_failure() => Failure::Refused(PaywallError::Refused(e.to_string())),
        e => Failure::InDoubt(e.to_string()),
    }
}

/// Redeems a checked credential; `Ok` only once the ecash is the merchant's.
pub(crate) async fn redeem(
    merchant: &Merchant,
    checked: Checked,
    timeout: Duration,
) -> Result<Paid, PaywallError> {
    let store = merchant.store();
    let ys_hex: Vec<String> = checked.ys.iter().map(|y| y.to_string()).collect();
    // A few rounds at most: an in-doubt record is resolved, then looked at again.
    for _ in 0..3 {
        let begin = store
            .begin_redemption(
                checked.key.clone(),
                checked.mint_url.to_string(),
                checked.unit.to_string(),
                checked.value.into(),
                ys_hex.clone(),
            )
            .await
            .map_err(store_err)?;
        match begin {
            Begin::Started => return detached(merchant, checked, timeout).await,
            Begin::Overlap
            | Begin::Existing(
                RedemptionState::Redeeming
                | RedemptionState::Redeemed
                | RedemptionState::Spent
                | RedemptionState::Held,
            ) => return Err(PaywallError::Replay),
            Begin::Existing(RedemptionState::Paid) => {
                // Paid during an earlier, unanswered attempt: serve this request, once.
                let claimed = store
                    .transition_redemption(
                        &checked.key,
                        RedemptionState::Paid,
                        RedemptionState::Redeemed,
                    )
                    .await
                    .map_err(store_err)?;
                if !claimed {
                    return Err(PaywallError::Replay);
                }
                tracing::info!(key = %checked.key, "serving a token whose redemption was in doubt");
                return Ok(paid(&checked, checked.value));
            }
            Begin::Existing(RedemptionState::InDoubt) => {
                let fate = indoubt::resolve(merchant, &checked.wallet, &checked.key)
                    .await
                    .map_err(internal)?;
                if fate == Fate::StillInDoubt {
                    return Err(PaywallError::MintUnavailable {
                        detail: "an earlier redemption of this token is still in doubt".into(),
                    });
                }
            }
        }
    }
    Err(PaywallError::Replay)
}

fn paid(checked: &Checked, received: Amount) -> Paid {
    Paid {
        mint_url: checked.mint_url.clone(),
        unit: checked.unit.clone(),
        value: checked.value,
        received,
        token_key: checked.key.clone(),
    }
}

/// Runs [`attempt`] on a task of its own and claims its result for this request.
async fn detached(
    merchant: &Merchant,
    checked: Checked,
    timeout: Duration,
) -> Result<Paid, PaywallError> {
    let (answer, result) = oneshot::channel();
    let task_merchant = merchant.clone();
    let key = checked.key.clone();
    tokio::spawn(async move {
        let outcome = attempt(&task_merchant, &checked, timeout).await;
        // A requester that hung up leaves the record `paid`: served on the next presentation.
        let _ = answer.send(outcome);
    });
    let paid = result.await.map_err(|_| PaywallError::Internal {
        detail: "the redemption task ended without an answer".into(),
    })??;
    let claimed = merchant
        .store()
        .transition_redemption(&key, RedemptionState::Paid, RedemptionState::Redeemed)
        .await
        .map_err(store_err)?;
    if !claimed {
        // Another request carrying the same token was served with it in between.
        return Err(PaywallError::Replay);
    }
    Ok(paid)
}

/// The swap, for a token whose record this request just created (or that the offline
/// redeemer moved from `held` to `redeeming`). Success leaves the record `paid`: the caller
/// claims it (a held token, already served, becomes `redeemed` at once: see the store).
pub(crate) async fn attempt(
    merchant: &Merchant,
    checked: &Checked,
    timeout: Duration,
) -> Result<Paid, PaywallError> {
    let store = merchant.store();
    let options = ReceiveOptions {
        p2pk_signing_keys: vec![merchant.signing_key()],
        ..Default::default()
    };
    let result = {
        let _shared = merchant.recovery_lock().read().await;
        // Past the timeout the receive is abandoned as a crash would abandon it: its saga stays
        // behind for recovery, and the redemption is in doubt.
        tokio::time::timeout(timeout, checked.wallet.receive(&checked.encoded, options))
            .await
            .unwrap_or(Err(cdk::Error::Timeout))
    };
    let error = match result {
        Ok(received) => {
            store
                .set_redemption_state(&checked.key, RedemptionState::Paid)
                .await
                .map_err(store_err)?;
            tracing::info!(mint = %checked.mint_url, value = %checked.value, %received,
                "redeemed a payment");
            merchant.notify_redeemed();
            return Ok(paid(checked, received));
        }
        Err(e) => e,
    };
    match classify(error) {
        Failure::Spent => {
            store
                .set_redemption_state(&checked.key, RedemptionState::Spent)
                .await
                .map_err(store_err)?;
            Err(PaywallError::Replay)
        }
        Failure::Refused(refusal) => {
            store
                .delete_redemption(&checked.key)
                .await
                .map_err(store_err)?;
            Err(refusal)
        }
        Failure::InDoubt(detail) => {
            let ys: HashSet<String> = hex_set(&checked.ys);
            match indoubt::receive_saga_outputs(merchant, &checked.wallet, &ys).await {
                Ok(None) => {
                    // No saga holds the proofs: the swap never left the wallet.
                    store
                        .delete_redemption(&checked.key)
                        .await
                        .map_err(store_err)?;
                }
                Ok(Some(outputs)) => {
                    if !outputs.is_empty() {
                        store
                            .set_redemption_outputs(&checked.key, outputs)
                            .await
                            .map_err(store_err)?;
                    }
                    store
                        .set_redemption_state(&checked.key, RedemptionState::InDoubt)
                        .await
                        .map_err(store_err)?;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot inspect the wallet's sagas");
                    store
                        .set_redemption_state(&checked.key, RedemptionState::InDoubt)
                        .await
                        .map_err(store_err)?;
                }
            }
            Err(PaywallError::MintUnavailable { detail })
        }
    }
}
