//! The KV store (allowances, the seed fingerprint, Lightning backends' state) with its write
//! transactions taking the writer's turn, like the mint's own (`writer_turn` module docs).

use async_trait::async_trait;
use cdk_common::database::{
    DbTransactionFinalizer, DynKVStore, Error, KVStore, KVStoreDatabase, KVStoreTransaction,
};

use super::{roll_back_then_release, Turn, WriterTurn};

type Inner = Box<dyn KVStoreTransaction<Error> + Send + Sync>;

pub struct TurnKvStore {
    inner: DynKVStore,
    turn: WriterTurn,
}

impl TurnKvStore {
    pub fn wrap(inner: DynKVStore, turn: WriterTurn) -> DynKVStore {
        std::sync::Arc::new(Self { inner, turn })
    }
}

#[async_trait]
impl KVStoreDatabase for TurnKvStore {
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
impl KVStore for TurnKvStore {
    async fn begin_transaction(&self) -> Result<Inner, Error> {
        let turn = self.turn.take().await?;
        let inner = self.inner.begin_transaction().await?;
        Ok(Box::new(TurnKvTransaction {
            inner: Some(inner),
            turn: Some(turn),
        }))
    }
}

struct TurnKvTransaction {
    /// `None` only once committed or rolled back.
    inner: Option<Inner>,
    turn: Option<Turn>,
}

impl TurnKvTransaction {
    fn tx(&mut self) -> Result<&mut Inner, Error> {
        self.inner
            .as_mut()
            .ok_or_else(|| Error::Internal("the transaction has already ended".into()))
    }

    fn take(&mut self) -> Result<Inner, Error> {
        self.inner
            .take()
            .ok_or_else(|| Error::Internal("the transaction has already ended".into()))
    }
}

impl Drop for TurnKvTransaction {
    fn drop(&mut self) {
        if let (Some(tx), Some(turn)) = (self.inner.take(), self.turn.take()) {
            roll_back_then_release(
                tx,
                |tx| {
                    Box::pin(async move {
                        if let Err(e) = tx.rollback().await {
                            tracing::warn!(error = %e, "rolling back an abandoned KV transaction failed");
                        }
                    })
                },
                turn,
            );
        }
    }
}

#[async_trait]
impl DbTransactionFinalizer for TurnKvTransaction {
    type Err = Error;

    async fn commit(mut self: Box<Self>) -> Result<(), Error> {
        self.take()?.commit().await
    }

    async fn rollback(mut self: Box<Self>) -> Result<(), Error> {
        self.take()?.rollback().await
    }
}

#[async_trait]
impl KVStoreTransaction<Error> for TurnKvTransaction {
    async fn kv_read(
        &mut self,
        primary_namespace: &str,
        secondary_namespace: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.tx()?
            .kv_read(primary_namespace, secondary_namespace, key)
            .await
    }

    async fn kv_write(
        &mut self,
        primary_namespace: &str,
        secondary_namespace: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), Error> {
        self.tx()?
            .kv_write(primary_namespace, secondary_namespace, key, value)
            .await
    }

    async fn kv_write_if_absent(
        &mut self,
        primary_namespace: &str,
        secondary_namespace: &str,
        key: &str,
        value: &[u8],
    ) -> Result<bool, Error> {
        self.tx()?
            .kv_write_if_absent(primary_namespace, secondary_namespace, key, value)
            .await
    }

    async fn kv_remove(
        &mut self,
        primary_namespace: &str,
        secondary_namespace: &str,
        key: &str,
    ) -> Result<(), Error> {
        self.tx()?
            .kv_remove(primary_namespace, secondary_namespace, key)
            .await
    }

    async fn kv_write_if_equals(
        &mut self,
        primary_namespace: &str,
        secondary_namespace: &str,
        key: &str,
        expected: &[u8],
        replacement: &[u8],
    ) -> Result<bool, Error> {
        self.tx()?
            .kv_write_if_equals(
                primary_namespace,
                secondary_namespace,
                key,
                expected,
                replacement,
            )
            .await
    }

    async fn kv_list(
        &mut self,
        primary_namespace: &str,
        secondary_namespace: &str,
    ) -> Result<Vec<String>, Error> {
        self.tx()?
            .kv_list(primary_namespace, secondary_namespace)
            .await
    }
}
