//! Paying an L402 challenge: decode the invoice, check price plus the mint's Lightning fee
//! reserve against the policy, melt ecash at one of the wallet's mints to pay the invoice, and
//! retry with `Authorization: L402 <macaroon>:<preimage>`.
//!
//! Melt outcomes: paid → the preimage makes the credential (cached for reuse); failed → cdk
//! returns the proofs and the ledger row is `failed`, not counted; still pending at the deadline
//! (or a crash) → the melt stays in the outbox and [`AgentWallet::recover`] settles it from the
//! mint's quote state.
//!
//! Same mint: when the wallet's mint also issued the invoice (the merchant's L402 quotes come
//! from our mint), the mint settles it internally and returns no preimage. The credential is
//! then sent with an empty preimage (`L402 <macaroon>:`), which our merchant accepts after
//! checking its own quote is paid (see `cashu_402::l402`). A foreign L402 server refuses that
//! form; the payment is still recorded (it was made) as `refused-by-server`.

use std::collections::HashMap;

use cashu_402::l402::{parse_hex32, L402Challenge, L402Credential, Preimage, AUTHORIZATION};
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, MeltQuoteState, PaymentMethod};
use cdk::wallet::{MeltOutcome, PreparedMelt, Wallet};
use tokio::time::Instant;

use crate::error::WalletError;
use crate::http::{FetchResponse, HttpResponse, PayRequest};
use crate::l402_store::MeltRow;
use crate::ledger::{LedgerEntry, Outcome, SCHEME_L402};
use crate::oplock;
use crate::outbox::Resolution;
use crate::pay::{origin_of, scope_for};
use crate::store::now_unix;
use crate::wallet::{new_id, AgentWallet};

/// What became of a melt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MeltResult {
    /// Paid; the preimage when the mint returned one, and the Lightning fee paid.
    Paid {
        preimage: Option<[u8; 32]>,
        fee: u64,
    },
    /// Not paid; the proofs are back in the wallet.
    Failed(String),
    /// Not settled yet (or the mint could not be asked).
    Pending(String),
}

fn paid_from(state: MeltQuoteState, proof: Option<&str>, fee: u64) -> MeltResult {
    match state {
        MeltQuoteState::Paid => MeltResult::Paid {
            preimage: proof.and_then(|p| parse_hex32(p.trim())),
            fee,
        },
        MeltQuoteState::Unpaid | MeltQuoteState::Failed => {
            MeltResult::Failed(format!("the mint reports the payment {state}"))
        }
        other => MeltResult::Pending(format!("the mint reports the payment {other}")),
    }
}

impl AgentWallet {
    pub(crate) async fn pay_l402(
        &self,
        req: &PayRequest,
        challenge: &L402Challenge,
        first: HttpResponse,
    ) -> Result<FetchResponse, WalletError> {
        let not_payable = |reason: String, response: HttpResponse| WalletError::NotPayable {
            reason,
            response: Box::new(response),
        };
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
        let info = match challenge.invoice_info() {
            Ok(i) => i,
            Err(e) => return Err(not_payable(e.to_string(), first)),
        };
        let Some(amount) = info.amount_sat() else {
            return Err(not_payable(
                "the L402 invoice names no amount".into(),
                first,
            ));
        };
        if info.expires_at <= now_unix() {
            return Err(not_payable("the L402 invoice has expired".into(), first));
        }
        let spent = self.store.spent(&host, now_unix())?;
        if let Err(v) = self.policy.check_cost(&host, amount, req.max_cost, spent) {
            return Err(refused(v, first));
        }
        let Some(mint) = self.melt_mint(amount).await? else {
            let reason = "no mint to melt at: the wallet holds ecash at no mint the policy allows";
            return Err(not_payable(reason.into(), first));
        };
        let wallet = self.wallet_for(&mint)?;
        let quote = match wallet
            .melt_quote(PaymentMethod::BOLT11, &challenge.invoice, None, None)
            .await
        {
            Ok(q) => q,
            Err(e) => {
                let reason = format!("the mint {mint} will not pay the L402 invoice: {e}");
                return Err(not_payable(reason, first));
            }
        };
        let price = u64::from(quote.amount);
        let reserve = u64::from(quote.fee_reserve);
        // The fee reserve counts against the caps before anything moves; the fee actually paid
        // replaces it in the ledger afterwards.
        if let Err(v) =
            self.policy
                .check_cost(&host, price.saturating_add(reserve), req.max_cost, spent)
        {
            return Err(refused(v, first));
        }
        self.top_up_for(&mint, price.saturating_add(reserve).saturating_add(1))
            .await?;

        let _op = oplock::shared(&self.data_dir).await?;
        let prepared = match wallet.prepare_melt(&quote.id, HashMap::new()).await {
            Ok(p) => p,
            Err(e) => {
                let needed = price.saturating_add(reserve);
                return Err(self
                    .not_prepared(e, &mint, needed, "prepare the melt")
                    .await);
            }
        };
        let input_fee = u64::from(prepared.total_fee());
        let fee_reserved = reserve.saturating_add(input_fee);
        let id = new_id();
        let entry = LedgerEntry {
            id: id.clone(),
            time: now_unix(),
            host: host.clone(),
            path: req.url.path().to_string(),
            method: req.method.to_string(),
            amount: price,
            fee: fee_reserved,
            unit: CurrencyUnit::Sat.to_string(),
            scheme: SCHEME_L402.into(),
            mint: mint.to_string(),
            outcome: Outcome::Pending,
            counted: true,
            status: None,
            detail: String::new(),
        };
        let row = MeltRow {
            id: id.clone(),
            mint: mint.to_string(),
            operation_id: prepared.operation_id().to_string(),
            quote_id: quote.id.clone(),
            macaroon: challenge.token.clone(),
            origin: origin_of(req),
            scope: scope_for(req),
        };
        let policy = &self.policy;
        let max_cost = req.max_cost;
        let cost = price.saturating_add(fee_reserved);
        let reserved = self.store.reserve_melt(&entry, &row, |spent| {
            policy.check_cost(&host, cost, max_cost, spent)
        })?;
        if let Err(v) = reserved {
            if let Err(e) = prepared.cancel().await {
                tracing::warn!("releasing the reserved proofs failed: {e}");
            }
            return Err(refused(v, first));
        }
        tracing::info!(payment = %id, %host, price, reserve, %mint, "paying an L402 invoice by melting");

        let (preimage, fee) = match self.run_melt(&wallet, prepared, &quote.id).await {
            MeltResult::Paid { preimage, fee } => (preimage, fee.saturating_add(input_fee)),
            MeltResult::Failed(reason) => {
                let resolution = Resolution {
                    outcome: Outcome::Failed,
                    counted: false,
                    fee: Some(0),
                    status: None,
                    detail: format!("melt failed, ecash returned: {reason}"),
                };
                self.store.finish_melt(&id, &resolution)?;
                return Err(WalletError::PaymentFailed {
                    reason: format!("the Lightning payment failed ({reason}); the ecash is back"),
                    payment_id: Some(id),
                });
            }
            MeltResult::Pending(reason) => {
                return Err(WalletError::PaymentFailed {
                    reason: format!(
                        "the Lightning payment is still pending ({reason}); it stays in the outbox and the next start settles it"
                    ),
                    payment_id: Some(id),
                })
            }
        };
        let preimage = match preimage {
            Some(p) if Preimage::Known(p).matches(&info.payment_hash) => Preimage::Known(p),
            Some(_) => {
                tracing::warn!(payment = %id, "the mint returned a preimage that does not match the invoice");
                Preimage::SettledByMint
            }
            None => Preimage::SettledByMint,
        };
        self.store.melt_paid(&row, &preimage.to_hex())?;
        let credential = L402Credential::new(challenge.token.clone(), preimage).encode();
        let answer = self
            .send_http(req, Some((AUTHORIZATION, &credential)))
            .await;
        let (resolution, answer) = match answer {
            Ok(response) if response.status.as_u16() < 400 => {
                let mut r = Resolution::paid(response.status.as_u16());
                r.fee = Some(fee);
                (r, Ok(response))
            }
            Ok(response) => {
                self.store.drop_credential(&row.origin, &row.scope)?;
                let r = Resolution {
                    outcome: Outcome::RefusedByServer,
                    counted: true,
                    fee: Some(fee),
                    status: Some(response.status.as_u16()),
                    detail: "invoice paid; the server refused the credential".into(),
                };
                (r, Ok(response))
            }
            Err(e) => {
                let r = Resolution {
                    outcome: Outcome::Unknown,
                    counted: true,
                    fee: Some(fee),
                    status: None,
                    detail:
                        "invoice paid; no answer (the credential is cached for the next request)"
                            .into(),
                };
                (r, Err(e))
            }
        };
        let payment = self.store.finish_melt(&id, &resolution)?;
        match answer {
            Ok(response) => Ok(FetchResponse { response, payment }),
            Err(e) => Err(WalletError::PaymentFailed {
                reason: format!(
                    "no answer to the paid request: {e} (invoice paid; credential cached)"
                ),
                payment_id: Some(id),
            }),
        }
    }

    /// The mint to melt at: one the policy allows where the wallet holds `amount`, else the
    /// allowance's mint (which can draw), else the first allowed mint.
    async fn melt_mint(&self, amount: u64) -> Result<Option<MintUrl>, WalletError> {
        let mut candidates: Vec<MintUrl> = Vec::new();
        for m in self
            .home_mint
            .iter()
            .cloned()
            .chain(self.allowance_mint())
            .chain(self.mints())
        {
            if self.policy.allows_mint(&m) && !candidates.contains(&m) {
                candidates.push(m);
            }
        }
        for m in &candidates {
            if self.balance_at(m).await? >= amount {
                return Ok(Some(m.clone()));
            }
        }
        if let Some(am) = self.allowance_mint().filter(|m| candidates.contains(m)) {
            return Ok(Some(am));
        }
        Ok(candidates.into_iter().next())
    }

    /// Confirms a melt and waits for it, up to the melt deadline.
    async fn run_melt(
        &self,
        wallet: &Wallet,
        prepared: PreparedMelt<'_>,
        quote_id: &str,
    ) -> MeltResult {
        let operation_id = prepared.operation_id().to_string();
        let deadline = Instant::now() + self.melt_deadline;
        let outcome = tokio::time::timeout_at(deadline, prepared.confirm_prefer_async()).await;
        let finalized = match outcome {
            Ok(Ok(MeltOutcome::Paid(f))) => Ok(f),
            Ok(Ok(MeltOutcome::Pending(pending))) => {
                match tokio::time::timeout_at(deadline, pending).await {
                    Ok(r) => r,
                    Err(_) => return MeltResult::Pending("deadline passed".into()),
                }
            }
            Ok(Err(e)) => Err(e),
            Err(_) => return MeltResult::Pending("deadline passed".into()),
        };
        match finalized {
            Ok(f) => paid_from(f.state(), f.payment_proof(), u64::from(f.fee_paid())),
            Err(e) => {
                tracing::info!("melt did not complete ({e}); asking the mint");
                self.melt_status(wallet, quote_id, &operation_id).await
            }
        }
    }

    /// The state of a melt quote at the mint (cdk finishes or compensates its saga on the way).
    /// While cdk's melt saga exists the proofs are still held and the local quote state may
    /// be stale, so only a paid quote or a finished saga is taken as final.
    pub(crate) async fn melt_status(
        &self,
        wallet: &Wallet,
        quote_id: &str,
        operation_id: &str,
    ) -> MeltResult {
        let quote = match wallet.check_melt_quote_status(quote_id).await {
            Ok(q) => q,
            Err(e) => return MeltResult::Pending(format!("the mint could not be asked: {e}")),
        };
        if quote.state != MeltQuoteState::Paid {
            let op = match uuid::Uuid::parse_str(operation_id) {
                Ok(op) => op,
                Err(e) => return MeltResult::Pending(e.to_string()),
            };
            match wallet.localstore.get_saga(&op).await {
                Ok(None) => {}
                Ok(Some(_)) => return MeltResult::Pending("the melt is still in progress".into()),
                Err(e) => return MeltResult::Pending(e.to_string()),
            }
        }
        // The fee actually paid is not in the quote; the reserve is the bound.
        paid_from(
            quote.state,
            quote.payment_proof.as_deref(),
            u64::from(quote.fee_reserve),
        )
    }

    /// Settles L402 melts a crash or a deadline left in the outbox. Returns (resolved rows,
    /// still pending).
    pub(crate) async fn recover_melts(&self) -> Result<(Vec<LedgerEntry>, usize), WalletError> {
        let mut resolved = Vec::new();
        let mut pending = 0;
        for row in self.store.melt_outbox()? {
            let result = match row.mint.parse::<MintUrl>() {
                Ok(mint) => {
                    let wallet = self.wallet_for(&mint)?;
                    match tokio::time::timeout(
                        self.recovery_timeout,
                        self.melt_status(&wallet, &row.quote_id, &row.operation_id),
                    )
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => MeltResult::Pending("timed out".into()),
                    }
                }
                Err(e) => MeltResult::Pending(e.to_string()),
            };
            let resolution = match result {
                MeltResult::Paid { preimage, fee } => {
                    let preimage = preimage.map_or(Preimage::SettledByMint, Preimage::Known);
                    self.store.melt_paid(&row, &preimage.to_hex())?;
                    Resolution {
                        outcome: Outcome::Unknown,
                        counted: true,
                        fee: Some(fee),
                        status: None,
                        detail: "invoice paid; the request was not retried (the credential is cached for the next one)".into(),
                    }
                }
                MeltResult::Failed(reason) => Resolution {
                    outcome: Outcome::Failed,
                    counted: false,
                    fee: Some(0),
                    status: None,
                    detail: format!("melt failed, ecash returned: {reason}"),
                },
                MeltResult::Pending(reason) => {
                    tracing::warn!(payment = %row.id, %reason, "L402 melt still unsettled");
                    pending += 1;
                    continue;
                }
            };
            if let Some(entry) = self.store.finish_melt(&row.id, &resolution)? {
                resolved.push(entry);
            }
        }
        Ok((resolved, pending))
    }
}
