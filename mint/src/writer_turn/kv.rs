//! The KV store (allowances, the seed fingerprint, Lightning backends' state) with its write
//! transactions taking the writer's turn, like the mint's own (`writer_turn` module docs).

use async_trait::async_trait;
use cdk_common::database::{DynKVStore, Error, KVStore, KVStoreDatabase};

use super::turned::{KvTx, Turned};
use super::WriterTurn;

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
    async fn begin_transaction(&self) -> Result<KvTx, Error> {
        let turn = self.turn.take().await?;
        let inner = self.inner.begin_transaction().await?;
        Ok(Box::new(Turned::new(inner, turn)))
    }
}
