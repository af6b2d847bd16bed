//! After crash recovery: the wallet's proofs that no operation claims are checked against the
//! mint (NUT-07), so the local balance is what the mint would honour.
//!
//! A kill at the wrong moment inside cdk can leave proofs in a state nothing will ever move
//! again: reserved or pending with no operation (cdk's exact-change swap stored the new
//! proofs, then the process died before they were tied to the send), or unspent here while the
//! mint has them spent. Both skew `balance + spent = funded`. The mint is the judge: spent
//! there is spent here; unspent there, and no live operation can hold them (recovery runs under
//! the exclusive operation lock), is spendable here.

use std::collections::HashMap;

use cdk::cdk_database::WalletDatabase;
use cdk::mint_url::MintUrl;
use cdk::nuts::{PublicKey, State};
use cdk::wallet::types::ProofInfo;

use crate::error::WalletError;
use crate::wallet::AgentWallet;

/// Ys per NUT-07 request: well under any mint's input limit.
const CHECK_BATCH: usize = 100;

/// What a reconciliation changed at one mint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Sat of proofs stuck reserved or pending that are spendable again.
    pub released: u64,
    /// Sat of proofs held as spendable or stuck that the mint has spent (now removed).
    pub dropped: u64,
}

impl AgentWallet {
    /// Checks every proof at `mint` that no operation holds, and brings its local state in
    /// line with the mint's. Call only with the exclusive operation lock held.
    pub(crate) async fn reconcile_with_mint(
        &self,
        mint: &MintUrl,
    ) -> Result<Reconciled, WalletError> {
        let db = self.wallet_db();
        let unclaimed: Vec<ProofInfo> = db
            .get_proofs(
                Some(mint.clone()),
                None,
                Some(vec![
                    State::Unspent,
                    State::Reserved,
                    State::Pending,
                    State::PendingSpent,
                ]),
                None,
            )
            .await?
            .into_iter()
            .filter(|p| p.used_by_operation.is_none())
            .collect();
        if unclaimed.is_empty() {
            return Ok(Reconciled::default());
        }
        let wallet = self.wallet_for(mint)?;
        let mut at_mint: HashMap<PublicKey, State> = HashMap::with_capacity(unclaimed.len());
        for chunk in unclaimed.chunks(CHECK_BATCH) {
            // cdk removes the ones the mint has spent from the wallet.
            let proofs = chunk.iter().map(|p| p.proof.clone()).collect();
            let states = wallet.check_proofs_spent(proofs).await?;
            at_mint.extend(states.into_iter().map(|s| (s.y, s.state)));
        }
        let mut done = Reconciled::default();
        let mut spendable = Vec::new();
        for p in &unclaimed {
            match at_mint.get(&p.y) {
                Some(State::Spent) => done.dropped += u64::from(p.proof.amount),
                Some(State::Unspent) if p.state != State::Unspent => {
                    spendable.push(p.y);
                    done.released += u64::from(p.proof.amount);
                }
                // Pending at the mint (a swap or melt still running there), or already right.
                _ => {}
            }
        }
        if !spendable.is_empty() {
            db.update_proofs_state(spendable, State::Unspent).await?;
        }
        if done != Reconciled::default() {
            tracing::warn!(%mint, released = done.released, dropped = done.dropped,
                "brought proofs a crash left behind in line with the mint");
        }
        Ok(done)
    }
}
