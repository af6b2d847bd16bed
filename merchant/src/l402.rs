//! L402 without a Lightning node: the invoice in the challenge is a NUT-04 mint quote at the
//! merchant's (first accepted) mint, locked with NUT-20 to a key derived from the merchant's
//! seed (cdk's wallet does so for every quote), so only the merchant can claim what is paid.
//!
//! Challenge: `WWW-Authenticate: L402 version="0", token="<macaroon>", invoice="<bolt11>"`, the
//! macaroon (v2 binary, `cashu_402::macaroon`) signed with the merchant's root key
//! (`l402-root.key` in the data dir, 32 random bytes, mode 0600; deleting it revokes every
//! macaroon) over the identifier `0 ‖ payment_hash ‖ token_id`, with the caveats
//!
//! - `services=<service>:0`
//! - `<service>_valid_until=<unix seconds>` (now + the validity setting, default one hour)
//! - `<service>_path_prefix=<dir>`: the directory of the request path (up to its last `/`)
//! - `<service>_paid=<amount> <unit>`: the price paid; routes costing more are refused.
//!
//! Credential `Authorization: L402 <macaroon>:<hex preimage>` is accepted when the HMAC chain
//! verifies, every caveat holds (unknown caveats fail closed), `sha256(preimage)` is the
//! payment hash, and the merchant's quote for that hash is paid at the mint; the first time,
//! the quote is claimed by minting its ecash into the merchant's wallet, exactly once. Within
//! its validity the credential is reused freely: that is L402's model (a pass, not a ticket).
//!
//! Same mint (our extension): a payer whose mint settled the invoice internally has no
//! preimage and sends `L402 <macaroon>:`. It is accepted only when the macaroon is authentic and
//! the merchant's own quote is paid or claimed at the mint, which proves the payment more
//! strongly than a preimage. The macaroon is then the only secret: whoever holds it (it is
//! sent only to the client that asked, with `Cache-Control: no-store`) can use the pass, just as
//! whoever holds macaroon and preimage can.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use cashu_402::l402::{decode_invoice, L402Challenge, L402Credential, Preimage};
use cashu_402::macaroon::{Identifier, Macaroon};
use cdk::amount::SplitTarget;
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, MintQuoteState, PaymentMethod, SecretKey};
use cdk::Amount;
use tokio::sync::Mutex;

use crate::error::PaywallError;
use crate::merchant::Merchant;
use crate::paywall::{Offer, Paid};
use crate::store::l402::L402Quote;

/// The root key file inside the merchant's data dir.
pub const ROOT_KEY_FILE: &str = "l402-root.key";

/// L402 settings of a paywall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L402Options {
    /// The service name in the macaroon's caveats.
    pub service: String,
    /// How long a paid credential may be reused.
    pub validity: Duration,
}

impl Default for L402Options {
    fn default() -> Self {
        Self {
            service: "paywall".into(),
            validity: Duration::from_secs(3600),
        }
    }
}

/// Per-paywall L402 state: the root key (loaded once) and the lock that makes claims serial.
#[derive(Default)]
pub(crate) struct L402State {
    root: OnceLock<[u8; 32]>,
    claims: Mutex<()>,
}

fn internal(detail: impl std::fmt::Display) -> PaywallError {
    PaywallError::Internal {
        detail: detail.to_string(),
    }
}

fn invalid(reason: impl Into<String>) -> PaywallError {
    PaywallError::L402Invalid(reason.into())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The directory of a request path: the scope a credential covers.
pub fn path_scope(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    }
}

/// Reads the root key, or creates it (mode 0600, never overwriting another process's).
pub fn load_or_create_root_key(dir: &Path) -> std::io::Result<[u8; 32]> {
    let path = dir.join(ROOT_KEY_FILE);
    let parse = |text: &str| cashu_402::l402::parse_hex32(text.trim());
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return parse(&text).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not 64 hex digits", path.display()),
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let key = SecretKey::generate().to_secret_bytes();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut f) => {
            f.write_all(hex(&key).as_bytes())?;
            f.sync_all()?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path)?;
            parse(&text).ok_or_else(|| std::io::Error::other("root key file is being written"))
        }
        Err(e) => Err(e),
    }
}

impl L402State {
    fn root(&self, merchant: &Merchant) -> Result<[u8; 32], PaywallError> {
        if let Some(k) = self.root.get() {
            return Ok(*k);
        }
        let key = load_or_create_root_key(merchant.data_dir())
            .map_err(|e| internal(format!("L402 root key: {e}")))?;
        Ok(*self.root.get_or_init(|| key))
    }

    /// Issues a challenge for `offer` at `path`: a mint quote for the price and a macaroon
    /// bound to its payment hash.
    pub(crate) async fn issue(
        &self,
        merchant: &Merchant,
        options: &L402Options,
        offer: &Offer,
        path: &str,
    ) -> Result<L402Challenge, PaywallError> {
        let root = self.root(merchant)?;
        let mint = offer
            .mints
            .first()
            .ok_or_else(|| internal("the offer names no mint"))?;
        let wallet = merchant
            .wallet(mint, &offer.price.unit)
            .await
            .map_err(internal)?;
        let service = &options.service;
        let quote = wallet
            .mint_quote(
                PaymentMethod::BOLT11,
                Some(offer.price.amount),
                Some(format!("L402 {service}")),
                None,
            )
            .await
            .map_err(|e| PaywallError::MintUnavailable {
                detail: format!("L402 mint quote: {e}"),
            })?;
        let info = decode_invoice(&quote.request).map_err(internal)?;
        let token_id = SecretKey::generate().to_secret_bytes();
        let identifier = Identifier::new(info.payment_hash, token_id);
        let valid_until = now().saturating_add(options.validity.as_secs());
        let mut mac = Macaroon::new(&root, identifier.encode(), service.clone());
        mac.add_caveat(format!("services={service}:0"));
        mac.add_caveat(format!("{service}_valid_until={valid_until}"));
        mac.add_caveat(format!("{service}_path_prefix={}", path_scope(path)));
        mac.add_caveat(format!(
            "{service}_paid={} {}",
            offer.price.amount, offer.price.unit
        ));
        merchant
            .store()
            .insert_l402_quote(L402Quote {
                payment_hash: hex(&info.payment_hash),
                quote_id: quote.id.clone(),
                mint_url: mint.to_string(),
                unit: offer.price.unit.to_string(),
                amount: u64::from(offer.price.amount),
                claimed: false,
                expires_at: i64::try_from(valid_until).unwrap_or(i64::MAX),
            })
            .await
            .map_err(internal)?;
        Ok(L402Challenge::new(mac.to_base64(), quote.request))
    }

    /// Checks an `Authorization: L402` credential for `offer` at `path`, claiming the paid
    /// quote the first time.
    pub(crate) async fn authorize(
        &self,
        merchant: &Merchant,
        options: &L402Options,
        offer: &Offer,
        path: &str,
        header: &str,
    ) -> Result<Paid, PaywallError> {
        let root = self.root(merchant)?;
        let cred = L402Credential::parse(header).map_err(|e| invalid(e.to_string()))?;
        let [macaroon] = cred.macaroons.as_slice() else {
            return Err(invalid("exactly one macaroon is expected"));
        };
        let mac = Macaroon::from_base64(macaroon).map_err(|e| invalid(e.to_string()))?;
        if !mac.verify_signature(&root) {
            return Err(invalid("the macaroon was not issued here"));
        }
        let id = mac.l402_identifier().map_err(|e| invalid(e.to_string()))?;
        check_caveats(&mac, options, offer, path, now())?;
        if let Preimage::Known(_) = cred.preimage {
            if !cred.preimage.matches(&id.payment_hash) {
                return Err(invalid("the preimage does not match the invoice"));
            }
        }
        let hash = hex(&id.payment_hash);
        let quote = merchant
            .store()
            .l402_quote(hash.clone())
            .await
            .map_err(internal)?
            .ok_or_else(|| invalid("no such L402 payment here (expired or unknown)"))?;
        if !quote.claimed {
            self.claim(merchant, &quote, &cred.preimage).await?;
        }
        let mint_url: MintUrl = quote.mint_url.parse().map_err(internal)?;
        let unit: CurrencyUnit = quote.unit.parse().map_err(internal)?;
        Ok(Paid {
            mint_url,
            unit,
            value: Amount::from(quote.amount),
            received: Amount::from(quote.amount),
            token_key: format!("l402:{hash}"),
        })
    }

    /// Mints a paid quote's ecash into the merchant's wallet, once.
    async fn claim(
        &self,
        merchant: &Merchant,
        quote: &L402Quote,
        preimage: &Preimage,
    ) -> Result<(), PaywallError> {
        let _serial = self.claims.lock().await;
        let store = merchant.store();
        if let Some(q) = store
            .l402_quote(quote.payment_hash.clone())
            .await
            .map_err(internal)?
        {
            if q.claimed {
                return Ok(());
            }
        }
        let mint: MintUrl = quote.mint_url.parse().map_err(internal)?;
        let unit: CurrencyUnit = quote.unit.parse().map_err(internal)?;
        let wallet = merchant.wallet(&mint, &unit).await.map_err(internal)?;
        let unavailable = |e: cdk::Error| PaywallError::MintUnavailable {
            detail: format!("L402 quote {}: {e}", quote.payment_hash),
        };
        let state = wallet
            .check_mint_quote_status(&quote.quote_id)
            .await
            .map_err(unavailable)?
            .state;
        match state {
            MintQuoteState::Paid => {
                match wallet
                    .mint(&quote.quote_id, SplitTarget::default(), None)
                    .await
                {
                    Ok(proofs) => {
                        tracing::info!(
                            payment_hash = %quote.payment_hash,
                            amount = proofs.iter().map(|p| u64::from(p.amount)).sum::<u64>(),
                            "claimed a paid L402 quote"
                        );
                    }
                    Err(e) => {
                        // Issued by an earlier attempt that crashed: cdk's saga holds the ecash.
                        let now = wallet
                            .check_mint_quote_status(&quote.quote_id)
                            .await
                            .map_err(unavailable)?;
                        if now.state != MintQuoteState::Issued {
                            return Err(unavailable(e));
                        }
                    }
                }
            }
            MintQuoteState::Issued => {}
            MintQuoteState::Unpaid => {
                return Err(match preimage {
                    // A matching preimage means the invoice was paid; the mint has not seen it
                    // yet. The client may retry.
                    Preimage::Known(_) => PaywallError::MintUnavailable {
                        detail: "the mint has not seen the L402 payment yet".into(),
                    },
                    Preimage::SettledByMint => PaywallError::L402Unpaid,
                });
            }
        }
        store
            .mark_l402_claimed(quote.payment_hash.clone())
            .await
            .map_err(internal)?;
        merchant.notify_redeemed();
        Ok(())
    }
}

/// Every caveat must hold; unknown ones fail closed. `services`, `_valid_until` and `_paid`
/// must be present.
pub(crate) fn check_caveats(
    mac: &Macaroon,
    options: &L402Options,
    offer: &Offer,
    path: &str,
    now: u64,
) -> Result<(), PaywallError> {
    let service = options.service.as_str();
    let (mut services, mut until, mut paid) = (false, false, false);
    for (name, value) in mac.caveat_pairs() {
        match name.strip_prefix(service).and_then(|s| s.strip_prefix('_')) {
            Some("valid_until") => {
                let t: u64 = value
                    .parse()
                    .map_err(|_| invalid("bad valid_until caveat"))?;
                if t <= now {
                    return Err(invalid("the L402 credential has expired"));
                }
                until = true;
            }
            Some("path_prefix") => {
                if !path.starts_with(value) {
                    return Err(invalid(format!("the L402 credential is for {value}*")));
                }
            }
            Some("paid") => {
                let (amount, unit) = value
                    .split_once(' ')
                    .ok_or_else(|| invalid("bad paid caveat"))?;
                let amount: u64 = amount.parse().map_err(|_| invalid("bad paid caveat"))?;
                if unit != offer.price.unit.to_string() || amount < u64::from(offer.price.amount) {
                    return Err(invalid("the L402 credential paid for a cheaper route"));
                }
                paid = true;
            }
            _ if name == "services" => {
                if !value
                    .split(',')
                    .any(|s| s.split(':').next() == Some(service))
                {
                    return Err(invalid(format!("the L402 credential is not for {service}")));
                }
                services = true;
            }
            _ => return Err(invalid(format!("unknown caveat {name}"))),
        }
    }
    if !(services && until && paid) {
        return Err(invalid("the macaroon lacks a required caveat"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "l402_tests.rs"]
mod tests;
