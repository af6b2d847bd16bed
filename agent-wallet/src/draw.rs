//! Drawing from the connected allowance ([`AgentWallet::draw`]), crash-safe.
//!
//! A draw is a NUT-04 mint quote of the custom method `allowance`, locked (NUT-20) to the agent
//! key and signed as `cashu_402::allowance` describes; the mint debits the allowance and
//! answers with a paid quote, which the wallet mints with the same key.
//!
//! The mint debits before the wallet holds anything, so the signed request is written to
//! `draws/<nonce>.json` in the data dir first and removed only once the ecash is in the wallet
//! (or the mint refused). The mint answers the same signed request again with the same quote
//! and debits nothing, so recovery ([`AgentWallet::recover`]) sends every request it finds
//! there again and mints what it gets: a crash at any point loses no draw.

use std::path::{Path, PathBuf};

use cashu_402::allowance::{DrawAuth, METHOD};
use cdk::amount::SplitTarget;
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, PaymentMethod, SecretKey};
use cdk::wallet::MintQuote;
use cdk::Amount;
use serde::{Deserialize, Serialize};

use crate::allowance::{mint_host, write_private, MintAnswer};
use crate::error::WalletError;
use crate::ledger::{LedgerEntry, Outcome, METHOD_DRAW, SCHEME_ALLOWANCE};
use crate::oplock;
use crate::store::now_unix;
use crate::wallet::{new_id, AgentWallet};

/// Signed draw requests whose ecash is not in the wallet yet.
pub const PENDING_DRAWS_DIR: &str = "draws";

/// A draw request as written before it is sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingDraw {
    mint: String,
    allowance: String,
    nonce: String,
    amount: u64,
    /// The request body, signature included: sent again as it is.
    body: serde_json::Value,
}

/// The fields of the mint's draw answer the wallet needs.
#[derive(Deserialize)]
struct DrawQuote {
    quote: String,
    request: String,
    expiry: Option<u64>,
}

impl AgentWallet {
    /// Draws `amount` sat from the connected allowance into the wallet.
    pub async fn draw(&self, amount: u64) -> Result<u64, WalletError> {
        let (mint, id, key) = self.stored_allowance()?.ok_or(WalletError::NoAllowance)?;
        if amount == 0 {
            return Err(WalletError::Invalid("amount must be at least 1".into()));
        }
        let nonce = new_id();
        let unit = CurrencyUnit::Sat.to_string();
        let auth = DrawAuth::sign(&key, &id, amount, &unit, nonce.clone(), now_unix())
            .map_err(|e| WalletError::Invalid(e.to_string()))?;
        let mut body =
            serde_json::to_value(&auth).map_err(|e| WalletError::Invalid(e.to_string()))?;
        if let Some(map) = body.as_object_mut() {
            map.insert("amount".into(), amount.into());
            map.insert("unit".into(), unit.into());
            map.insert("pubkey".into(), key.public_key().to_hex().into());
        }
        let pending = PendingDraw {
            mint: mint.to_string(),
            allowance: id,
            nonce,
            amount,
            body,
        };
        let _op = oplock::shared(&self.data_dir).await?;
        let path = self.pending_draw_path(&pending.nonce);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| WalletError::io(dir, e))?;
        }
        let text =
            serde_json::to_string(&pending).map_err(|e| WalletError::Invalid(e.to_string()))?;
        write_private(&path, &text)?;
        Box::pin(self.finish_draw(&path, &pending, &mint, &key)).await
    }

    /// Sends `pending` (again), mints its quote, writes the ledger row and forgets it. Keeps
    /// it when the mint's answer is unknown (no answer, or busy).
    async fn finish_draw(
        &self,
        path: &Path,
        pending: &PendingDraw,
        mint: &MintUrl,
        key: &SecretKey,
    ) -> Result<u64, WalletError> {
        let url = format!(
            "{}/v1/mint/quote/{METHOD}",
            mint.to_string().trim_end_matches('/')
        );
        let bytes = match self.post_to_mint(&url, &pending.body).await? {
            MintAnswer::Ok(bytes) => bytes,
            MintAnswer::Refused { status, error } => {
                // A refusal is final; a server error or a busy allowance may have debited or not.
                if status.is_client_error() {
                    forget(path)?;
                }
                return Err(WalletError::DrawRefused {
                    code: error.code,
                    detail: error.detail,
                });
            }
        };
        let quote: DrawQuote = serde_json::from_slice(&bytes)
            .map_err(|e| WalletError::Invalid(format!("the mint's draw answer: {e}")))?;

        let wallet = self.wallet_for(mint)?;
        if wallet
            .localstore
            .get_mint_quote(&quote.quote)
            .await?
            .is_none()
        {
            let q = MintQuote::new(
                quote.quote.clone(),
                mint.clone(),
                PaymentMethod::Custom(METHOD.into()),
                Some(Amount::from(pending.amount)),
                CurrencyUnit::Sat,
                quote.request,
                quote.expiry.unwrap_or(0),
                Some(key.clone()),
            );
            wallet.localstore.add_mint_quote(q).await?;
        }
        let got = match wallet
            .mint(&quote.quote, SplitTarget::default(), None)
            .await
        {
            Ok(proofs) => proofs.iter().map(|p| u64::from(p.amount)).sum(),
            // Minted before a crash: cdk's issue saga recovery put the proofs in the wallet.
            Err(cdk::Error::IssuedQuote) => pending.amount,
            Err(e) => return Err(e.into()),
        };
        let ledger_id = format!("draw-{}", pending.nonce);
        if self.store.ledger_entry(&ledger_id)?.is_none() {
            self.store.record(&LedgerEntry {
                id: ledger_id,
                time: now_unix(),
                host: mint_host(mint),
                path: format!("/v1/mint/quote/{METHOD}"),
                method: METHOD_DRAW.into(),
                amount: got,
                fee: 0,
                unit: CurrencyUnit::Sat.to_string(),
                scheme: SCHEME_ALLOWANCE.into(),
                mint: mint.to_string(),
                outcome: Outcome::Drawn,
                counted: false,
                status: Some(200),
                detail: format!("drew {got} sat from allowance {}", pending.allowance),
            })?;
        }
        forget(path)?;
        tracing::info!(amount = got, allowance = %pending.allowance, "drew from the allowance");
        Ok(got)
    }

    fn pending_draw_path(&self, nonce: &str) -> PathBuf {
        self.data_dir
            .join(PENDING_DRAWS_DIR)
            .join(format!("{nonce}.json"))
    }

    /// Whether a crash left draws whose ecash is not in the wallet.
    pub(crate) fn has_pending_draws(&self) -> Result<bool, WalletError> {
        Ok(!self.pending_draw_files()?.is_empty())
    }

    fn pending_draw_files(&self) -> Result<Vec<PathBuf>, WalletError> {
        let dir = self.data_dir.join(PENDING_DRAWS_DIR);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(WalletError::io(&dir, e)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| WalletError::io(&dir, e))?.path();
            if path.extension().is_some_and(|x| x == "json") {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    /// Finishes the draws a crash interrupted (recovery calls it with the exclusive lock held,
    /// so none of them is still running). Returns what they added; a draw whose mint does not
    /// answer stays for the next recovery.
    pub(crate) async fn resume_draws(&self) -> Result<u64, WalletError> {
        let Some((mint, _, key)) = self.stored_allowance()? else {
            return Ok(0);
        };
        let mut added = 0;
        for path in self.pending_draw_files()? {
            let text = std::fs::read_to_string(&path).map_err(|e| WalletError::io(&path, e))?;
            let Ok(pending) = serde_json::from_str::<PendingDraw>(&text) else {
                tracing::warn!(path = %path.display(), "unreadable pending draw left as it is");
                continue;
            };
            if pending.mint != mint.to_string() {
                tracing::warn!(path = %path.display(), "pending draw from another allowance's mint");
                continue;
            }
            match tokio::time::timeout(
                self.recovery_timeout,
                self.finish_draw(&path, &pending, &mint, &key),
            )
            .await
            {
                Ok(Ok(got)) => {
                    tracing::info!(amount = got, "finished a draw a crash interrupted");
                    added += got;
                }
                Ok(Err(e)) => tracing::warn!("a draw a crash interrupted is still open: {e}"),
                Err(_) => tracing::warn!("a draw a crash interrupted timed out; kept for later"),
            }
        }
        Ok(added)
    }
}

fn forget(path: &Path) -> Result<(), WalletError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WalletError::io(path, e)),
    }
}
