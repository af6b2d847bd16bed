//! [`Allowances`]: what the admin API, the draw route and the background sweeper call.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cashu_402::allowance::{
    AllowancePolicy, AllowanceView, CreateMetered, CreatePrepaid, Credential,
};
use cdk::cdk_payment::DynMintPayment;
use cdk::mint::MintQuoteRequest;
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, MintQuoteBolt11Request, MintQuoteState, PublicKey, SecretKey};
use cdk::util::unix_time;
use cdk::Mint;
use cdk_common::QuoteId;

use super::error::AllowanceError;
use super::model::{event, Account, Funding, Metered, Prepaid, PrepaidState, Totals};
use super::registry::{Effects, Registry};

/// Largest amount one allowance or top-up may ask for, in sat (21 million BTC is far above).
pub const MAX_AMOUNT: u64 = 2_100_000_000_000_000;
/// Longest memo kept.
pub const MAX_MEMO: usize = 200;

/// The allowance service of one mint process.
#[derive(Clone)]
pub struct Allowances {
    pub(crate) mint: Arc<Mint>,
    pub(crate) registry: Registry,
    /// The Lightning backend, for withdrawals.
    pub(crate) lightning: DynMintPayment,
    pub(crate) mint_url: MintUrl,
    /// The mint's own NUT-20 key: funding and prepaid quotes are locked to it.
    pub(crate) internal_key: SecretKey,
}

impl Allowances {
    pub async fn new(
        mint: Arc<Mint>,
        registry: Registry,
        lightning: DynMintPayment,
        public_url: &str,
    ) -> Result<Self, AllowanceError> {
        let internal_key = SecretKey::from_hex(registry.internal_key().await?)
            .map_err(|e| AllowanceError::Storage(format!("internal key: {e}")))?;
        let mint_url = MintUrl::from_str(public_url)
            .map_err(|e| AllowanceError::Invalid(format!("public_url: {e}")))?;
        Ok(Self {
            mint,
            registry,
            lightning,
            mint_url,
            internal_key,
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A bolt11 mint quote locked to the mint's own key: only the mint can mint it.
    pub(crate) async fn internal_invoice(&self, amount: u64) -> Result<Funding, AllowanceError> {
        let quote = self
            .mint
            .get_mint_quote(MintQuoteRequest::Bolt11(MintQuoteBolt11Request {
                amount: amount.into(),
                unit: CurrencyUnit::Sat,
                description: None,
                pubkey: Some(self.internal_key.public_key()),
            }))
            .await?;
        let cdk::mint::MintQuoteResponse::Bolt11(q) = quote else {
            return Err(AllowanceError::Storage("not a bolt11 quote".into()));
        };
        Ok(Funding {
            quote_id: q.quote.to_string(),
            invoice: q.request,
            amount,
            created: unix_time(),
            expiry: q.expiry.unwrap_or(0),
            credited: false,
        })
    }

    /// Creates a prepaid allowance: an invoice now, a token once it is paid.
    pub async fn create_prepaid(
        &self,
        req: CreatePrepaid,
    ) -> Result<AllowanceView, AllowanceError> {
        check_amount(req.amount)?;
        let memo = clean_memo(req.memo)?;
        let funding = self.internal_invoice(req.amount).await?;
        let now = unix_time();
        let account = Account {
            id: new_id(),
            version: 0,
            created: now,
            memo,
            next_event: 0,
            prepaid: Some(Prepaid {
                amount: req.amount,
                quote_id: funding.quote_id,
                invoice: funding.invoice,
                state: PrepaidState::AwaitingPayment,
                keyset: None,
                ys: vec![],
                delivered_at: None,
            }),
            metered: None,
        };
        let events = vec![event(now, "created", req.amount, 0, "prepaid")];
        let account = self.registry.create(account, events).await?;
        tracing::info!(allowance = %account.id, amount = req.amount, "prepaid allowance created");
        self.view(&account, None).await
    }

    /// Creates a metered allowance with its first funding invoice. The answer carries the agent
    /// credential; it is never shown again.
    pub async fn create_metered(
        &self,
        req: CreateMetered,
    ) -> Result<AllowanceView, AllowanceError> {
        check_amount(req.amount)?;
        let policy = AllowancePolicy {
            max_per_draw: req.max_per_draw,
            max_per_day: req.max_per_day,
            expires_at: req.expires_at,
        };
        policy.validate().map_err(AllowanceError::Invalid)?;
        let now = unix_time();
        if req.expires_at.is_some_and(|e| e <= now) {
            return Err(AllowanceError::Invalid("expires_at is in the past".into()));
        }
        let memo = clean_memo(req.memo)?;
        let (pubkey, secret) = match req.agent_pubkey.as_deref() {
            Some(hex) => {
                let pk = PublicKey::from_hex(hex.trim())
                    .map_err(|e| AllowanceError::Invalid(format!("agent_pubkey: {e}")))?;
                (pk, None)
            }
            None => {
                let sk = SecretKey::generate();
                (sk.public_key(), Some(sk))
            }
        };
        let funding = self.internal_invoice(req.amount).await?;
        let id = new_id();
        let account = Account {
            id: id.clone(),
            version: 0,
            created: now,
            memo,
            next_event: 0,
            prepaid: None,
            metered: Some(Metered {
                policy,
                agent_pubkey: pubkey.to_hex(),
                balance: 0,
                revoked_at: None,
                window: vec![],
                fundings: vec![funding],
                pending_draws: vec![],
                withdrawals: vec![],
                totals: Totals::default(),
            }),
        };
        let events = vec![
            event(now, "created", 0, 0, "metered"),
            event(now, "funding_requested", req.amount, 0, ""),
        ];
        let account = self.registry.create(account, events).await?;
        tracing::info!(allowance = %id, max_per_draw = policy.max_per_draw,
            max_per_day = policy.max_per_day, "metered allowance created");
        let credential = Credential {
            mint: self.mint_url.clone(),
            allowance: id,
            secret_key: secret,
        };
        self.view(&account, Some(credential.to_string())).await
    }

    /// A new funding invoice for a metered allowance.
    pub async fn top_up(&self, id: &str, amount: u64) -> Result<AllowanceView, AllowanceError> {
        check_amount(amount)?;
        let account = self.metered(id).await?;
        if account
            .metered
            .as_ref()
            .is_some_and(|m| m.revoked_at.is_some())
        {
            return Err(AllowanceError::Conflict("the allowance is revoked".into()));
        }
        let funding = self.internal_invoice(amount).await?;
        let (account, ()) = self
            .registry
            .update(id, |a| {
                let m = metered_mut(a)?;
                if m.revoked_at.is_some() {
                    return Err(AllowanceError::Conflict("the allowance is revoked".into()));
                }
                m.fundings.push(funding.clone());
                Ok((
                    (),
                    Effects::event(event(unix_time(), "funding_requested", amount, 0, "")),
                ))
            })
            .await?;
        self.view(&account, None).await
    }

    /// Revokes at once: the next draw is refused. Idempotent.
    pub async fn revoke(&self, id: &str) -> Result<AllowanceView, AllowanceError> {
        self.metered(id).await?;
        let (account, ()) = self
            .registry
            .update(id, |a| {
                let m = metered_mut(a)?;
                if m.revoked_at.is_some() {
                    return Ok(((), Effects::default()));
                }
                let now = unix_time();
                m.revoked_at = Some(now);
                Ok(((), Effects::event(event(now, "revoked", 0, 0, ""))))
            })
            .await?;
        tracing::info!(allowance = %id, "allowance revoked");
        self.view(&account, None).await
    }

    /// One allowance, after crediting paid invoices (and, for a prepaid one whose invoice was
    /// just paid, minting its token: the answer that does so is the only one that carries it).
    pub async fn show(&self, id: &str) -> Result<AllowanceView, AllowanceError> {
        let account = self
            .registry
            .get(id)
            .await?
            .ok_or_else(|| AllowanceError::NotFound(id.to_string()))?;
        if account.prepaid.is_some() {
            let (account, token) = self.settle_prepaid(account).await?;
            let mut view = self.view(&account, None).await?;
            view.token = token;
            return Ok(view);
        }
        let account = self.credit_fundings(account).await?;
        self.view(&account, None).await
    }

    /// Every allowance, newest first (paid invoices credited first).
    pub async fn list(&self) -> Result<Vec<AllowanceView>, AllowanceError> {
        let mut out = Vec::new();
        for account in self.registry.list().await? {
            let account = if account.metered.is_some() {
                self.credit_fundings(account).await?
            } else {
                account
            };
            let mut view = self.view(&account, None).await?;
            view.history.clear();
            out.push(view);
        }
        Ok(out)
    }

    /// Credits every funding invoice of a metered allowance that has been paid.
    pub async fn credit_fundings(&self, account: Account) -> Result<Account, AllowanceError> {
        let Some(m) = &account.metered else {
            return Ok(account);
        };
        let now = unix_time();
        let mut paid = Vec::new();
        for f in m.fundings.iter().filter(|f| !f.credited) {
            if f.expiry != 0 && f.expiry + 60 < now {
                continue;
            }
            if self.quote_state(&f.quote_id).await? == Some(MintQuoteState::Paid) {
                paid.push(f.quote_id.clone());
            }
        }
        if paid.is_empty() {
            return Ok(account);
        }
        let (account, ()) = self
            .registry
            .update(&account.id, |a| {
                let m = metered_mut(a)?;
                let mut effects = Effects::default();
                for f in m.fundings.iter_mut() {
                    if !f.credited && paid.contains(&f.quote_id) {
                        f.credited = true;
                        m.balance = m.balance.saturating_add(f.amount);
                        m.totals.funded = m.totals.funded.saturating_add(f.amount);
                        effects.events.push(event(now, "funded", f.amount, 0, ""));
                    }
                }
                Ok(((), effects))
            })
            .await?;
        tracing::info!(allowance = %account.id, "funding credited");
        Ok(account)
    }

    /// The state of a mint quote (asking the backend if it is unpaid).
    pub(crate) async fn quote_state(
        &self,
        id: &str,
    ) -> Result<Option<MintQuoteState>, AllowanceError> {
        let Ok(quote_id) = QuoteId::from_str(id) else {
            return Ok(None);
        };
        match self.mint.check_mint_quote(&quote_id).await {
            Ok(q) => Ok(q.state()),
            Err(cdk::Error::UnknownQuote) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn metered(&self, id: &str) -> Result<Account, AllowanceError> {
        let account = self
            .registry
            .get(id)
            .await?
            .ok_or_else(|| AllowanceError::NotFound(id.to_string()))?;
        if account.metered.is_none() {
            return Err(AllowanceError::Conflict(
                "this is a prepaid allowance: only metered ones can do that".into(),
            ));
        }
        Ok(account)
    }

    /// Runs the sweeper every `every` until the process ends: credits paid invoices, gives
    /// back draws whose quote never came to be, and settles withdrawals in flight.
    pub fn spawn_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = tokio::task::unconstrained(this.sweep()).await {
                    tracing::warn!(error = %e, "allowance sweep failed");
                }
            }
        })
    }

    pub async fn sweep(&self) -> Result<(), AllowanceError> {
        for account in self.registry.list().await? {
            let Some(m) = &account.metered else { continue };
            let busy = !m.pending_draws.is_empty() || !m.withdrawals.is_empty();
            let unpaid = m.fundings.iter().any(|f| !f.credited);
            let id = account.id.clone();
            if unpaid {
                self.credit_fundings(account).await?;
            }
            if busy {
                self.settle_stale_draws(&id).await?;
                self.settle_withdrawals(&id).await?;
            }
        }
        Ok(())
    }
}

pub(crate) fn metered_mut(a: &mut Account) -> Result<&mut Metered, AllowanceError> {
    a.metered
        .as_mut()
        .ok_or_else(|| AllowanceError::Conflict("not a metered allowance".into()))
}

fn check_amount(amount: u64) -> Result<(), AllowanceError> {
    if amount == 0 || amount > MAX_AMOUNT {
        return Err(AllowanceError::Invalid(
            "amount must be at least 1 sat".into(),
        ));
    }
    Ok(())
}

fn clean_memo(memo: Option<String>) -> Result<Option<String>, AllowanceError> {
    let Some(m) = memo.map(|m| m.trim().to_string()).filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    if m.chars().count() > MAX_MEMO || m.chars().any(char::is_control) {
        return Err(AllowanceError::Invalid(format!(
            "memo must be at most {MAX_MEMO} printable characters"
        )));
    }
    Ok(Some(m))
}

/// A fresh allowance id: `al` and 24 hex characters.
pub fn new_id() -> String {
    let bytes: [u8; 12] = rand::random();
    format!("al{}", hex::encode(bytes))
}
