//! The mint database as cdk sees it, with every write taking the writer's turn first
//! (`writer_turn` module docs). Reads go straight through: WAL readers never wait for the writer.

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

use super::transaction::TurnTransaction;
use super::WriterTurn;

/// [`DynMintDatabase`] whose writes take turns (see the module docs).
pub struct TurnDatabase {
    inner: DynMintDatabase,
    turn: WriterTurn,
}

impl TurnDatabase {
    pub fn wrap(inner: DynMintDatabase, turn: WriterTurn) -> DynMintDatabase {
        std::sync::Arc::new(Self { inner, turn })
    }
}

#[async_trait]
impl Database<Error> for TurnDatabase {
    async fn begin_transaction(&self) -> Result<Box<dyn Transaction<Error> + Send + Sync>, Error> {
        let turn = self.turn.take().await?;
        let inner = self.inner.begin_transaction().await?;
        Ok(Box::new(TurnTransaction::new(inner, turn)))
    }
}

#[async_trait]
impl KVStoreDatabase for TurnDatabase {
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
impl MintQuotesDatabase for TurnDatabase {
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
        // cdk's one autocommit write: an UPDATE outside any transaction.
        let _turn = self.turn.take().await?;
        self.inner
            .try_update_mint_quote_last_checked(quote_id, last_checked, min_interval)
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
impl MintProofsDatabase for TurnDatabase {
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
impl MintSignaturesDatabase for TurnDatabase {
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
impl SagaDatabase for TurnDatabase {
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
impl CompletedOperationsDatabase for TurnDatabase {
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
