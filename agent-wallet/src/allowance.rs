//! A metered allowance at a mint: the credential the human handed over
//! ([`AgentWallet::connect_allowance`]), its status at the mint, and topping the wallet up
//! from it before a payment. Draws themselves are in `draw.rs`.
//!
//! A draw is a NUT-04 mint quote of the custom method `allowance` locked (NUT-20) to the agent
//! key and signed as `cashu_402::allowance` describes; the mint checks the human's bounds and
//! answers with a paid quote, which the wallet mints with the same key. Each draw is a ledger
//! row (`DRAW`, outcome `drawn`), which counts against none of the spending caps.
//!
//! The credential lives in `allowance.json` in the data dir (mode 0600). Its key may come with
//! the credential, or from `agent-wallet allowance keygen` (the human then registers the public
//! key with the mint and the credential carries none).

use std::path::Path;
use std::str::FromStr;

use cashu_402::allowance::Credential;
use cashu_402::allowance_status::{AgentStatus, StatusRequest, STATUS_PATH};
use cashu_402::error_body::ErrorBody;
use cdk::mint_url::MintUrl;
use cdk::nuts::SecretKey;
use serde::{Deserialize, Serialize};

use crate::error::WalletError;
use crate::store::now_unix;
use crate::wallet::AgentWallet;

/// What the mint answered a POST to its allowance routes.
pub(crate) enum MintAnswer {
    Ok(Vec<u8>),
    Refused {
        status: reqwest::StatusCode,
        error: ErrorBody,
    },
}

/// The connected allowance, in the data dir.
pub const ALLOWANCE_FILE: &str = "allowance.json";
/// A key made by `allowance keygen`, waiting for a credential without one.
pub const AGENT_KEY_FILE: &str = "allowance.key";

#[derive(Serialize, Deserialize)]
struct Stored {
    mint: String,
    allowance: String,
    secret_key: String,
}

/// The connected allowance, without its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowanceInfo {
    pub mint: String,
    pub allowance: String,
    pub agent_pubkey: String,
}

impl AgentWallet {
    /// Stores the credential (and registers its mint). A credential without a key uses the key
    /// made earlier by [`AgentWallet::allowance_keygen`].
    pub async fn connect_allowance(&self, credential: &str) -> Result<AllowanceInfo, WalletError> {
        let c =
            Credential::from_str(credential).map_err(|e| WalletError::Invalid(e.to_string()))?;
        let key = match c.secret_key {
            Some(k) => k,
            None => read_key(&self.data_dir.join(AGENT_KEY_FILE))?.ok_or_else(|| {
                WalletError::Invalid(
                    "the credential carries no key and this wallet has none: run \
                     `agent-wallet allowance keygen` and register its public key"
                        .into(),
                )
            })?,
        };
        self.add_mint(&c.mint).await?;
        let stored = Stored {
            mint: c.mint.to_string(),
            allowance: c.allowance.clone(),
            secret_key: key.to_secret_hex(),
        };
        let text = serde_json::to_string_pretty(&stored)
            .map_err(|e| WalletError::Invalid(e.to_string()))?;
        write_private(&self.data_dir.join(ALLOWANCE_FILE), &text)?;
        Ok(AllowanceInfo {
            mint: stored.mint,
            allowance: c.allowance,
            agent_pubkey: key.public_key().to_hex(),
        })
    }

    /// Makes (once) the agent's own key and returns its public key, for a human who creates the
    /// allowance with `--agent-pubkey`.
    pub fn allowance_keygen(&self) -> Result<String, WalletError> {
        let path = self.data_dir.join(AGENT_KEY_FILE);
        if let Some(k) = read_key(&path)? {
            return Ok(k.public_key().to_hex());
        }
        let key = SecretKey::generate();
        write_private(&path, &key.to_secret_hex())?;
        Ok(key.public_key().to_hex())
    }

    /// The connected allowance, if any.
    pub fn allowance(&self) -> Result<Option<AllowanceInfo>, WalletError> {
        Ok(self
            .stored_allowance()?
            .map(|(mint, id, key)| AllowanceInfo {
                mint: mint.to_string(),
                allowance: id,
                agent_pubkey: key.public_key().to_hex(),
            }))
    }

    pub(crate) fn stored_allowance(
        &self,
    ) -> Result<Option<(MintUrl, String, SecretKey)>, WalletError> {
        let path = self.data_dir.join(ALLOWANCE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(WalletError::io(&path, e)),
        };
        let bad = |what: &str| WalletError::Config {
            detail: format!("{}: bad {what}", path.display()),
        };
        let s: Stored = serde_json::from_str(&text).map_err(|_| bad("JSON"))?;
        let mint = MintUrl::from_str(&s.mint).map_err(|_| bad("mint"))?;
        let key = SecretKey::from_hex(&s.secret_key).map_err(|_| bad("key"))?;
        Ok(Some((mint, s.allowance, key)))
    }

    /// The mint of the connected allowance.
    pub fn allowance_mint(&self) -> Option<MintUrl> {
        self.stored_allowance().ok().flatten().map(|(m, _, _)| m)
    }

    /// What the connected allowance still lets this wallet draw, as the mint says (a request
    /// signed with the agent key).
    pub async fn allowance_status(&self) -> Result<AgentStatus, WalletError> {
        let (mint, id, key) = self.stored_allowance()?.ok_or(WalletError::NoAllowance)?;
        let request = StatusRequest::sign(&key, &id, now_unix())
            .map_err(|e| WalletError::Invalid(e.to_string()))?;
        let url = format!("{}{STATUS_PATH}", mint.to_string().trim_end_matches('/'));
        match self.post_to_mint(&url, &request).await? {
            MintAnswer::Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| WalletError::Invalid(format!("the mint's status answer: {e}"))),
            MintAnswer::Refused { error, .. } => Err(WalletError::StatusRefused {
                code: error.code,
                detail: error.detail,
            }),
        }
    }

    /// POSTs `body` as JSON to the mint's allowance routes and reads the answer: the body of a
    /// success, or the status and Cashu error body of a refusal.
    pub(crate) async fn post_to_mint(
        &self,
        url: &str,
        body: &impl Serialize,
    ) -> Result<MintAnswer, WalletError> {
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(WalletError::Http)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(WalletError::Http)?;
        if status.is_success() {
            return Ok(MintAnswer::Ok(bytes.to_vec()));
        }
        let error = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| ErrorBody::new(0, format!("HTTP {status}")));
        Ok(MintAnswer::Refused { status, error })
    }

    /// Before a payment of `needed` sat at `mint`: if the wallet holds less there and the
    /// allowance is at that mint, draws the shortfall plus the float (or just the shortfall if
    /// the allowance's per-draw cap refuses more). Returns what was drawn.
    pub(crate) async fn top_up_for(&self, mint: &MintUrl, needed: u64) -> Result<u64, WalletError> {
        if self.allowance_mint().as_ref() != Some(mint) {
            return Ok(0);
        }
        let have = self.balance_at(mint).await?;
        // A little slack for the mint's input fee on the token made for the payee.
        let needed = needed.saturating_add(needed / 100 + 2);
        if have >= needed {
            return Ok(0);
        }
        let shortfall = needed - have;
        // Boxed: a draw's future (HTTP, cdk's mint) is deep, and payments nest this one.
        match Box::pin(self.draw(shortfall.saturating_add(self.allowance_float))).await {
            Ok(got) => Ok(got),
            Err(WalletError::DrawRefused { code, .. })
                if code == cashu_402::error_body::codes::ALLOWANCE_PER_DRAW
                    || code == cashu_402::error_body::codes::ALLOWANCE_PER_DAY
                    || code == cashu_402::error_body::codes::ALLOWANCE_BALANCE =>
            {
                Box::pin(self.draw(shortfall)).await
            }
            Err(e) => Err(e),
        }
    }
}

pub(crate) fn mint_host(mint: &MintUrl) -> String {
    url::Url::parse(&mint.to_string())
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_default()
}

fn read_key(path: &Path) -> Result<Option<SecretKey>, WalletError> {
    match std::fs::read_to_string(path) {
        Ok(t) => SecretKey::from_hex(t.trim())
            .map(Some)
            .map_err(|_| WalletError::Config {
                detail: format!("{}: not a key", path.display()),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(WalletError::io(path, e)),
    }
}

pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), WalletError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp).map_err(|e| WalletError::io(&tmp, e))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| WalletError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| WalletError::io(path, e))
}
