//! The mint's transaction trait on a turned transaction: every method forwards to cdk's
//! transaction unchanged (commit, rollback and the KV methods are in `turned.rs`).

use std::collections::HashMap;

use async_trait::async_trait;
use cdk_common::database::mint::{
    Acquired, CompletedOperationsTransaction, LockedMeltQuotes, MeltRequestInfo, QuotesTransaction,
    SagaTransaction, Transaction,
};
use cdk_common::database::{Error, MintProofsTransaction, MintSignatureTransaction};
use cdk_common::mint::{self, MeltQuote, MintQuote, Operation, ProofsWithState};
use cdk_common::nuts::{
    BlindSignature, BlindedMessage, CurrencyUnit, Id, MeltQuoteState, Proofs, PublicKey, State,
};
use cdk_common::payment::PaymentIdentifier;
use cdk_common::quote_id::QuoteId;
use cdk_common::Amount;

use super::turned::{MintTx, Turned};

/// A mint write transaction holding the writer's turn (`turned.rs`).
pub(super) type TurnTransaction = Turned<MintTx>;

#[async_trait]
impl Transaction<Error> for TurnTransaction {
    async fn lock_quotes(&mut self, quote_ids: &[QuoteId]) -> Result<bool, Error> {
        self.tx()?.lock_quotes(quote_ids).await
    }
}

#[async_trait]
impl QuotesTransaction for TurnTransaction {
    type Err = Error;

    async fn add_melt_request(
        &mut self,
        quote_id: &QuoteId,
        inputs_amount: Amount<CurrencyUnit>,
        inputs_fee: Amount<CurrencyUnit>,
    ) -> Result<(), Error> {
        self.tx()?
            .add_melt_request(quote_id, inputs_amount, inputs_fee)
            .await
    }

    async fn add_blinded_messages(
        &mut self,
        quote_id: Option<&QuoteId>,
        blinded_messages: &[BlindedMessage],
        operation: &Operation,
    ) -> Result<(), Error> {
        self.tx()?
            .add_blinded_messages(quote_id, blinded_messages, operation)
            .await
    }

    async fn delete_blinded_messages(
        &mut self,
        blinded_secrets: &[PublicKey],
    ) -> Result<(), Error> {
        self.tx()?.delete_blinded_messages(blinded_secrets).await
    }

    async fn get_melt_request_and_blinded_messages(
        &mut self,
        quote_id: &QuoteId,
    ) -> Result<Option<MeltRequestInfo>, Error> {
        self.tx()?
            .get_melt_request_and_blinded_messages(quote_id)
            .await
    }

    async fn delete_melt_request(&mut self, quote_id: &QuoteId) -> Result<(), Error> {
        self.tx()?.delete_melt_request(quote_id).await
    }

    async fn get_mint_quote(
        &mut self,
        quote_id: &QuoteId,
    ) -> Result<Option<Acquired<MintQuote>>, Error> {
        QuotesTransaction::get_mint_quote(&mut **self.tx()?, quote_id).await
    }

    async fn get_mint_quotes_by_ids(
        &mut self,
        quote_ids: &[QuoteId],
    ) -> Result<Vec<Option<Acquired<MintQuote>>>, Error> {
        QuotesTransaction::get_mint_quotes_by_ids(&mut **self.tx()?, quote_ids).await
    }

    async fn add_mint_quote(&mut self, quote: MintQuote) -> Result<Acquired<MintQuote>, Error> {
        self.tx()?.add_mint_quote(quote).await
    }

    async fn update_mint_quote(&mut self, quote: &mut Acquired<MintQuote>) -> Result<(), Error> {
        self.tx()?.update_mint_quote(quote).await
    }

    async fn get_melt_quote(
        &mut self,
        quote_id: &QuoteId,
    ) -> Result<Option<Acquired<MeltQuote>>, Error> {
        QuotesTransaction::get_melt_quote(&mut **self.tx()?, quote_id).await
    }

    async fn add_melt_quote(&mut self, quote: MeltQuote) -> Result<(), Error> {
        self.tx()?.add_melt_quote(quote).await
    }

    async fn get_melt_quotes_by_request_lookup_id(
        &mut self,
        request_lookup_id: &PaymentIdentifier,
    ) -> Result<Vec<Acquired<MeltQuote>>, Error> {
        self.tx()?
            .get_melt_quotes_by_request_lookup_id(request_lookup_id)
            .await
    }

    async fn lock_melt_quote_and_related(
        &mut self,
        quote_id: &QuoteId,
    ) -> Result<LockedMeltQuotes, Error> {
        self.tx()?.lock_melt_quote_and_related(quote_id).await
    }

    async fn update_melt_quote_request_lookup_id(
        &mut self,
        quote: &mut Acquired<MeltQuote>,
        new_request_lookup_id: &PaymentIdentifier,
    ) -> Result<(), Error> {
        self.tx()?
            .update_melt_quote_request_lookup_id(quote, new_request_lookup_id)
            .await
    }

    async fn update_melt_quote_state(
        &mut self,
        quote: &mut Acquired<MeltQuote>,
        new_state: MeltQuoteState,
        payment_proof: Option<String>,
    ) -> Result<MeltQuoteState, Error> {
        self.tx()?
            .update_melt_quote_state(quote, new_state, payment_proof)
            .await
    }

    async fn get_mint_quote_by_request(
        &mut self,
        request: &str,
    ) -> Result<Option<Acquired<MintQuote>>, Error> {
        QuotesTransaction::get_mint_quote_by_request(&mut **self.tx()?, request).await
    }

    async fn get_mint_quote_by_request_lookup_id(
        &mut self,
        request_lookup_id: &PaymentIdentifier,
    ) -> Result<Option<Acquired<MintQuote>>, Error> {
        QuotesTransaction::get_mint_quote_by_request_lookup_id(&mut **self.tx()?, request_lookup_id)
            .await
    }
}

#[async_trait]
impl MintProofsTransaction for TurnTransaction {
    type Err = Error;

    async fn add_proofs(
        &mut self,
        proof: Proofs,
        quote_id: Option<QuoteId>,
        operation: &Operation,
    ) -> Result<Acquired<ProofsWithState>, Error> {
        self.tx()?.add_proofs(proof, quote_id, operation).await
    }

    async fn update_proofs_state(
        &mut self,
        proofs: &mut Acquired<ProofsWithState>,
        new_state: State,
    ) -> Result<(), Error> {
        self.tx()?.update_proofs_state(proofs, new_state).await
    }

    async fn get_proofs(&mut self, ys: &[PublicKey]) -> Result<Acquired<ProofsWithState>, Error> {
        self.tx()?.get_proofs(ys).await
    }

    async fn remove_proofs(
        &mut self,
        ys: &[PublicKey],
        quote_id: Option<QuoteId>,
    ) -> Result<(), Error> {
        self.tx()?.remove_proofs(ys, quote_id).await
    }

    async fn get_proof_ys_by_quote_id(
        &mut self,
        quote_id: &QuoteId,
    ) -> Result<Vec<PublicKey>, Error> {
        MintProofsTransaction::get_proof_ys_by_quote_id(&mut **self.tx()?, quote_id).await
    }

    async fn get_proof_ys_by_operation_id(
        &mut self,
        operation_id: &uuid::Uuid,
    ) -> Result<Vec<PublicKey>, Error> {
        MintProofsTransaction::get_proof_ys_by_operation_id(&mut **self.tx()?, operation_id).await
    }
}

#[async_trait]
impl MintSignatureTransaction for TurnTransaction {
    type Err = Error;

    async fn add_blind_signatures(
        &mut self,
        blinded_messages: &[PublicKey],
        blind_signatures: &[BlindSignature],
        quote_id: Option<QuoteId>,
    ) -> Result<(), Error> {
        self.tx()?
            .add_blind_signatures(blinded_messages, blind_signatures, quote_id)
            .await
    }

    async fn get_blind_signatures(
        &mut self,
        blinded_messages: &[PublicKey],
    ) -> Result<Vec<Option<BlindSignature>>, Error> {
        MintSignatureTransaction::get_blind_signatures(&mut **self.tx()?, blinded_messages).await
    }
}

#[async_trait]
impl SagaTransaction for TurnTransaction {
    type Err = Error;

    async fn get_saga(&mut self, operation_id: &uuid::Uuid) -> Result<Option<mint::Saga>, Error> {
        self.tx()?.get_saga(operation_id).await
    }

    async fn get_saga_for_update(
        &mut self,
        operation_id: &uuid::Uuid,
    ) -> Result<Option<Acquired<mint::Saga>>, Error> {
        self.tx()?.get_saga_for_update(operation_id).await
    }

    async fn add_saga(&mut self, saga: &mint::Saga) -> Result<(), Error> {
        self.tx()?.add_saga(saga).await
    }

    async fn update_acquired_saga(
        &mut self,
        saga: &mut Acquired<mint::Saga>,
        new_state: mint::SagaStateEnum,
    ) -> Result<(), Error> {
        self.tx()?.update_acquired_saga(saga, new_state).await
    }

    async fn update_acquired_saga_with_finalization_data(
        &mut self,
        saga: &mut Acquired<mint::Saga>,
        new_state: mint::SagaStateEnum,
        finalization_data: Option<&mint::MeltFinalizationData>,
    ) -> Result<(), Error> {
        self.tx()?
            .update_acquired_saga_with_finalization_data(saga, new_state, finalization_data)
            .await
    }

    async fn delete_saga(&mut self, operation_id: &uuid::Uuid) -> Result<(), Error> {
        self.tx()?.delete_saga(operation_id).await
    }
}

#[async_trait]
impl CompletedOperationsTransaction for TurnTransaction {
    type Err = Error;

    async fn add_completed_operation(
        &mut self,
        operation: &Operation,
        fee_by_keyset: &HashMap<Id, Amount>,
    ) -> Result<(), Error> {
        self.tx()?
            .add_completed_operation(operation, fee_by_keyset)
            .await
    }
}
