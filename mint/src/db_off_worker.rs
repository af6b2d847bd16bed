//! The mint database as cdk sees it, with one change: beginning a write never blocks a tokio
//! worker.
//!
//! cdk-sqlite runs its statements synchronously on the calling worker, and `BEGIN IMMEDIATE`
//! (or a lone `UPDATE`) waits there for SQLite's write lock, up to its 10 s busy timeout. The
//! lock's holder may be a task parked on that very worker: a rollback cdk spawned when it
//! dropped a transaction unfinished, or a transaction woken from an await (the Lightning
//! backend, the signatory), both placed in the worker's LIFO slot, which no other worker can
//! take. The holder then never runs and the waiter fails with "database is locked" after 10 s
//! (seen: the first mint quote after a start in the bench smoke test, and melts and quote
//! checks in the soak). Here a write begins inside `block_in_place`, which hands the worker's
//! queue to another thread first, so whatever holds the lock can finish. Reads go straight
//! through (WAL readers never wait for the writer).

use std::collections::HashMap;

use async_trait::async_trait;
use cdk_common::database::mint::{
    CompletedOperationsDatabase, Database, SagaDatabase, Transaction,
};
use cdk_common::database::{
    DynMintDatabase, Error, KVStoreDatabase, MintProofsDatabase, MintQuotesDatabase,
    MintSignaturesDatabase,
};
use cdk_common::mint::{self, MeltQuote, MintQuote, Operation};
use cdk_common::nuts::{BlindSignature, Id, Proof, Proofs, PublicKey, State};
use cdk_common::payment::PaymentIdentifier;
use cdk_common::quote_id::QuoteId;
use cdk_common::Amount;

/// [`DynMintDatabase`] whose writes begin off the worker (see the module docs).
pub struct OffWorkerDb {
    inner: DynMintDatabase,
}

impl OffWorkerDb {
    pub fn wrap(inner: DynMintDatabase) -> DynMintDatabase {
        std::sync::Arc::new(Self { inner })
    }
}

#[async_trait]
impl Database<Error> for OffWorkerDb {
    async fn begin_transaction(&self) -> Result<Box<dyn Transaction<Error> + Send + Sync>, Error> {
        off_worker(self.inner.begin_transaction()).await
    }
}

#[async_trait]
impl KVStoreDatabase for OffWorkerDb {
    type Err = Error;

    async fn kv_read(
        &self,
        primary_namespace: &str,
        secondary_namespace: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.inner
            .kv_read(primary_namespace, secondary_namespace, key)
            .await
    }

    async fn kv_list(
        &self,
        primary_namespace: &str,
        secondary_namespace: &str,
    ) -> Result<Vec<String>, Error> {
        self.inner
            .kv_list(primary_namespace, secondary_namespace)
            .await
    }
}

#[async_trait]
impl MintQuotesDatabase for OffWorkerDb {
    type Err = Error;

    async fn get_mint_quote(&self, quote_id: &QuoteId) -> Result<Option<MintQuote>, Error> {
        self.inner.get_mint_quote(quote_id).await
    }

    async fn try_update_mint_quote_last_checked(
        &self,
        quote_id: &QuoteId,
        last_checked: u64,
        min_interval: u64,
    ) -> Result<bool, Error> {
        off_worker(self.inner.try_update_mint_quote_last_checked(
            quote_id,
            last_checked,
            min_interval,
        ))
        .await
    }

    async fn get_mint_quotes_by_ids(
        &self,
        quote_ids: &[QuoteId],
    ) -> Result<Vec<Option<MintQuote>>, Error> {
        self.inner.get_mint_quotes_by_ids(quote_ids).await
    }

    async fn get_mint_quote_by_request(&self, request: &str) -> Result<Option<MintQuote>, Error> {
        self.inner.get_mint_quote_by_request(request).await
    }

    async fn get_mint_quote_by_request_lookup_id(
        &self,
        request_lookup_id: &PaymentIdentifier,
    ) -> Result<Option<MintQuote>, Error> {
        self.inner
            .get_mint_quote_by_request_lookup_id(request_lookup_id)
            .await
    }

    async fn get_mint_quotes(&self) -> Result<Vec<MintQuote>, Error> {
        self.inner.get_mint_quotes().await
    }

    async fn get_melt_quote(&self, quote_id: &QuoteId) -> Result<Option<MeltQuote>, Error> {
        self.inner.get_melt_quote(quote_id).await
    }

    async fn get_melt_quotes(&self) -> Result<Vec<MeltQuote>, Error> {
        self.inner.get_melt_quotes().await
    }
}

#[async_trait]
impl MintProofsDatabase for OffWorkerDb {
    type Err = Error;

    async fn get_proofs_by_ys(&self, ys: &[PublicKey]) -> Result<Vec<Option<Proof>>, Error> {
        self.inner.get_proofs_by_ys(ys).await
    }

    async fn get_proof_ys_by_quote_id(&self, quote_id: &QuoteId) -> Result<Vec<PublicKey>, Error> {
        self.inner.get_proof_ys_by_quote_id(quote_id).await
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
        self.inner.get_proof_ys_by_operation_id(operation_id).await
    }
}

#[async_trait]
impl MintSignaturesDatabase for OffWorkerDb {
    type Err = Error;

    async fn get_blind_signatures(
        &self,
        blinded_messages: &[PublicKey],
    ) -> Result<Vec<Option<BlindSignature>>, Error> {
        self.inner.get_blind_signatures(blinded_messages).await
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
impl SagaDatabase for OffWorkerDb {
    type Err = Error;

    async fn get_melt_saga_by_quote_id(
        &self,
        quote_id: &QuoteId,
    ) -> Result<Option<mint::Saga>, Error> {
        self.inner.get_melt_saga_by_quote_id(quote_id).await
    }

    async fn get_incomplete_sagas(
        &self,
        operation_kind: mint::OperationKind,
    ) -> Result<Vec<mint::Saga>, Error> {
        self.inner.get_incomplete_sagas(operation_kind).await
    }
}

#[async_trait]
impl CompletedOperationsDatabase for OffWorkerDb {
    type Err = Error;

    async fn get_completed_operation(
        &self,
        operation_id: &uuid::Uuid,
    ) -> Result<Option<Operation>, Error> {
        self.inner.get_completed_operation(operation_id).await
    }

    async fn get_completed_operations_by_kind(
        &self,
        operation_kind: mint::OperationKind,
    ) -> Result<Vec<Operation>, Error> {
        self.inner
            .get_completed_operations_by_kind(operation_kind)
            .await
    }

    async fn get_completed_operations(&self) -> Result<Vec<Operation>, Error> {
        self.inner.get_completed_operations().await
    }
}

/// Runs `write`, which may wait synchronously for SQLite's write lock, without holding up the
/// tasks queued on this worker: on the multi-threaded runtime inside `block_in_place`; on a
/// current-thread runtime (tests) after a yield, the best that runtime allows.
pub async fn off_worker<F: std::future::Future>(write: F) -> F::Output {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(write))
        }
        _ => {
            tokio::task::yield_now().await;
            write.await
        }
    }
}
