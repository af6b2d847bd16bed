//! The allowance registry in the mint's own database, through cdk's KV store, so it works the
//! same on SQLite and PostgreSQL and across mint processes sharing one database.
//!
//! Layout (primary namespace `allowance`):
//!
//! | secondary | key | value |
//! |---|---|---|
//! | `accounts` | allowance id | the [`Account`] as JSON |
//! | `draws` | `<allowance id>-<nonce>` | a [`DrawRecord`] |
//! | `<allowance id>` | `e<seq>` | a history entry |
//! | `internal` | `quote-key` | the mint's own NUT-20 key for funding and prepaid quotes |
//!
//! Every change is optimistic: read the account, compute the new one, and write it only if the
//! stored bytes are still those read (`kv_write_if_equals`), together with the history entries
//! and any records the change adds, in one transaction. If another writer got there first the
//! transaction is rolled back and the change is computed again from the fresh account. No
//! update is lost and no balance goes below zero, whatever the number of writers.

use std::time::Duration;

use cashu_402::allowance::HistoryEntry;
use cdk_common::database::DynKVStore;

use super::error::AllowanceError;
use super::model::{Account, DrawRecord};
use super::policy::Refusal;

const NS: &str = "allowance";
const ACCOUNTS: &str = "accounts";
const DRAWS: &str = "draws";
const INTERNAL: &str = "internal";
/// How often a change is recomputed after losing a race before giving up with "busy".
const MAX_ATTEMPTS: u32 = 400;

/// What a change adds besides the new account.
#[derive(Debug, Default)]
pub struct Effects {
    pub events: Vec<HistoryEntry>,
    /// A draw record that must not exist yet (a reused nonce is refused).
    pub new_draw: Option<(String, DrawRecord)>,
    /// Draw records to overwrite (to mark a draw given back).
    pub put_draws: Vec<(String, DrawRecord)>,
}

impl Effects {
    pub fn event(event: HistoryEntry) -> Self {
        Self {
            events: vec![event],
            ..Self::default()
        }
    }
}

#[derive(Clone)]
pub struct Registry {
    kv: DynKVStore,
    /// Serialises this process's writers: SQLite has one writer at a time anyway, and waiting
    /// here is cheaper than waiting on the database's lock. Other processes are kept honest by
    /// the compare-and-swap.
    local: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Registry {
    pub fn new(kv: DynKVStore) -> Self {
        Self {
            kv,
            local: std::sync::Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Account>, AllowanceError> {
        if !valid_key(id) {
            return Ok(None);
        }
        match self.kv.kv_read(NS, ACCOUNTS, id).await? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every allowance, newest first.
    pub async fn list(&self) -> Result<Vec<Account>, AllowanceError> {
        let mut out = Vec::new();
        for id in self.kv.kv_list(NS, ACCOUNTS).await? {
            if let Some(a) = self.get(&id).await? {
                out.push(a);
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    pub async fn draw(&self, key: &str) -> Result<Option<DrawRecord>, AllowanceError> {
        if !valid_key(key) {
            return Ok(None);
        }
        match self.kv.kv_read(NS, DRAWS, key).await? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The history of one allowance, oldest first.
    pub async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, AllowanceError> {
        let mut keys = self.kv.kv_list(NS, id).await?;
        keys.sort();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(bytes) = self.kv.kv_read(NS, id, &k).await? {
                out.push(serde_json::from_slice(&bytes)?);
            }
        }
        Ok(out)
    }

    /// Stores a new allowance with its first history entries.
    pub async fn create(
        &self,
        mut account: Account,
        events: Vec<HistoryEntry>,
    ) -> Result<Account, AllowanceError> {
        let _local = self.local.lock().await;
        let events = number_events(&mut account, events)?;
        let bytes = serde_json::to_vec(&account)?;
        let mut tx = self.kv.begin_transaction().await?;
        if !tx
            .kv_write_if_absent(NS, ACCOUNTS, &account.id, &bytes)
            .await?
        {
            tx.rollback().await?;
            return Err(AllowanceError::Conflict("allowance id taken".into()));
        }
        for (key, value) in &events {
            tx.kv_write(NS, &account.id, key, value).await?;
        }
        tx.commit().await?;
        Ok(account)
    }

    /// Applies `change` to the allowance `id` atomically (see the module docs). `change` may
    /// run several times; it must depend only on the account it is given.
    pub async fn update<T>(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Account) -> Result<(T, Effects), AllowanceError>,
    ) -> Result<(Account, T), AllowanceError> {
        if !valid_key(id) {
            return Err(AllowanceError::NotFound(id.to_string()));
        }
        let _local = self.local.lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            let mut tx = self.kv.begin_transaction().await?;
            let Some(old) = tx.kv_read(NS, ACCOUNTS, id).await? else {
                tx.rollback().await?;
                return Err(AllowanceError::NotFound(id.to_string()));
            };
            let mut account: Account = serde_json::from_slice(&old)?;
            let (value, effects) = match change(&mut account) {
                Ok(v) => v,
                Err(e) => {
                    tx.rollback().await?;
                    return Err(e);
                }
            };
            account.version += 1;
            let events = number_events(&mut account, effects.events)?;
            let new = serde_json::to_vec(&account)?;
            if !tx.kv_write_if_equals(NS, ACCOUNTS, id, &old, &new).await? {
                tx.rollback().await?;
                // Another process changed it first: back off a little, then try again.
                let jitter = u64::from(attempt % 7) + rand::random::<u64>() % 5;
                tokio::time::sleep(Duration::from_millis(jitter)).await;
                continue;
            }
            if let Some((key, record)) = &effects.new_draw {
                let bytes = serde_json::to_vec(record)?;
                if !tx.kv_write_if_absent(NS, DRAWS, key, &bytes).await? {
                    tx.rollback().await?;
                    return Err(Refusal::BadSignature("this nonce was used before".into()).into());
                }
            }
            for (key, value) in &events {
                tx.kv_write(NS, id, key, value).await?;
            }
            for (key, record) in &effects.put_draws {
                tx.kv_write(NS, DRAWS, key, &serde_json::to_vec(record)?)
                    .await?;
            }
            tx.commit().await?;
            return Ok((account, value));
        }
        Err(Refusal::Busy.into())
    }

    /// The mint's own quote key (hex secret), made once and shared by every mint process.
    pub async fn internal_key(&self) -> Result<String, AllowanceError> {
        if let Some(bytes) = self.kv.kv_read(NS, INTERNAL, "quote-key").await? {
            return String::from_utf8(bytes)
                .map_err(|_| AllowanceError::Storage("corrupt internal key".into()));
        }
        let fresh = cdk::nuts::SecretKey::generate().to_secret_hex();
        let mut tx = self.kv.begin_transaction().await?;
        let written = tx
            .kv_write_if_absent(NS, INTERNAL, "quote-key", fresh.as_bytes())
            .await?;
        tx.commit().await?;
        if written {
            return Ok(fresh);
        }
        let bytes = self
            .kv
            .kv_read(NS, INTERNAL, "quote-key")
            .await?
            .ok_or_else(|| AllowanceError::Storage("internal key vanished".into()))?;
        String::from_utf8(bytes).map_err(|_| AllowanceError::Storage("corrupt internal key".into()))
    }
}

/// Gives each new history entry its key (`e` and a ten-digit sequence number).
fn number_events(
    account: &mut Account,
    events: Vec<HistoryEntry>,
) -> Result<Vec<(String, Vec<u8>)>, AllowanceError> {
    events
        .into_iter()
        .map(|e| {
            let key = format!("e{:010}", account.next_event);
            account.next_event += 1;
            Ok((key, serde_json::to_vec(&e)?))
        })
        .collect()
}

/// KV keys allow ASCII letters, digits, `_` and `-`, at most 120 characters.
fn valid_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 120
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
