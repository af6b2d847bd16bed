//! L402 state in `agent.sqlite`: melts in flight (the outbox of Lightning payments) and the
//! credential cache.
//!
//! ```text
//!  (policy check + ledger row `pending` + melt_outbox row, one transaction)
//!            │ melt at the mint
//!            ├─ paid: credential cached, row left; answer < 400 → paid, else refused-by-server
//!            ├─ failed: cdk returns the proofs → failed (not counted)
//!            └─ pending past the deadline / crash → stays; recovery asks the mint for the quote:
//!                 paid → credential cached, `unknown` (paid, request not retried); failed → failed
//! ```
//!
//! Credentials are cached per origin (`scheme://host:port`) and path scope: the directory of
//! the path they were bought for (everything up to its last `/`). A request at that origin whose
//! path starts with the scope sends the cached credential first; a `401` or `402` drops it.

use rusqlite::{params, OptionalExtension};

use crate::error::WalletError;
use crate::ledger::LedgerEntry;
use crate::outbox::{Outbox, Resolution};
use crate::policy::{PolicyViolation, Spent};
use crate::store::{insert_ledger, now_unix, spent_in, Store};

/// An L402 melt in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeltRow {
    pub id: String,
    pub mint: String,
    /// cdk's melt saga id.
    pub operation_id: String,
    pub quote_id: String,
    pub macaroon: String,
    pub origin: String,
    pub scope: String,
}

/// A cached L402 credential: macaroon and hex preimage (empty when the mint settled the
/// invoice internally and returned none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedCredential {
    pub origin: String,
    pub scope: String,
    pub macaroon: String,
    pub preimage: String,
}

/// The path scope a credential bought for `path` covers: its directory.
pub fn scope_of(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => path[..=i].to_string(),
        None => "/".into(),
    }
}

impl Store {
    /// Like [`Store::reserve`] for a melt: caps checked, pending ledger row and melt row
    /// written, in one transaction.
    pub fn reserve_melt(
        &self,
        entry: &LedgerEntry,
        row: &MeltRow,
        check: impl FnOnce(Spent) -> Result<(), PolicyViolation>,
    ) -> Result<Result<(), PolicyViolation>, WalletError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let spent = spent_in(&tx, &entry.host, entry.time)?;
        if let Err(v) = check(spent) {
            return Ok(Err(v));
        }
        insert_ledger(&tx, entry)?;
        tx.execute(
            "INSERT INTO melt_outbox (id, mint, operation_id, quote_id, macaroon, origin, scope, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                row.id,
                row.mint,
                row.operation_id,
                row.quote_id,
                row.macaroon,
                row.origin,
                row.scope,
                now_unix() as i64
            ],
        )?;
        tx.commit()?;
        Ok(Ok(()))
    }

    /// Records that the melt was paid: caches the credential. The melt row stays until the
    /// request's answer is recorded by [`Store::finish_melt`].
    pub fn melt_paid(&self, row: &MeltRow, preimage_hex: &str) -> Result<(), WalletError> {
        self.cache_credential(&CachedCredential {
            origin: row.origin.clone(),
            scope: row.scope.clone(),
            macaroon: row.macaroon.clone(),
            preimage: preimage_hex.to_string(),
        })
    }

    /// Takes a melt out of the outbox and writes its outcome, once.
    pub fn finish_melt(
        &self,
        id: &str,
        resolution: &Resolution,
    ) -> Result<Option<LedgerEntry>, WalletError> {
        self.finish_from(Outbox::Melts, id, resolution)
    }

    pub fn melt_outbox(&self) -> Result<Vec<MeltRow>, WalletError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, mint, operation_id, quote_id, macaroon, origin, scope FROM melt_outbox ORDER BY updated",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(MeltRow {
                id: r.get(0)?,
                mint: r.get(1)?,
                operation_id: r.get(2)?,
                quote_id: r.get(3)?,
                macaroon: r.get(4)?,
                origin: r.get(5)?,
                scope: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn cache_credential(&self, c: &CachedCredential) -> Result<(), WalletError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO l402_credentials (origin, scope, macaroon, preimage, time) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (origin, scope) DO UPDATE SET macaroon = excluded.macaroon,
                 preimage = excluded.preimage, time = excluded.time",
            params![c.origin, c.scope, c.macaroon, c.preimage, now_unix() as i64],
        )?;
        Ok(())
    }

    /// The cached credential with the longest scope covering `path` at `origin`.
    pub fn cached_credential(
        &self,
        origin: &str,
        path: &str,
    ) -> Result<Option<CachedCredential>, WalletError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT origin, scope, macaroon, preimage FROM l402_credentials
                 WHERE origin = ?1 AND substr(?2, 1, length(scope)) = scope
                 ORDER BY length(scope) DESC LIMIT 1",
                params![origin, path],
                |r| {
                    Ok(CachedCredential {
                        origin: r.get(0)?,
                        scope: r.get(1)?,
                        macaroon: r.get(2)?,
                        preimage: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Drops a cached credential (the server refused it).
    pub fn drop_credential(&self, origin: &str, scope: &str) -> Result<(), WalletError> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM l402_credentials WHERE origin = ?1 AND scope = ?2",
            params![origin, scope],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(scope: &str, mac: &str) -> CachedCredential {
        CachedCredential {
            origin: "http://api.example:80".into(),
            scope: scope.into(),
            macaroon: mac.into(),
            preimage: String::new(),
        }
    }

    #[test]
    fn scope_is_the_directory_of_the_path() {
        assert_eq!(scope_of("/api/weather"), "/api/");
        assert_eq!(scope_of("/weather"), "/");
        assert_eq!(scope_of("/api/"), "/api/");
        assert_eq!(scope_of(""), "/");
    }

    #[test]
    fn the_longest_covering_scope_is_used_and_dropping_it_falls_back() {
        let store = Store::open_in_memory().unwrap();
        let origin = "http://api.example:80";
        store.cache_credential(&cred("/", "root")).unwrap();
        store.cache_credential(&cred("/api/", "api")).unwrap();
        let got = |path: &str| {
            store
                .cached_credential(origin, path)
                .unwrap()
                .map(|c| c.macaroon)
        };
        assert_eq!(got("/api/x").as_deref(), Some("api"));
        assert_eq!(got("/other").as_deref(), Some("root"));
        assert_eq!(
            store
                .cached_credential("https://api.example:443", "/api/x")
                .unwrap(),
            None,
            "another origin"
        );
        // Buying again replaces the entry.
        store.cache_credential(&cred("/api/", "api2")).unwrap();
        assert_eq!(got("/api/x").as_deref(), Some("api2"));
        store.drop_credential(origin, "/api/").unwrap();
        assert_eq!(got("/api/x").as_deref(), Some("root"));
    }
}
