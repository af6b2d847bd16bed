//! A write transaction together with the writer's turn it holds: the turn is released when the
//! transaction commits, rolls back, or, dropped unfinished, once its rollback has run.

use async_trait::async_trait;
use cdk_common::database::mint::Transaction;
use cdk_common::database::{DbTransactionFinalizer, Error, KVStoreTransaction};

use super::Turn;

/// What a turned transaction needs of the transaction it wraps.
#[async_trait]
pub(super) trait Finish: Send + Sync + Sized + 'static {
    async fn commit(self) -> Result<(), Error>;
    async fn rollback(self) -> Result<(), Error>;
    fn kv(&mut self) -> &mut (dyn KVStoreTransaction<Error> + Send + Sync);
}

pub(super) type MintTx = Box<dyn Transaction<Error> + Send + Sync>;
pub(super) type KvTx = Box<dyn KVStoreTransaction<Error> + Send + Sync>;

#[async_trait]
impl Finish for MintTx {
    async fn commit(self) -> Result<(), Error> {
        DbTransactionFinalizer::commit(self).await
    }
    async fn rollback(self) -> Result<(), Error> {
        DbTransactionFinalizer::rollback(self).await
    }
    fn kv(&mut self) -> &mut (dyn KVStoreTransaction<Error> + Send + Sync) {
        &mut **self
    }
}

#[async_trait]
impl Finish for KvTx {
    async fn commit(self) -> Result<(), Error> {
        DbTransactionFinalizer::commit(self).await
    }
    async fn rollback(self) -> Result<(), Error> {
        DbTransactionFinalizer::rollback(self).await
    }
    fn kv(&mut self) -> &mut (dyn KVStoreTransaction<Error> + Send + Sync) {
        &mut **self
    }
}

pub(super) struct Turned<T: Finish> {
    /// `None` only once committed or rolled back.
    inner: Option<T>,
    turn: Option<Turn>,
}

impl<T: Finish> Turned<T> {
    pub(super) fn new(inner: T, turn: Turn) -> Self {
        Self {
            inner: Some(inner),
            turn: Some(turn),
        }
    }

    pub(super) fn tx(&mut self) -> Result<&mut T, Error> {
        self.inner.as_mut().ok_or_else(ended)
    }
}

fn ended() -> Error {
    Error::Internal("the transaction has already ended".into())
}

impl<T: Finish> Drop for Turned<T> {
    /// A transaction cannot roll back in `Drop` (that needs an await), so a task does it and
    /// only then hands the turn on; the next writer waits for the turn asynchronously meanwhile,
    /// never for SQLite's lock.
    fn drop(&mut self) {
        let (Some(tx), Some(turn)) = (self.inner.take(), self.turn.take()) else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(e) = tx.rollback().await {
                        tracing::warn!(error = %e, "rolling back an abandoned transaction failed");
                    }
                    drop(turn);
                });
            }
            // No runtime (the process is ending): the inner transaction's own drop does what
            // it can.
            Err(_) => drop((tx, turn)),
        }
    }
}

#[async_trait]
impl<T: Finish> DbTransactionFinalizer for Turned<T> {
    type Err = Error;

    /// The turn is released when `self` drops, after `COMMIT` returned.
    async fn commit(mut self: Box<Self>) -> Result<(), Error> {
        self.inner.take().ok_or_else(ended)?.commit().await
    }

    async fn rollback(mut self: Box<Self>) -> Result<(), Error> {
        self.inner.take().ok_or_else(ended)?.rollback().await
    }
}

#[async_trait]
impl<T: Finish> KVStoreTransaction<Error> for Turned<T> {
    async fn kv_read(
        &mut self,
        primary_namespace: &str,
        secondary_namespace: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.tx()?
            .kv()
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
            .kv()
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
            .kv()
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
            .kv()
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
            .kv()
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
            .kv()
            .kv_list(primary_namespace, secondary_namespace)
            .await
    }
}
