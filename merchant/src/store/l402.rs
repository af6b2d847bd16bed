//! The L402 quotes the merchant issued: one row per challenge, keyed by the invoice's payment
//! hash, so that a paid quote is claimed (minted into the merchant's wallet) exactly once.
//!
//! States: `issued` (challenge sent) → `claimed` (ecash minted). Claiming is an atomic
//! `issued → claimed` transition taken after the mint issued the ecash; a crash between the two
//! leaves `issued`, and the next claim finds the mint's quote already issued and completes the
//! transition (cdk's mint saga recovery holds the ecash). Unclaimed rows are deleted once their
//! macaroon has expired.

use rusqlite::{params, OptionalExtension};

use super::{now, Store, StoreError};

/// One issued L402 challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L402Quote {
    /// Hex payment hash of the invoice.
    pub payment_hash: String,
    pub quote_id: String,
    pub mint_url: String,
    pub unit: String,
    pub amount: u64,
    pub claimed: bool,
    pub expires_at: i64,
}

impl Store {
    /// Records an issued challenge, and forgets unclaimed ones whose macaroon has expired.
    pub async fn insert_l402_quote(&self, q: L402Quote) -> Result<(), StoreError> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let t = now();
            tx.execute(
                "DELETE FROM l402_quotes WHERE state = 'issued' AND expires_at < ?1",
                params![t],
            )?;
            tx.execute(
                "INSERT INTO l402_quotes (payment_hash, quote_id, mint_url, unit, amount, state, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'issued', ?6, ?7)",
                params![
                    q.payment_hash,
                    q.quote_id,
                    q.mint_url,
                    q.unit,
                    i64::try_from(q.amount).unwrap_or(i64::MAX),
                    t,
                    q.expires_at
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub async fn l402_quote(&self, payment_hash: String) -> Result<Option<L402Quote>, StoreError> {
        self.with(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT payment_hash, quote_id, mint_url, unit, amount, state, expires_at
                     FROM l402_quotes WHERE payment_hash = ?1",
                    params![payment_hash],
                    |r| {
                        Ok(L402Quote {
                            payment_hash: r.get(0)?,
                            quote_id: r.get(1)?,
                            mint_url: r.get(2)?,
                            unit: r.get(3)?,
                            amount: r.get::<_, i64>(4)?.max(0) as u64,
                            claimed: r.get::<_, String>(5)? == "claimed",
                            expires_at: r.get(6)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// `issued → claimed`; false if it was already claimed.
    pub async fn mark_l402_claimed(&self, payment_hash: String) -> Result<bool, StoreError> {
        self.with(move |conn| {
            let n = conn.execute(
                "UPDATE l402_quotes SET state = 'claimed', claimed_at = ?2
                 WHERE payment_hash = ?1 AND state = 'issued'",
                params![payment_hash, now()],
            )?;
            Ok(n == 1)
        })
        .await
    }
}
