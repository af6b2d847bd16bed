//! The paying HTTP client: on `402`, gather every offered scheme, choose by the policy's
//! preference, pay, retry, and record the payment. This file holds the dispatch and the Cashu
//! schemes (NUT-24 `X-Cashu`, x402 `cashu`); L402 is in `pay_l402.rs`.

use cashu_402::l402::{L402Credential, Preimage, AUTHORIZATION};
use cashu_402::nut24::{Challenge, X_CASHU};
use cashu_402::offers::{Offer, Offers};
use cashu_402::x402::{PaymentPayload, PaymentRequirements, X402Version};
use cashu_402::Token;
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, SpendingConditions};
use cdk::wallet::{PreparedSend, SendKind, SendOptions, Wallet};
use cdk::Amount;
use reqwest::StatusCode;

use crate::error::WalletError;
use crate::http::{FetchResponse, HttpResponse, PayRequest};
use crate::l402_store::scope_of;
use crate::ledger::{LedgerEntry, Outcome, SCHEME_CASHU, SCHEME_X402_CASHU};
use crate::oplock;
use crate::outbox::{resolve, OutboxRow, OutboxState, Resolution, Trigger};
use crate::policy::PolicyViolation;
use crate::store::now_unix;
use crate::wallet::{new_id, AgentWallet};

/// How the Cashu token travels back to the server.
pub(crate) enum Delivery<'a> {
    /// NUT-24: `X-Cashu: cashuB...`.
    XCashu,
    /// x402: `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1) carrying a base64 JSON payload.
    X402 {
        version: X402Version,
        entry: &'a PaymentRequirements,
    },
}

impl Delivery<'_> {
    fn scheme(&self) -> &'static str {
        match self {
            Self::XCashu => SCHEME_CASHU,
            Self::X402 { .. } => SCHEME_X402_CASHU,
        }
    }

    fn header(&self, token: &Token) -> (&'static str, String) {
        match self {
            Self::XCashu => (X_CASHU, token.to_string()),
            Self::X402 { version, entry } => (
                version.credential_header(),
                PaymentPayload::cashu(*version, entry, token).to_header(),
            ),
        }
    }
}

/// Errors after which the next offer of the same 402 may be tried: nothing was spent and the
/// reason is specific to the offer (its mints, its unit, its invoice, the ecash held there).
fn falls_through(e: &WalletError) -> bool {
    matches!(
        e,
        WalletError::NotPayable { .. }
            | WalletError::InsufficientFunds { .. }
            | WalletError::PolicyRefused {
                violation: PolicyViolation::MintNotAllowed { .. },
                ..
            }
    )
}

impl AgentWallet {
    /// Sends `req`. If the server answers `402`, every offer in the answer is gathered
    /// (`X-Cashu`, `WWW-Authenticate: L402`, x402 `PAYMENT-REQUIRED` or v1 body) and paid by
    /// the policy's scheme preference ([`crate::Policy::schemes`]); the request is sent again
    /// with the credential, and the answer to that is returned with the payment's ledger row.
    /// An offer this wallet cannot pay (no ecash at its mints, another unit, an unsupported
    /// x402 scheme or network) falls through to the next; if none is payable the error names
    /// every reason. A cached L402 credential for the URL's origin and path scope is sent
    /// first, and dropped if the server answers 401 or 402.
    ///
    /// Errors: [`WalletError::PolicyRefused`] and [`WalletError::NotPayable`] carry the 402
    /// answer and spend nothing; [`WalletError::PaymentFailed`] means the payment was tried
    /// (the ledger row says whether the ecash came back); [`WalletError::InsufficientFunds`].
    /// An answer >= 400 to the paid request is not an error: the token is taken back if the
    /// server did not redeem it, and the ledger row says `refused-by-server`.
    pub async fn fetch(&self, req: PayRequest) -> Result<FetchResponse, WalletError> {
        let origin = origin_of(&req);
        let cached = self.store.cached_credential(&origin, req.url.path())?;
        let mut first = match &cached {
            Some(c) => {
                let preimage = Preimage::from_hex(&c.preimage).unwrap_or(Preimage::SettledByMint);
                let cred = L402Credential::new(c.macaroon.clone(), preimage).encode();
                self.send_http(&req, Some((AUTHORIZATION, &cred)))
                    .await
                    .map_err(WalletError::Http)?
            }
            None => self
                .send_http(&req, None)
                .await
                .map_err(WalletError::Http)?,
        };
        if let Some(c) = &cached {
            let status = first.status;
            if status != StatusCode::UNAUTHORIZED && status != StatusCode::PAYMENT_REQUIRED {
                return Ok(FetchResponse {
                    response: first,
                    payment: None,
                });
            }
            tracing::info!(%origin, scope = %c.scope, %status, "cached L402 credential refused; paying again");
            self.store.drop_credential(&c.origin, &c.scope)?;
            if status == StatusCode::UNAUTHORIZED {
                first = self
                    .send_http(&req, None)
                    .await
                    .map_err(WalletError::Http)?;
            }
        }
        if first.status != StatusCode::PAYMENT_REQUIRED {
            return Ok(FetchResponse {
                response: first,
                payment: None,
            });
        }
        let offers = Offers::collect(
            first
                .headers
                .iter()
                .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v))),
            Some(&first.body),
        );
        let mut first_error: Option<WalletError> = None;
        let mut reasons: Vec<String> = Vec::new();
        for kind in &self.policy.schemes {
            for offer in offers.offers.iter().filter(|o| o.kind() == *kind) {
                let result = match offer {
                    Offer::Cashu(c) => self.pay(&req, c, first.clone(), Delivery::XCashu).await,
                    Offer::X402Cashu {
                        version,
                        entry,
                        requirements,
                    } => {
                        let delivery = Delivery::X402 {
                            version: *version,
                            entry,
                        };
                        self.pay(&req, &requirements.challenge, first.clone(), delivery)
                            .await
                    }
                    Offer::L402(c) => self.pay_l402(&req, c, first.clone()).await,
                };
                match result {
                    Err(e) if falls_through(&e) => {
                        reasons.push(format!("{kind}: {}", short_reason(&e)));
                        first_error.get_or_insert(e);
                    }
                    other => return other,
                }
            }
        }
        let skipped: Vec<String> = offers
            .offers
            .iter()
            .filter(|o| !self.policy.schemes.contains(&o.kind()))
            .map(|o| format!("{}: not in the policy's schemes", o.kind()))
            .collect();
        reasons.extend(skipped);
        reasons.extend(offers.unsupported.iter().map(|u| u.to_string()));
        let reason = if reasons.is_empty() {
            "no payment offer (X-Cashu, WWW-Authenticate: L402, PAYMENT-REQUIRED or an x402 body)"
                .to_string()
        } else {
            reasons.join("; ")
        };
        match first_error {
            // One offer, one reason: its own error says it best.
            Some(e) if reasons.len() == 1 => Err(e),
            _ => Err(WalletError::NotPayable {
                reason,
                response: Box::new(first),
            }),
        }
    }

    async fn pay(
        &self,
        req: &PayRequest,
        challenge: &Challenge,
        first: HttpResponse,
        delivery: Delivery<'_>,
    ) -> Result<FetchResponse, WalletError> {
        if challenge.unit != CurrencyUnit::Sat {
            let reason = format!("the price is in {} (this wallet holds sat)", challenge.unit);
            return Err(WalletError::NotPayable {
                reason,
                response: Box::new(first),
            });
        }
        let refused = |violation, response: HttpResponse| WalletError::PolicyRefused {
            violation,
            response: Some(Box::new(response)),
        };
        let host = req.host();
        if let Err(v) = self
            .policy
            .check_host(&host, req.url.port_or_known_default())
        {
            return Err(refused(v, first));
        }
        let known = self.mints();
        let held: Vec<&MintUrl> = challenge
            .mints
            .iter()
            .filter(|m| known.contains(m))
            .collect();
        let mint_list = || {
            let names: Vec<String> = challenge.mints.iter().map(|m| m.to_string()).collect();
            names.join(", ")
        };
        if held.is_empty() {
            let reason = format!(
                "the server accepts ecash from {} only; this wallet holds none there",
                mint_list()
            );
            return Err(WalletError::NotPayable {
                reason,
                response: Box::new(first),
            });
        }
        let allowed: Vec<&MintUrl> = held
            .into_iter()
            .filter(|m| self.policy.allows_mint(m))
            .collect();
        if allowed.is_empty() {
            let v = crate::policy::PolicyViolation::MintNotAllowed { mints: mint_list() };
            return Err(refused(v, first));
        }

        let amount = u64::from(challenge.amount);
        let spent = self.store.spent(&host, now_unix())?;
        if let Err(v) = self.policy.check_cost(&host, amount, req.max_cost, spent) {
            return Err(refused(v, first));
        }

        let mut mint = allowed[0].clone();
        let mut covered = false;
        for m in &allowed {
            if self.balance_at(m).await? >= amount {
                mint = (*m).clone();
                covered = true;
                break;
            }
        }
        // Not enough anywhere: draw from the allowance if the payee takes its mint.
        if !covered {
            if let Some(am) = self.allowance_mint().filter(|am| allowed.contains(&am)) {
                mint = am;
                self.top_up_for(&mint, amount).await?;
            }
        }

        let _op = oplock::shared(&self.data_dir).await?;
        let wallet = self.wallet_for(&mint)?;
        let prepared = match prepare_exact(&wallet, challenge.amount, challenge.lock.clone()).await
        {
            Ok(p) => p,
            Err(e) => return Err(self.not_prepared(e, &mint, amount, "make a token").await),
        };

        let fee = u64::from(prepared.fee());
        let cost = amount.saturating_add(fee);
        let id = new_id();
        let entry = LedgerEntry {
            id: id.clone(),
            time: now_unix(),
            host: host.clone(),
            path: req.url.path().to_string(),
            method: req.method.to_string(),
            amount,
            fee,
            unit: CurrencyUnit::Sat.to_string(),
            scheme: delivery.scheme().into(),
            mint: mint.to_string(),
            outcome: Outcome::Pending,
            counted: true,
            status: None,
            detail: String::new(),
        };
        let mut row = OutboxRow {
            id: id.clone(),
            state: OutboxState::Prepared,
            mint: mint.to_string(),
            operation_id: prepared.operation_id().to_string(),
            token: None,
            token_value: amount.saturating_add(u64::from(prepared.send_fee())),
            swap_fee: u64::from(prepared.swap_fee()),
            locked: challenge.lock.is_some(),
        };
        let policy = &self.policy;
        let max_cost = req.max_cost;
        let reserved = self.store.reserve(&entry, &row, |spent| {
            policy.check_cost(&host, cost, max_cost, spent)
        })?;
        if let Err(v) = reserved {
            if let Err(e) = prepared.cancel().await {
                tracing::warn!("releasing the reserved proofs failed: {e}");
            }
            return Err(refused(v, first));
        }

        let (token, credential) = match prepared.confirm(None).await {
            Ok(t) => (t.to_string(), delivery.header(&t)),
            Err(e) => {
                let outcome = self.settle_and_finish(&row, Trigger::NeverSent).await?;
                return Err(WalletError::PaymentFailed {
                    reason: format!("cannot make a token: {e} ({outcome})"),
                    payment_id: Some(id),
                });
            }
        };
        // The token is in the outbox before it leaves: a crash from here on is recovered.
        self.store.mark_in_flight(&id, &token)?;
        row.state = OutboxState::InFlight;
        row.token = Some(token.clone());
        tracing::info!(payment = %id, %host, amount, fee, %mint, "paying");

        match self
            .send_http(req, Some((credential.0, &credential.1)))
            .await
        {
            Ok(response) if response.status.as_u16() < 400 => {
                let payment = self
                    .store
                    .finish(&id, &Resolution::paid(response.status.as_u16()))?;
                Ok(FetchResponse { response, payment })
            }
            Ok(response) => {
                let status = response.status.as_u16();
                if let Some(body) = response.error_body() {
                    tracing::info!(payment = %id, status, code = body.code, detail = %body.detail, "the server refused the paid request");
                }
                self.settle_and_finish(&row, Trigger::Answered(status))
                    .await?;
                let payment = self.store.ledger_entry(&id)?;
                Ok(FetchResponse { response, payment })
            }
            Err(e) => {
                let outcome = self.settle_and_finish(&row, Trigger::NoAnswer).await?;
                Err(WalletError::PaymentFailed {
                    reason: format!("no answer to the paid request: {e} ({outcome})"),
                    payment_id: Some(id),
                })
            }
        }
    }

    /// Settles a payment that did not plainly succeed and writes its outcome; if the mint
    /// cannot be asked it stays in the outbox for the next recovery. Returns a short summary.
    async fn settle_and_finish(
        &self,
        row: &OutboxRow,
        trigger: Trigger,
    ) -> Result<String, WalletError> {
        let settlement = self.settle(row).await;
        match resolve(trigger, &settlement, row) {
            Some(resolution) => {
                let summary = format!("{}: {}", resolution.outcome, resolution.detail);
                self.store.finish(&row.id, &resolution)?;
                Ok(summary)
            }
            None => {
                tracing::warn!(payment = %row.id, ?settlement, "payment left in the outbox");
                Ok(
                    "outcome pending: the mint could not be asked; the next start settles it"
                        .into(),
                )
            }
        }
    }

    /// Sends the request, with one credential header (name, value) if given.
    pub(crate) async fn send_http(
        &self,
        req: &PayRequest,
        credential: Option<(&str, &str)>,
    ) -> Result<HttpResponse, reqwest::Error> {
        let mut headers = req.headers.clone();
        headers.remove(X_CASHU);
        if let Some((name, _)) = credential {
            headers.remove(name);
        }
        let mut builder = self
            .http
            .request(req.method.clone(), req.url.clone())
            .headers(headers);
        if let Some((name, value)) = credential {
            builder = builder.header(name, value);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        HttpResponse::read(builder.send().await?).await
    }
}

impl AgentWallet {
    /// The error for a payment cdk could not prepare (`what`: "make a token", "prepare the
    /// melt"): too little ecash at `mint` for `needed` sat, or why not.
    pub(crate) async fn not_prepared(
        &self,
        e: cdk::Error,
        mint: &MintUrl,
        needed: u64,
        what: &str,
    ) -> WalletError {
        match e {
            cdk::Error::InsufficientFunds => match self.balance_at(mint).await {
                Ok(available) => WalletError::InsufficientFunds {
                    mint: mint.to_string(),
                    needed,
                    available,
                },
                Err(e) => e,
            },
            e => WalletError::PaymentFailed {
                reason: format!("cannot {what}: {e}"),
                payment_id: None,
            },
        }
    }
}

/// Prepares a token worth exactly `amount` to the payee after its input fee
/// (`include_fee`): from proofs the wallet already holds if their denominations allow
/// (`OfflineExact`, no mint round trip), else with one swap (`OnlineExact`). A lock always
/// needs the swap that makes the locked proofs.
async fn prepare_exact(
    wallet: &Wallet,
    amount: Amount,
    lock: Option<SpendingConditions>,
) -> Result<PreparedSend<'_>, cdk::Error> {
    let options = |send_kind| SendOptions {
        conditions: lock.clone(),
        include_fee: true,
        send_kind,
        ..SendOptions::default()
    };
    if lock.is_none() {
        match wallet
            .prepare_send(amount, options(SendKind::OfflineExact))
            .await
        {
            Ok(p) => return Ok(p),
            Err(e) => tracing::debug!("no exact change offline ({e}); swapping"),
        }
    }
    wallet
        .prepare_send(amount, options(SendKind::OnlineExact))
        .await
}

/// `scheme://host:port` of the request: the L402 cache key.
pub(crate) fn origin_of(req: &PayRequest) -> String {
    format!(
        "{}://{}:{}",
        req.url.scheme(),
        req.host(),
        req.url.port_or_known_default().unwrap_or(0)
    )
}

/// The scope an L402 credential bought for this request covers.
pub(crate) fn scope_for(req: &PayRequest) -> String {
    scope_of(req.url.path())
}

fn short_reason(e: &WalletError) -> String {
    match e {
        WalletError::NotPayable { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}
