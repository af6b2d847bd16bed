//! Redemptions whose outcome is unknown, and how they are settled.
//!
//! When the swap that redeems a token fails ambiguously (the mint cannot be reached, a timeout,
//! a 5xx), the mint may or may not have executed it. cdk's wallet keeps the operation as an
//! incomplete saga; its recovery later either completes it (replaying the swap, or restoring
//! the outputs if the mint did execute it) or rolls it back. What recovery does not say is
//! whether *this token* ended up in the wallet (a restore that finds nothing still "completes").
//! So before recovery runs we note the Y values of the outputs the swap asked for (re-derived
//! from the seed: the counters are found by searching for the saga's blinded messages, see
//! [`crate::receive_recovery`]), and afterwards we look for them in the wallet:
//!
//! - the token's proofs are still held by an incomplete saga: still in doubt (mint unreachable);
//! - any of the outputs is in the wallet: the merchant was paid, and the next request carrying
//!   the token is served ([`RedemptionState::Paid`]);
//! - no saga was left (the swap had finished when the process died) and cdk's transaction log
//!   shows a completed receive of the token's proofs: paid too;
//! - otherwise the mint never executed the swap (or someone else spent the token first): the
//!   replay record is removed and the token may be presented again; the mint decides.
//!
//! Recovery runs with the merchant's recovery lock held exclusively, so that it never rolls back
//! a redemption or a melt that is still running in this process.

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;

use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, PublicKey};
use cdk::wallet::types::{OperationData, TransactionDirection, TransactionStatus, WalletSagaState};
use cdk::wallet::Wallet;
use cdk::Amount;
use serde::Serialize;

use crate::merchant::{Merchant, MerchantError};
use crate::receive_recovery;
use crate::store::RedemptionState;

/// What start-up (or on-demand) recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecoverySummary {
    /// cdk sagas completed, rolled back, left for later, or failed.
    pub sagas_recovered: usize,
    pub sagas_compensated: usize,
    pub sagas_skipped: usize,
    pub sagas_failed: usize,
    /// In-doubt redemptions found paid (served on the token's next use).
    pub paid: usize,
    /// In-doubt redemptions found not executed (their replay record was removed).
    pub released: usize,
    /// Still unknown (the mint is still unreachable).
    pub still_in_doubt: usize,
    /// Pending settlements the mint reported paid, not paid (failed), or still pending.
    pub settlements_paid: usize,
    pub settlements_failed: usize,
    pub settlements_pending: usize,
}

/// The fate of one in-doubt redemption after recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    StillInDoubt,
    Paid,
    NotRedeemed,
}

/// Hex Y values of `ys`.
pub(crate) fn hex_set(ys: &[PublicKey]) -> HashSet<String> {
    ys.iter().map(|y| y.to_string()).collect()
}

/// The incomplete receive saga of `wallet` that holds any of `ys`: `Some(outputs)` with the Y
/// values of the outputs its swap asked for (empty if it never got as far as asking).
pub(crate) async fn receive_saga_outputs(
    merchant: &Merchant,
    wallet: &Wallet,
    ys: &HashSet<String>,
) -> Result<Option<Vec<String>>, MerchantError> {
    let db = merchant.localstore();
    for saga in db.get_incomplete_sagas().await? {
        if saga.mint_url != wallet.mint_url || saga.unit != wallet.unit {
            continue;
        }
        if !matches!(saga.state, WalletSagaState::Receive(_)) {
            continue;
        }
        let reserved = db.get_reserved_proofs(&saga.id).await?;
        if !reserved.iter().any(|p| ys.contains(&p.y.to_string())) {
            continue;
        }
        let outputs = match &saga.data {
            // Not from cdk's recorded counter range, which concurrent redemptions can skew.
            OperationData::Receive(data) => match data.blinded_messages.as_deref() {
                Some(blinded) => receive_recovery::output_ys(merchant, blinded).await?,
                None => Vec::new(),
            },
            _ => Vec::new(),
        };
        return Ok(Some(outputs));
    }
    Ok(None)
}

/// Y values (hex) held by any incomplete saga of `wallet`.
async fn reserved_ys(
    merchant: &Merchant,
    wallet: &Wallet,
) -> Result<HashSet<String>, MerchantError> {
    let db = merchant.localstore();
    let mut out = HashSet::new();
    for saga in db.get_incomplete_sagas().await? {
        if saga.mint_url != wallet.mint_url || saga.unit != wallet.unit {
            continue;
        }
        for p in db.get_reserved_proofs(&saga.id).await? {
            out.insert(p.y.to_string());
        }
    }
    Ok(out)
}

/// Runs cdk's saga recovery for `wallet` and settles every in-doubt redemption of its mint and
/// unit. The caller holds the recovery lock exclusively.
async fn resolve_locked(
    merchant: &Merchant,
    wallet: &Wallet,
    summary: &mut RecoverySummary,
) -> Result<Vec<(String, Fate)>, MerchantError> {
    let store = merchant.store();
    let mint = wallet.mint_url.to_string();
    let unit = wallet.unit.to_string();
    let records: Vec<_> = store
        .redemptions_in_state(RedemptionState::InDoubt)
        .await?
        .into_iter()
        .filter(|r| r.mint_url == mint && r.unit == unit)
        .collect();

    // Note what each in-doubt swap asked for while its saga still says so.
    let mut outputs_by_key = Vec::new();
    for record in &records {
        let ys: HashSet<String> = store
            .redemption_ys(&record.key)
            .await?
            .into_iter()
            .collect();
        let mut outputs = record.outputs.clone();
        if outputs.is_empty() {
            if let Some(found) = receive_saga_outputs(merchant, wallet, &ys).await? {
                if !found.is_empty() {
                    store
                        .set_redemption_outputs(&record.key, found.clone())
                        .await?;
                    outputs = found;
                }
            }
        }
        outputs_by_key.push((record.key.clone(), ys, outputs));
    }

    // The merchant's own settlement of its redemption swaps first (see `receive_recovery`);
    // cdk's recovery only when none of them waits for the mint.
    let settled = receive_recovery::settle_receive_sagas(merchant, wallet).await?;
    summary.sagas_recovered += settled.finished;
    summary.sagas_compensated += settled.released;
    let cdk_recovery = if settled.later > 0 {
        summary.sagas_skipped += settled.later;
        Ok(cdk::wallet::RecoveryReport::default())
    } else {
        wallet.recover_incomplete_sagas().await
    };
    match cdk_recovery {
        Ok(report) => {
            summary.sagas_recovered += report.recovered;
            summary.sagas_compensated += report.compensated;
            summary.sagas_skipped += report.skipped;
            summary.sagas_failed += report.failed;
        }
        Err(e) => {
            tracing::warn!(mint = %mint, error = %e, "saga recovery failed; redemptions stay in doubt");
            summary.still_in_doubt += outputs_by_key.len();
            return Ok(outputs_by_key
                .into_iter()
                .map(|(k, _, _)| (k, Fate::StillInDoubt))
                .collect());
        }
    }

    let reserved = reserved_ys(merchant, wallet).await?;
    let mut received: Option<HashSet<String>> = None;
    let mut fates = Vec::new();
    for (key, ys, outputs) in outputs_by_key {
        let fate = if ys.iter().any(|y| reserved.contains(y)) {
            Fate::StillInDoubt
        } else if outputs_present(merchant, &outputs).await? {
            Fate::Paid
        } else if outputs.is_empty()
            && received_by_wallet(merchant, wallet, &mut received, &ys).await?
        {
            // No saga was left to say what the swap asked for: it had finished, and the
            // process died before the record said so.
            Fate::Paid
        } else {
            Fate::NotRedeemed
        };
        match fate {
            Fate::StillInDoubt => summary.still_in_doubt += 1,
            Fate::Paid => {
                store
                    .transition_redemption(&key, RedemptionState::InDoubt, RedemptionState::Paid)
                    .await?;
                summary.paid += 1;
            }
            Fate::NotRedeemed => {
                store.delete_redemption(&key).await?;
                summary.released += 1;
            }
        }
        tracing::info!(key = %key, fate = ?fate, "resolved an in-doubt redemption");
        fates.push((key, fate));
    }
    Ok(fates)
}

/// Whether the wallet completed a receive of exactly the proofs `ys` (cdk's transaction log).
/// The log is read once per recovery, and only when a redemption needs it.
async fn received_by_wallet(
    merchant: &Merchant,
    wallet: &Wallet,
    received: &mut Option<HashSet<String>>,
    ys: &HashSet<String>,
) -> Result<bool, MerchantError> {
    if ys.is_empty() {
        return Ok(false);
    }
    if received.is_none() {
        let transactions = merchant
            .localstore()
            .list_transactions(
                Some(wallet.mint_url.clone()),
                Some(TransactionDirection::Incoming),
                Some(wallet.unit.clone()),
            )
            .await?;
        *received = Some(
            transactions
                .into_iter()
                .filter(|t| t.status == TransactionStatus::Completed && t.amount > Amount::ZERO)
                .flat_map(|t| t.ys.into_iter().map(|y| y.to_string()))
                .collect(),
        );
    }
    Ok(received
        .as_ref()
        .is_some_and(|r| ys.iter().all(|y| r.contains(y))))
}

async fn outputs_present(merchant: &Merchant, outputs: &[String]) -> Result<bool, MerchantError> {
    let ys: Vec<PublicKey> = outputs
        .iter()
        .filter_map(|y| PublicKey::from_str(y).ok())
        .collect();
    if ys.is_empty() {
        return Ok(false);
    }
    Ok(!merchant.localstore().get_proofs_by_ys(ys).await?.is_empty())
}

/// Recovery for one mint and unit, taking the recovery lock; returns the fate of `key`.
pub(crate) async fn resolve(
    merchant: &Merchant,
    wallet: &Wallet,
    key: &str,
) -> Result<Fate, MerchantError> {
    let _exclusive = merchant.recovery_lock().write().await;
    let mut summary = RecoverySummary::default();
    let fates = resolve_locked(merchant, wallet, &mut summary).await?;
    Ok(fates
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, f)| f)
        .unwrap_or(Fate::NotRedeemed))
}

/// Start-up recovery over every mint and unit with an incomplete saga or an in-doubt
/// redemption. Redemptions a crash interrupted (`Redeeming`) are in doubt too.
pub(crate) async fn recover_all(merchant: &Merchant) -> Result<RecoverySummary, MerchantError> {
    let _exclusive = merchant.recovery_lock().write().await;
    let store = merchant.store();
    for r in store
        .redemptions_in_state(RedemptionState::Redeeming)
        .await?
    {
        store
            .set_redemption_state(&r.key, RedemptionState::InDoubt)
            .await?;
    }
    let mut targets: BTreeSet<(String, String)> = BTreeSet::new();
    for saga in merchant.localstore().get_incomplete_sagas().await? {
        targets.insert((saga.mint_url.to_string(), saga.unit.to_string()));
    }
    for r in store.redemptions_in_state(RedemptionState::InDoubt).await? {
        targets.insert((r.mint_url, r.unit));
    }
    let mut summary = RecoverySummary::default();
    for (mint, unit) in targets {
        let (Ok(mint_url), Ok(unit)) = (MintUrl::from_str(&mint), CurrencyUnit::from_str(&unit))
        else {
            tracing::warn!(mint = %mint, unit = %unit, "skipping recovery for an unparsable mint or unit");
            continue;
        };
        let wallet = merchant.wallet(&mint_url, &unit).await?;
        resolve_locked(merchant, &wallet, &mut summary).await?;
    }
    Ok(summary)
}
