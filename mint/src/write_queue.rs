//! One SQLite write transaction at a time, queued on an async lock instead of in SQLite's busy
//! handler.
//!
//! cdk-sqlite opens every write transaction with `BEGIN IMMEDIATE` on one of up to 20 pooled
//! connections, and runs SQLite synchronously on the Tokio worker. SQLite allows one writer: a
//! second `BEGIN IMMEDIATE` gets `SQLITE_BUSY` and SQLite's busy handler *sleeps the worker
//! thread* (1, 2, 5, 10 … ms) until the lock frees. Under concurrent swaps that parks the workers
//! that should be serving HTTP and signing, and turns a sub-millisecond wait into milliseconds.
//! Waiting here instead costs the worker nothing: the task yields, and the next writer starts the
//! moment the previous one commits or rolls back.
//!
//! Nothing about durability or isolation changes: the transactions are the same, in the same
//! order SQLite would have admitted them. Reads (outside transactions) are not queued. If the
//! queue is not free within [`QUEUE_TIMEOUT`] (SQLite's own busy timeout in cdk-sqlite), the
//! transaction starts anyway and SQLite arbitrates as before, so a stuck writer cannot deadlock
//! the mint.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cdk::nuts::{BlindSignature, BlindedMessage, Id, MeltQuoteState, Proof, Proofs, PublicKey, State};
use cdk::Amount;
use cdk_common::database::mint::{
    Acquired, CompletedOperationsDatabase, CompletedOperationsTransaction, LockedMeltQuotes,
    MeltRequestInfo, SagaDatabase, SagaTransaction,
};
use cdk_common::database::{
    DbTransactionFinalizer, DynMintDatabase, Error, KVStoreDatabase, KVStoreTransaction,
    MintDatabase, MintProofsDatabase, MintProofsTransaction, MintQuotesDatabase,
    MintQuotesTransaction, MintSignatureTransaction, MintSignaturesDatabase, MintTransaction,
};
use cdk_common::mint::{
    self, MeltQuote, MintQuote, Operation, OperationKind, ProofsWithState, Saga, SagaStateEnum,
};
use cdk_common::payment::PaymentIdentifier;
use cdk_common::quote_id::QuoteId;
use cdk_common::CurrencyUnit;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// cdk-sqlite's `busy_timeout`: past it SQLite would have given up too.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// A mint database whose write transactions take turns.
pub struct WriteQueue {
    inner: DynMintDatabase,
    turn: Arc<Mutex<()>>,
}

impl WriteQueue {
    pub fn new(inner: DynMintDatabase) -> Self {
        Self {
            inner,
            turn: Arc::new(Mutex::new(())),
        }
    }
}

/// A transaction holding the writer's turn until it commits, rolls back or is dropped.
struct Queued {
    inner: Box<dyn MintTransaction<Error> + Send + Sync>,
    _turn: Option<OwnedMutexGuard<()>>,
}

#[async_trait]
impl MintDatabase<Error> for WriteQueue {
    async fn begin_transaction(
        &self,
    ) -> Result<Box<dyn MintTransaction<Error> + Send + Sync>, Error> {
        let turn = match tokio::time::timeout(QUEUE_TIMEOUT, self.turn.clone().lock_owned()).await
        {
            Ok(guard) => Some(guard),
            Err(_) => {
                tracing::warn!("write queue busy for {QUEUE_TIMEOUT:?}; leaving it to SQLite");
                None
            }
        };
        let inner = self.inner.begin_transaction().await?;
        Ok(Box::new(Queued { inner, _turn: turn }))
    }
}

#[async_trait]
impl DbTransactionFinalizer for Queued {
    type Err = Error;

    async fn commit(self: Box<Self>) -> Result<(), Error> {
        self.inner.commit().await
    }

    async fn rollback(self: Box<Self>) -> Result<(), Error> {
        self.inner.rollback().await
    }
}

#[async_trait]
impl MintTransaction<Error> for Queued {
    async fn lock_quotes(&mut self, quote_ids: &[QuoteId]) -> Result<bool, Error> {
        self.inner.lock_quotes(quote_ids).await
    }
}

#[async_trait]
impl MintQuotesTransaction for Queued {
    type Err = Error;

    async fn add_melt_request(
        &mut self,
        quote_id: &QuoteId,
        inputs_amount: cdk_common::Amount<CurrencyUnit>,
        inputs_fee: cdk_common::Amount<CurrencyUnit>,
    ) -> Result<(), Error> {
        self.inner
            .add_melt_request(quote_id, inputs_amount, inputs_fee)
            .await
    }

    async fn add_blinded_messages(
        &mut self,
        quote_id: Option<&QuoteId>,
        blinded_messages: &[BlindedMessage],
        operation: &Operation,
    ) -> Result<(), Error> {
        self.inner
            .add_blinded_messages(quote_id, blinded_messages, operation)
            .await
    }

    async fn delete_blinded_messages(&mut self, blinded_secrets: &[PublicKey]) -> Result<(), Error> {
        self.inner.delete_blinded_messages(blinded_secrets).await
    }

    async fn get_melt_request_and_blinded_messages(
        &mut self,
        quote_id: &QuoteId,
    ) -> Result<Option<MeltRequestInfo>, Error> {
        self.inner
            .get_melt_request_and_blinded_messages(quote_id)
            .await
    }

    async fn delete_melt_request(&mut self, quote_id: &QuoteId) -> Result<(), Error> {
        self.inner.delete_melt_request(quote_id).await
    }

    async fn get_mint_quote(
        &mut self,
        quote_id: &QuoteId,
    ) -> Result<Option<Acquired<MintQuote>>, Error> {
        MintQuotesTransaction::get_mint_quote(&mut *self.inner, quote_id).await
    }

    async fn get_mint_quotes_by_ids(
        &mut self,
        quote_ids: &[QuoteId],
    ) -> Result<Vec<Option<Acquired<MintQuote>>>, Error> {
        MintQuotesTransaction::get_mint_quotes_by_ids(&mut *self.inner, quote_ids).await
    }

    async fn add_mint_quote(&mut self, quote: MintQuote) -> Result<Acquired<MintQuote>, Error> {
        self.inner.add_mint_quote(quote).await
    }

    async fn update_mint_quote(&mut self, quote: &mut Acquired<MintQuote>) -> Result<(), Error> {
        self.inner.update_mint_quote(quote).await
    }

    async fn get_melt_quote(
        &mut self,
        quote_id: &QuoteId,
    ) -> Result<Option<Acquired<MeltQuote>>, Error> {
        MintQuotesTransaction::get_melt_quote(&mut *self.inner, quote_id).await
    }

    async fn add_melt_quote(&mut self, quote: MeltQuote) -> Result<(), Error> {
        self.inner.add_melt_quote(quote).await
    }

    async fn get_melt_quotes_by_request_lookup_id(
        &mut self,
        request_lookup_id: &PaymentIdentifier,
    ) -> Result<Vec<Acquired<MeltQuote>>, Error> {
        self.inner
            .get_melt_quotes_by_request_lookup_id(request_lookup_id)
            .await
    }

    async fn lock_melt_quote_and_related(
        &mut self,
        quote_id: &QuoteId,
    ) -> Result<LockedMeltQuotes, Error> {
        self.inner.lock_melt_quote_and_related(quote_id).await
    }

    async fn update_melt_quote_request_lookup_id(
        &mut self,
        quote: &mut Acquired<MeltQuote>,
        new_request_lookup_id: &PaymentIdentifier,
    ) -> Result<(), Error> {
        self.inner
            .update_melt_quote_request_lookup_id(quote, new_request_lookup_id)
            .await
    }

    async fn update_melt_quote_state(
        &mut self,
        quote: &mut Acquired<MeltQuote>,
        new_state: MeltQuoteState,
        payment_proof: Option<String>,
    ) -> Result<MeltQuoteState, Error> {
        self.inner
            .update_melt_quote_state(quote, new_state, payment_proof)
            .await
    }

    async fn get_mint_quote_by_request(
        &mut self,
        request: &str,
    ) -> Result<Option<Acquired<MintQuote>>, Error> {
        MintQuotesTransaction::get_mint_quote_by_request(&mut *self.inner, request).await
    }

    async fn get_mint_quote_by_request_lookup_id(
        &mut self,
        request_lookup_id: &PaymentIdentifier,
    ) -> Result<Option<Acquired<MintQuote>>, Error> {
        MintQuotesTransaction::get_mint_quote_by_request_lookup_id(
            &mut *self.inner,
            request_lookup_id,
        )
        .await
    }
}

#[async_trait]
impl MintProofsTransaction for Queued {
    type Err = Error;

    async fn add_proofs(
        &mut self,
        proof: Proofs,
        quote_id: Option<QuoteId>,
        operation: &Operation,
    ) -> Result<Acquired<ProofsWithState>, Error> {
        self.inner.add_proofs(proof, quote_id, operation).await
    }

    async fn update_proofs_state(
        &mut self,
        proofs: &mut Acquired<ProofsWithState>,
        new_state: State,
    ) -> Result<(), Error> {
        self.inner.update_proofs_state(proofs, new_state).await
    }

    async fn get_proofs(&mut self, ys: &[PublicKey]) -> Result<Acquired<ProofsWithState>, Error> {
        self.inner.get_proofs(ys).await
    }

    async fn remove_proofs(
        &mut self,
        ys: &[PublicKey],
        quote_id: Option<QuoteId>,
    ) -> Result<(), Error> {
        self.inner.remove_proofs(ys, quote_id).await
    }

    async fn get_proof_ys_by_quote_id(
        &mut self,
        quote_id: &QuoteId,
    ) -> Result<Vec<PublicKey>, Error> {
        MintProofsTransaction::get_proof_ys_by_quote_id(&mut *self.inner, quote_id).await
    }

    async fn get_proof_ys_by_operation_id(
        &mut self,
        operation_id: &uuid::Uuid,
    ) -> Result<Vec<PublicKey>, Error> {
        MintProofsTransaction::get_proof_ys_by_operation_id(&mut *self.inner, operation_id).await
    }
}

#[async_trait]
impl MintSignatureTransaction for Queued {
    type Err = Error;

    async fn add_blind_signatures(
        &mut self,
        blinded_messages: &[PublicKey],
        blind_signatures: &[BlindSignature],
        quote_id: Option<QuoteId>,
    ) -> Result<(), Error> {
        self.inner
            .add_blind_signatures(blinded_messages, blind_signatures, quote_id)
            .await
    }

    async fn get_blind_signatures(
        &mut self,
        blinded_messages: &[PublicKey],
    ) -> Result<Vec<Option<BlindSignature>>, Error> {
        MintSignatureTransaction::get_blind_signatures(&mut *self.inner, blinded_messages).await
    }
}

#[async_trait]
impl KVStoreTransaction<Error> for Queued {
    async fn kv_read(&mut self, ns1: &str, ns2: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
        KVStoreTransaction::kv_read(&mut *self.inner, ns1, ns2, key).await
    }

    async fn kv_write(&mut self, ns1: &str, ns2: &str, key: &str, value: &[u8]) -> Result<(), Error> {
        self.inner.kv_write(ns1, ns2, key, value).await
    }

    async fn kv_write_if_absent(
        &mut self,
        ns1: &str,
        ns2: &str,
        key: &str,
        value: &[u8],
    ) -> Result<bool, Error> {
        self.inner.kv_write_if_absent(ns1, ns2, key, value).await
    }

    async fn kv_remove(&mut self, ns1: &str, ns2: &str, key: &str) -> Result<(), Error> {
        self.inner.kv_remove(ns1, ns2, key).await
    }

    async fn kv_write_if_equals(
        &mut self,
        ns1: &str,
        ns2: &str,
        key: &str,
        expected: &[u8],
        replacement: &[u8],
    ) -> Result<bool, Error> {
        self.inner
            .kv_write_if_equals(ns1, ns2, key, expected, replacement)
            .await
    }

    async fn kv_list(&mut self, ns1: &str, ns2: &str) -> Result<Vec<String>, Error> {
        KVStoreTransaction::kv_list(&mut *self.inner, ns1, ns2).await
    }
}

#[async_trait]
impl SagaTransaction for Queued {
    type Err = Error;

    async fn get_saga(&mut self, operation_id: &uuid::Uuid) -> Result<Option<Saga>, Error> {
        self.inner.get_saga(operation_id).await
    }

    async fn get_saga_for_update(
        &mut self,
        operation_id: &uuid::Uuid,
    ) -> Result<Option<Acquired<Saga>>, Error> {
        self.inner.get_saga_for_update(operation_id).await
    }

    async fn add_saga(&mut self, saga: &Saga) -> Result<(), Error> {
        self.inner.add_saga(saga).await
    }

    async fn update_acquired_saga(
        &mut self,
        saga: &mut Acquired<Saga>,
        new_state: SagaStateEnum,
    ) -> Result<(), Error> {
        self.inner.update_acquired_saga(saga, new_state).await
    }

    async fn update_acquired_saga_with_finalization_data(
        &mut self,
        saga: &mut Acquired<Saga>,
        new_state: SagaStateEnum,
        finalization_data: Option<&mint::MeltFinalizationData>,
    ) -> Result<(), Error> {
        self.inner
            .update_acquired_saga_with_finalization_data(saga, new_state, finalization_data)
            .await
    }

    async fn delete_saga(&mut self, operation_id: &uuid::Uuid) -> Result<(), Error> {
        self.inner.delete_saga(operation_id).await
    }
}

#[async_trait]
impl CompletedOperationsTransaction for Queued {
    type Err = Error;

    async fn add_completed_operation(
        &mut self,
        operation: &Operation,
        fee_by_keyset: &HashMap<Id, Amount>,
    ) -> Result<(), Error> {
        self.inner
            .add_completed_operation(operation, fee_by_keyset)
            .await
    }
}

// Reads outside transactions go straight through.

#[async_trait]
impl KVStoreDatabase for WriteQueue {
    type Err = Error;

    async fn kv_read(&self, ns1: &str, ns2: &str, key: &str) -> Result<Option<Vec<u8>>, Error> {
        KVStoreDatabase::kv_read(&*self.inner, ns1, ns2, key).await
    }

    async fn kv_list(&self, ns1: &str, ns2: &str) -> Result<Vec<String>, Error> {
        KVStoreDatabase::kv_list(&*self.inner, ns1, ns2).await
    }
}

#[async_trait]
impl MintQuotesDatabase for WriteQueue {
    type Err = Error;

    async fn get_mint_quote(&self, quote_id: &QuoteId) -> Result<Option<MintQuote>, Error> {
        MintQuotesDatabase::get_mint_quote(&*self.inner, quote_id).await
    }

    async fn try_update_mint_quote_last_checked(
        &self,
        quote_id: &QuoteId,
        last_checked: u64,
        min_interval: u64,
    ) -> Result<bool, Error> {
        self.inner
            .try_update_mint_quote_last_checked(quote_id, last_checked, min_interval)
            .await
    }

    async fn get_mint_quotes_by_ids(
        &self,
        quote_ids: &[QuoteId],
    ) -> Result<Vec<Option<MintQuote>>, Error> {
        MintQuotesDatabase::get_mint_quotes_by_ids(&*self.inner, quote_ids).await
    }

    async fn get_mint_quote_by_request(&self, request: &str) -> Result<Option<MintQuote>, Error> {
        MintQuotesDatabase::get_mint_quote_by_request(&*self.inner, request).await
    }

    async fn get_mint_quote_by_request_lookup_id(
        &self,
        request_lookup_id: &PaymentIdentifier,
    ) -> Result<Option<MintQuote>, Error> {
        MintQuotesDatabase::get_mint_quote_by_request_lookup_id(&*self.inner, request_lookup_id)
            .await
    }

    async fn get_mint_quotes(&self) -> Result<Vec<MintQuote>, Error> {
        self.inner.get_mint_quotes().await
    }

    async fn get_melt_quote(&self, quote_id: &QuoteId) -> Result<Option<MeltQuote>, Error> {
        MintQuotesDatabase::get_melt_quote(&*self.inner, quote_id).await
    }

    async fn get_melt_quotes(&self) -> Result<Vec<MeltQuote>, Error> {
        self.inner.get_melt_quotes().await
    }
}

#[async_trait]
impl MintProofsDatabase for WriteQueue {
    type Err = Error;

    async fn get_proofs_by_ys(&self, ys: &[PublicKey]) -> Result<Vec<Option<Proof>>, Error> {
        self.inner.get_proofs_by_ys(ys).await
    }

    async fn get_proof_ys_by_quote_id(&self, quote_id: &QuoteId) -> Result<Vec<PublicKey>, Error> {
        MintProofsDatabase::get_proof_ys_by_quote_id(&*self.inner, quote_id).await
    }

    async fn get_proofs_states(&self, ys: &[PublicKey]) -> Result<Vec<Option<State>>, Error> {
        self.inner.get_proofs_states(ys).await
    }

    async fn get_proofs_by_keyset_id(
        &self,
        keyset_id: &Id,
    ) -> Result<(Proofs, Vec<Option<State>>), Error> {
        self.inner.get_proofs_by_keyset_id(keyset_id).await
    }

    async fn get_total_redeemed(&self) -> Result<HashMap<Id, Amount>, Error> {
        self.inner.get_total_redeemed().await
    }

    async fn get_proof_ys_by_operation_id(
        &self,
        operation_id: &uuid::Uuid,
    ) -> Result<Vec<PublicKey>, Error> {
        MintProofsDatabase::get_proof_ys_by_operation_id(&*self.inner, operation_id).await
    }
}

#[async_trait]
impl MintSignaturesDatabase for WriteQueue {
    type Err = Error;

    async fn get_blind_signatures(
        &self,
        blinded_messages: &[PublicKey],
    ) -> Result<Vec<Option<BlindSignature>>, Error> {
        MintSignaturesDatabase::get_blind_signatures(&*self.inner, blinded_messages).await
    }

    async fn get_blind_signatures_for_keyset(
        &self,
        keyset_id: &Id,
    ) -> Result<Vec<BlindSignature>, Error> {
        self.inner.get_blind_signatures_for_keyset(keyset_id).await
    }

    async fn get_blind_signatures_for_quote(
        &self,
        quote_id: &QuoteId,
    ) -> Result<Vec<BlindSignature>, Error> {
        self.inner.get_blind_signatures_for_quote(quote_id).await
    }

    async fn get_total_issued(&self) -> Result<HashMap<Id, Amount>, Error> {
        self.inner.get_total_issued().await
    }

    async fn get_blinded_secrets_by_operation_id(
        &self,
        operation_id: &uuid::Uuid,
    ) -> Result<Vec<PublicKey>, Error> {
        self.inner
            .get_blinded_secrets_by_operation_id(operation_id)
            .await
    }
}

#[async_trait]
impl SagaDatabase for WriteQueue {
    type Err = Error;

    async fn get_melt_saga_by_quote_id(&self, quote_id: &QuoteId) -> Result<Option<Saga>, Error> {
        self.inner.get_melt_saga_by_quote_id(quote_id).await
    }

    async fn get_incomplete_sagas(&self, kind: OperationKind) -> Result<Vec<Saga>, Error> {
        self.inner.get_incomplete_sagas(kind).await
    }
}

#[async_trait]
impl CompletedOperationsDatabase for WriteQueue {
    type Err = Error;

    async fn get_completed_operation(
        &self,
        operation_id: &uuid::Uuid,
    ) -> Result<Option<Operation>, Error> {
        self.inner.get_completed_operation(operation_id).await
    }

    async fn get_completed_operations_by_kind(
        &self,
        kind: OperationKind,
    ) -> Result<Vec<Operation>, Error> {
        self.inner.get_completed_operations_by_kind(kind).await
    }

    async fn get_completed_operations(&self) -> Result<Vec<Operation>, Error> {
        self.inner.get_completed_operations().await
    }
}
