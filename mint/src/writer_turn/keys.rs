//! The keyset store with its transactions taking the writer's turn (`writer_turn` module docs).
//! cdk-sqlite begins every keyset transaction, reads included, with `BEGIN IMMEDIATE`.
//!
//! Unlike the other wrappers, a keyset transaction dropped unfinished hands its turn on at once:
//! it borrows the store, so its rollback cannot be moved to a task. cdk's signatory and ours
//! always finish them, and they are rare (start, rotation, the first use of a keyset).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use cdk_common::database::{
    DbTransactionFinalizer, Error, MintKeyDatabaseTransaction, MintKeysDatabase,
};
use cdk_common::mint::MintKeySetInfo;
use cdk_common::nuts::{CurrencyUnit, Id};

use super::{Turn, WriterTurn};

pub type DynKeysDatabase = Arc<dyn MintKeysDatabase<Err = Error> + Send + Sync>;

type Inner<'a> = Box<dyn MintKeyDatabaseTransaction<'a, Error> + Send + Sync + 'a>;

pub struct TurnKeysDatabase {
    inner: DynKeysDatabase,
    turn: WriterTurn,
}

impl TurnKeysDatabase {
    pub fn wrap(inner: DynKeysDatabase, turn: WriterTurn) -> DynKeysDatabase {
        Arc::new(Self { inner, turn })
    }
}

#[async_trait]
impl MintKeysDatabase for TurnKeysDatabase {
    type Err = Error;

    async fn begin_transaction<'a>(&'a self) -> Result<Inner<'a>, Error> {
        let turn = self.turn.take().await?;
        let inner = self.inner.begin_transaction().await?;
        Ok(Box::new(TurnKeysTransaction { inner, _turn: turn }))
    }

    async fn keysets_epoch(&self) -> Result<u64, Error> {
        self.inner.keysets_epoch().await
    }
}

struct TurnKeysTransaction<'a> {
    inner: Inner<'a>,
    /// Declared after `inner`, so it is released after `inner` is finished or dropped.
    _turn: Turn,
}

#[async_trait]
impl DbTransactionFinalizer for TurnKeysTransaction<'_> {
    type Err = Error;

    async fn commit(self: Box<Self>) -> Result<(), Error> {
        let Self { inner, _turn } = *self;
        inner.commit().await
    }

    async fn rollback(self: Box<Self>) -> Result<(), Error> {
        let Self { inner, _turn } = *self;
        inner.rollback().await
    }
}

#[async_trait]
impl<'a> MintKeyDatabaseTransaction<'a, Error> for TurnKeysTransaction<'a> {
    async fn set_active_keyset(&mut self, unit: CurrencyUnit, id: Id) -> Result<(), Error> {
        self.inner.set_active_keyset(unit, id).await
    }

    async fn add_keyset_info(&mut self, keyset: MintKeySetInfo) -> Result<(), Error> {
        self.inner.add_keyset_info(keyset).await
    }

    async fn next_derivation_index(&mut self, unit: &CurrencyUnit) -> Result<u32, Error> {
        self.inner.next_derivation_index(unit).await
    }

    async fn get_keyset_infos_by_unit(
        &mut self,
        unit: &CurrencyUnit,
    ) -> Result<Vec<MintKeySetInfo>, Error> {
        self.inner.get_keyset_infos_by_unit(unit).await
    }

    async fn get_active_keysets(&mut self) -> Result<HashMap<CurrencyUnit, Id>, Error> {
        self.inner.get_active_keysets().await
    }

    async fn get_keyset_infos(&mut self) -> Result<Vec<MintKeySetInfo>, Error> {
        self.inner.get_keyset_infos().await
    }

    async fn keysets_epoch(&mut self) -> Result<u64, Error> {
        self.inner.keysets_epoch().await
    }
}
