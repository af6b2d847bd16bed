//! The paying HTTP client: on `402` with `X-Cashu`, check the policy, make a token for exactly
//! the price, retry with it, and record the payment.

use cashu_402::nut24::{Challenge, X_CASHU};
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, SpendingConditions};
use cdk::wallet::{PreparedSend, SendKind, SendOptions, Wallet};
use cdk::Amount;
use reqwest::StatusCode;

use crate::error::WalletError;
use crate::http::{FetchResponse, HttpResponse, PayRequest};
use crate::ledger::{LedgerEntry, Outcome, SCHEME_CASHU};
use crate::oplock;
use crate::outbox::{resolve, OutboxRow, OutboxState, Resolution, Trigger};
use crate::store::now_unix;
use crate::wallet::{new_id, AgentWallet};

impl AgentWallet {
    /// Sends `req`. If the server answers `402` with an `X-Cashu` challenge the policy allows,
    /// pays it and sends the request again with the token; the answer to that is returned
    /// with the payment's ledger row. Any other answer is returned as it is.
    ///
    /// Errors: [`WalletError::PolicyRefused`] and [`WalletError::NotPayable`] carry the 402
    /// answer and spend nothing; [`WalletError::PaymentFailed`] means the payment was tried
    /// (the ledger row says whether the ecash came back); [`WalletError::InsufficientFunds`].
    /// An answer >= 400 to the paid request is not an error: the token is taken back if the
    /// server did not redeem it, and the ledger row says `refused-by-server`.
    pub async fn fetch(&self, req: PayRequest) -> Result<FetchResponse, WalletError> {
        let first = self
            .send_http(&req, None)
            .await
            .map_err(WalletError::Http)?;
        if first.status != StatusCode::PAYMENT_REQUIRED {
            return Ok(FetchResponse {
                response: first,
                payment: None,
            });
        }
        let not_payable = |reason: String, response: HttpResponse| WalletError::NotPayable {
            reason,
            response: Box::new(response),
        };
        let Some(header) = first.header(X_CASHU).map(str::to_string) else {
            return Err(not_payable("no X-Cashu challenge".into(), first));
        };
        let challenge = match Challenge::parse(&header) {
            Ok(c) => c,
            Err(e) => return Err(not_payable(e.to_string(), first)),
        };
        if challenge.unit != CurrencyUnit::Sat {
            let reason = format!("the price is in {} (this wallet holds sat)", challenge.unit);
            return Err(not_payable(reason, first));
        }
        self.pay(&req, &challenge, first).await
    }

    async fn pay(
        &self,
        req: &PayRequest,
        challenge: &Challenge,
        first: HttpResponse,
    ) -> Result<FetchResponse, WalletError> {
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
            Err(cdk::Error::InsufficientFunds) => {
                return Err(WalletError::InsufficientFunds {
                    mint: mint.to_string(),
                    needed: amount,
                    available: self.balance_at(&mint).await?,
                })
            }
            Err(e) => {
                return Err(WalletError::PaymentFailed {
                    reason: format!("cannot make a token: {e}"),
                    payment_id: None,
                })
            }
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
            scheme: SCHEME_CASHU.into(),
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

        let token = match prepared.confirm(None).await {
            Ok(t) => t.to_string(),
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

        match self.send_http(req, Some(&token)).await {
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

    async fn send_http(
        &self,
        req: &PayRequest,
        token: Option<&str>,
    ) -> Result<HttpResponse, reqwest::Error> {
        let mut headers = req.headers.clone();
        headers.remove(X_CASHU);
        let mut builder = self
            .http
            .request(req.method.clone(), req.url.clone())
            .headers(headers);
        if let Some(token) = token {
            builder = builder.header(X_CASHU, token);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        HttpResponse::read(builder.send().await?).await
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
