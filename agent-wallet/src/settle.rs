//! Settling a payment that did not end in a plain success: ask the mint whether the token was
//! redeemed, and take it back if it was not.

use std::str::FromStr;

use cdk::mint_url::MintUrl;
use cdk::wallet::types::{SendSagaState, TransactionDirection, TransactionStatus, WalletSagaState};
use cdk::wallet::{ReceiveOptions, Wallet};
use uuid::Uuid;

use crate::outbox::{OutboxRow, OutboxState, Settlement};
use crate::wallet::AgentWallet;

impl AgentWallet {
    /// Finds out what became of an outbox payment's token, taking it back when it is unspent
    /// and not locked to the payee. The mint is the judge: if the payee redeems at the same
    /// moment, exactly one of the two swaps succeeds.
    pub(crate) async fn settle(&self, row: &OutboxRow) -> Settlement {
        let undetermined = |e: &dyn std::fmt::Display| Settlement::Undetermined(e.to_string());
        let mint = match MintUrl::from_str(&row.mint) {
            Ok(m) => m,
            Err(e) => return undetermined(&e),
        };
        let wallet = match self.wallet_for(&mint) {
            Ok(w) => w,
            Err(e) => return undetermined(&e),
        };
        let op = match Uuid::parse_str(&row.operation_id) {
            Ok(op) => op,
            Err(e) => return undetermined(&e),
        };
        let saga = match wallet.localstore.get_saga(&op).await {
            Ok(s) => s,
            Err(e) => return undetermined(&e),
        };
        match saga.map(|s| s.state) {
            Some(WalletSagaState::Send(SendSagaState::TokenCreated)) if row.locked => {
                match wallet.check_send_status(op).await {
                    Ok(true) => Settlement::Spent,
                    Ok(false) => Settlement::Unreclaimable,
                    Err(e) => after_error(&wallet, op, &e).await,
                }
            }
            Some(WalletSagaState::Send(SendSagaState::TokenCreated)) => {
                match wallet.revoke_send(op).await {
                    Ok(returned) => Settlement::Reclaimed {
                        returned: returned.into(),
                    },
                    Err(e) => after_error(&wallet, op, &e).await,
                }
            }
            // Not finished one way or the other: cdk's own recovery moves it on.
            Some(state) => Settlement::Undetermined(format!("cdk send saga in state {state:?}")),
            None => self.settle_without_saga(&wallet, op, row).await,
        }
    }

    /// cdk's saga is gone: it finished (claimed), was revoked, or was compensated before a
    /// token existed. A `Failed` transaction record says cdk took it back; anything else is
    /// asked of the mint through the token itself. cdk's own recovery records `Completed` for
    /// a send whose proofs it no longer finds reserved, which a kill inside `confirm` causes
    /// while the token's proofs are still unspent: trusting that record counted a payment
    /// the payee never redeemed (the agent crash loop ended a round 5 sat over).
    async fn settle_without_saga(&self, wallet: &Wallet, op: Uuid, row: &OutboxRow) -> Settlement {
        if let Some(TransactionStatus::Failed) = saga_transaction_status(wallet, op).await {
            return Settlement::Reclaimed {
                returned: row.token_value,
            };
        }
        let Some(token) = row.token.as_deref() else {
            // No token was ever made: the reservation was released.
            return Settlement::Reclaimed {
                returned: row.token_value,
            };
        };
        if row.state == OutboxState::InFlight && row.locked {
            return Settlement::Unreclaimable;
        }
        match wallet.receive(token, ReceiveOptions::default()).await {
            Ok(returned) => Settlement::Reclaimed {
                returned: returned.into(),
            },
            Err(cdk::Error::TokenAlreadySpent) => Settlement::Spent,
            Err(e) => Settlement::Undetermined(e.to_string()),
        }
    }
}

/// After a revoke or status check failed: if the saga is gone, cdk finalized it because the
/// proofs were spent; otherwise the mint could not be asked.
async fn after_error(wallet: &Wallet, op: Uuid, e: &cdk::Error) -> Settlement {
    match wallet.localstore.get_saga(&op).await {
        Ok(None) => Settlement::Spent,
        _ => Settlement::Undetermined(e.to_string()),
    }
}

async fn saga_transaction_status(wallet: &Wallet, op: Uuid) -> Option<TransactionStatus> {
    let txs = wallet
        .list_transactions(Some(TransactionDirection::Outgoing))
        .await
        .ok()?;
    txs.into_iter()
        .find(|t| t.saga_id == Some(op))
        .map(|t| t.status)
}
