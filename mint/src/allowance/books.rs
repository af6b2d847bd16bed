//! The mint's books: what it owes against what went through its Lightning node.
//!
//! ```text
//!   ecash outstanding + allowance balances + paid-unminted quotes
//!     = sats received − sats paid out − fees
//! ```
//!
//! - *ecash outstanding*: ecash issued minus ecash redeemed, over every keyset;
//! - *allowance balances*: what metered allowances hold, including withdrawals in flight and
//!   draws debited whose quote is not paid yet;
//! - *paid-unminted quotes*: mint quotes paid but not yet minted (a bolt11 invoice paid before
//!   its wallet minted, a draw quote not yet minted); funding invoices credited to an allowance
//!   are counted in its balance instead;
//! - *received*: paid bolt11 mint quotes (every sat that came in over Lightning);
//! - *paid out*: amounts of paid melts and allowance withdrawals;
//! - *fees*: Lightning fees of those payments (for melts: inputs - change - input fee -
//!   amount), plus input fees (NUT-02) the mint kept.
//!
//! With no operation in flight both sides are equal; [`Books::imbalance`] says by how much
//! they are not.

use std::collections::HashSet;

use cdk::nuts::{MeltQuoteState, PaymentMethod};
use cdk_common::mint::OperationKind;
use serde::Serialize;

use super::error::AllowanceError;
use super::service::Allowances;

/// Both sides of the books, in sat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Books {
    pub ecash_outstanding: u64,
    pub allowance_balances: u64,
    pub unminted_quotes: u64,
    pub received: u64,
    pub paid_out: u64,
    pub lightning_fees: u64,
    pub input_fees: u64,
}

impl Books {
    pub fn liabilities(&self) -> i128 {
        i128::from(self.ecash_outstanding)
            + i128::from(self.allowance_balances)
            + i128::from(self.unminted_quotes)
    }

    pub fn assets(&self) -> i128 {
        i128::from(self.received)
            - i128::from(self.paid_out)
            - i128::from(self.lightning_fees)
            - i128::from(self.input_fees)
    }

    /// Assets minus liabilities: zero when the books balance.
    pub fn imbalance(&self) -> i128 {
        self.assets() - self.liabilities()
    }
}

impl Allowances {
    /// Reads the books from the mint's database (a full scan: for metrics and audits).
    pub async fn books(&self) -> Result<Books, AllowanceError> {
        let mut books = Books::default();
        let issued: u64 = sum(self.mint.total_issued().await?.into_values().map(u64::from));
        let redeemed: u64 = sum(self
            .mint
            .total_redeemed()
            .await?
            .into_values()
            .map(u64::from));
        books.ecash_outstanding = issued.saturating_sub(redeemed);

        let db = self.mint.localstore();
        let quotes = db.get_mint_quotes().await?;
        // Draw quotes already paid (counted below as paid-unminted), by their draw key.
        let paid_draws: HashSet<String> = quotes
            .iter()
            .filter(|q| q.payment_method != PaymentMethod::BOLT11 && q.amount_paid().value() > 0)
            .map(|q| q.request_lookup_id.to_string())
            .collect();
        let mut credited = HashSet::new();
        for account in self.registry.list().await? {
            let Some(m) = account.metered else { continue };
            books.allowance_balances += m.balance.saturating_add(m.reserved());
            // A draw debited whose quote is not paid yet (or was never made: the process died
            // in between, and the sweeper gives it back later) is still owed to the allowance.
            books.allowance_balances += m
                .pending_draws
                .iter()
                .filter(|d| !paid_draws.contains(&d.key))
                .map(|d| d.amount)
                .fold(0u64, u64::saturating_add);
            books.paid_out += m.totals.withdrawn;
            books.lightning_fees += m.totals.fees;
            credited.extend(
                m.fundings
                    .into_iter()
                    .filter(|f| f.credited)
                    .map(|f| f.quote_id),
            );
        }

        for q in quotes {
            let paid = q.amount_paid().value();
            let issued = q.amount_issued().value();
            if q.payment_method == PaymentMethod::BOLT11 {
                books.received += paid;
            }
            if !credited.contains(&q.id.to_string()) {
                books.unminted_quotes += paid.saturating_sub(issued);
            }
        }
        // A completed melt burnt its inputs and gave back change: what left over Lightning
        // (amount and fee together) is inputs - change - input fee. The amounts are the paid
        // melt quotes'; the rest is the Lightning fee.
        let mut melted = 0u64;
        for op in db.get_completed_operations().await? {
            books.input_fees += u64::from(op.fee_collected());
            if op.kind() == OperationKind::Melt {
                melted += u64::from(op.total_redeemed())
                    .saturating_sub(u64::from(op.total_issued()))
                    .saturating_sub(u64::from(op.fee_collected()));
            }
        }
        let mut melt_amounts = 0u64;
        for q in db.get_melt_quotes().await? {
            if q.state == MeltQuoteState::Paid {
                melt_amounts += q.amount().value();
            }
        }
        books.paid_out += melt_amounts;
        books.lightning_fees += melted.saturating_sub(melt_amounts);
        Ok(books)
    }
}

fn sum(it: impl Iterator<Item = u64>) -> u64 {
    it.fold(0u64, u64::saturating_add)
}
