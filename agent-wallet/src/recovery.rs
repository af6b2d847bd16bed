//! Crash recovery, run by every [`AgentWallet::open`]: finish cdk's interrupted sagas and the
//! allowance draws a crash interrupted, then settle every payment left in the outbox (token
//! sends and L402 melts).

use std::collections::BTreeSet;
use std::str::FromStr;

use cdk::cdk_database::WalletDatabase;
use cdk::mint_url::MintUrl;
use cdk::nuts::State;
use cdk::wallet::types::{SendSagaState, WalletSagaState};

use crate::error::WalletError;
use crate::ledger::LedgerEntry;
use crate::oplock;
use crate::outbox::{resolve, OutboxState, Settlement, Trigger};
use crate::reconcile::Reconciled;
use crate::wallet::AgentWallet;

/// What a recovery did.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// False when an operation was under way (in this or another process), so recovery
    /// waited for a later open.
    pub ran: bool,
    /// Payments settled now, with their final ledger rows.
    pub resolved: Vec<LedgerEntry>,
    /// Payments still in the outbox (their mint could not be asked).
    pub still_pending: usize,
    /// Operations whose reserved proofs were given back: a crash left them reserved with no
    /// saga and no payment to account for them.
    pub released_reservations: usize,
    /// Proofs no operation holds, brought in line with the mint afterwards (`reconcile.rs`).
    pub reconciled: Reconciled,
}

impl AgentWallet {
    /// Recovers what a crash left: cdk's unfinished sagas (swaps, sends, receives), then every
    /// payment in the outbox. A payment whose token never left is taken back (`failed`); one
    /// whose token may have reached the server is checked at the mint (NUT-07): unspent, it is
    /// taken back (`failed`); spent, it is `unknown` (paid, answer lost) and counted once.
    /// Runs only when no payment, send or receive is under way in any process.
    pub async fn recover(&self) -> Result<RecoveryReport, WalletError> {
        let Some(_lock) = oplock::try_exclusive(&self.data_dir)? else {
            tracing::debug!("an operation is under way; recovery waits for a later open");
            return Ok(RecoveryReport::default());
        };
        let mut report = RecoveryReport {
            ran: true,
            ..RecoveryReport::default()
        };
        let outbox = self.store.outbox()?;
        // A send saga in `TokenCreated` is a token handed out (or a payment already answered)
        // waiting to be claimed: not interrupted work. Only the others need cdk's recovery, so
        // an ordinary open stays offline.
        let sagas: Vec<_> = self
            .wallet_db()
            .get_incomplete_sagas()
            .await?
            .into_iter()
            .filter(|s| !matches!(s.state, WalletSagaState::Send(SendSagaState::TokenCreated)))
            .collect();
        report.released_reservations = self.release_orphaned_reservations(&outbox).await?;
        let draws = self.has_pending_draws()?;
        let melts = self.store.melt_outbox()?;
        let stuck = self.mints_with_stuck_proofs().await?;
        if outbox.is_empty() && sagas.is_empty() && melts.is_empty() && !draws && stuck.is_empty() {
            return Ok(report);
        }

        let mints: BTreeSet<MintUrl> = sagas
            .iter()
            .map(|s| s.mint_url.clone())
            .chain(
                outbox
                    .iter()
                    .filter_map(|r| MintUrl::from_str(&r.mint).ok()),
            )
            .chain(melts.iter().filter_map(|r| MintUrl::from_str(&r.mint).ok()))
            .collect();
        for mint in &mints {
            let wallet = self.wallet_for(mint)?;
            match tokio::time::timeout(self.recovery_timeout, wallet.recover_incomplete_sagas())
                .await
            {
                Ok(Ok(r)) => tracing::debug!(%mint, ?r, "cdk saga recovery"),
                Ok(Err(e)) => tracing::warn!(%mint, "cdk saga recovery failed: {e}"),
                Err(_) => tracing::warn!(%mint, "cdk saga recovery timed out"),
            }
        }

        // After cdk's recovery, so a draw whose mint request was under way finds its proofs.
        if draws {
            self.resume_draws().await?;
        }

        for row in outbox {
            let trigger = match row.state {
                OutboxState::Prepared => Trigger::NeverSent,
                OutboxState::InFlight => Trigger::NoAnswer,
            };
            let settlement =
                match tokio::time::timeout(self.recovery_timeout, self.settle(&row)).await {
                    Ok(s) => s,
                    Err(_) => Settlement::Undetermined("timed out".into()),
                };
            match resolve(trigger, &settlement, &row) {
                Some(resolution) => {
                    if let Some(entry) = self.store.finish(&row.id, &resolution)? {
                        tracing::info!(
                            payment = %entry.id,
                            outcome = %entry.outcome,
                            "settled a payment left in flight"
                        );
                        report.resolved.push(entry);
                    }
                }
                None => {
                    tracing::warn!(payment = %row.id, ?settlement, "payment still unsettled");
                    report.still_pending += 1;
                }
            }
        }
        let (resolved, still_pending) = self.recover_melts().await?;
        report.resolved.extend(resolved);
        report.still_pending += still_pending;

        // Last, once nothing is in flight at a mint: what a crash left that no operation
        // will ever move again.
        let unsettled: BTreeSet<String> = self
            .store
            .outbox()?
            .into_iter()
            .map(|r| r.mint)
            .chain(self.store.melt_outbox()?.into_iter().map(|r| r.mint))
            .collect();
        for mint in mints.into_iter().chain(stuck) {
            if unsettled.contains(&mint.to_string()) {
                continue;
            }
            match tokio::time::timeout(self.recovery_timeout, self.reconcile_with_mint(&mint)).await
            {
                Ok(Ok(r)) => {
                    report.reconciled.released += r.released;
                    report.reconciled.dropped += r.dropped;
                }
                Ok(Err(e)) => tracing::warn!(%mint, "cannot check the wallet's proofs: {e}"),
                Err(_) => tracing::warn!(%mint, "checking the wallet's proofs timed out"),
            }
        }
        Ok(report)
    }
}

impl AgentWallet {
    /// Mints at which proofs sit reserved or pending with no operation holding them.
    async fn mints_with_stuck_proofs(&self) -> Result<BTreeSet<MintUrl>, WalletError> {
        let stuck = self
            .wallet_db()
            .get_proofs(
                None,
                None,
                Some(vec![State::Reserved, State::Pending, State::PendingSpent]),
                None,
            )
            .await?;
        Ok(stuck
            .into_iter()
            .filter(|p| p.used_by_operation.is_none())
            .map(|p| p.mint_url)
            .collect())
    }

    /// Gives back proofs reserved by an operation that neither cdk (no saga) nor the outbox
    /// knows. cdk's `prepare_send` reserves the proofs first and records its saga after: a
    /// process killed in between leaves them reserved for good, out of the balance. Recovery
    /// holds the operation lock exclusively, so no such reservation can belong to live work.
    async fn release_orphaned_reservations(
        &self,
        outbox: &[crate::outbox::OutboxRow],
    ) -> Result<usize, WalletError> {
        let db = self.wallet_db();
        let reserved = db
            .get_proofs(None, None, Some(vec![State::Reserved]), None)
            .await?;
        let operations: BTreeSet<uuid::Uuid> = reserved
            .iter()
            .filter_map(|p| p.used_by_operation)
            .collect();
        let mut released = 0;
        for operation in operations {
            let id = operation.to_string();
            if outbox.iter().any(|r| r.operation_id == id)
                || db.get_saga(&operation).await?.is_some()
            {
                continue;
            }
            db.release_proofs(&operation).await?;
            tracing::warn!(%operation, "gave back proofs a crash left reserved without a saga");
            released += 1;
        }
        Ok(released)
    }
}
