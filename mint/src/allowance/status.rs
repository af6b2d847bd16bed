//! `POST /v1/allowance/status`: an agent reads what its metered allowance still lets it draw,
//! signed with its agent key (`cashu_402::allowance_status`). Read-only.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cashu_402::allowance::DRAW_CLOCK_SKEW_SECS;
use cashu_402::allowance_status::{AgentStatus, StatusRequest};
use cdk::nuts::PublicKey;
use cdk::util::unix_time;

use super::error::AllowanceError;
use super::policy::Refusal;
use super::service::Allowances;

/// The route handler.
pub async fn handler(
    State(allowances): State<Allowances>,
    Json(body): Json<serde_json::Value>,
) -> Response {
    match allowances.agent_status(body).await {
        Ok(status) => Json(status).into_response(),
        Err(e) => e.into_response(),
    }
}

impl Allowances {
    /// Checks the agent's signature and answers with the allowance's room (paid funding
    /// invoices credited first, as the admin view does).
    pub async fn agent_status(
        &self,
        body: serde_json::Value,
    ) -> Result<AgentStatus, AllowanceError> {
        let request: StatusRequest = serde_json::from_value(body)
            .map_err(|e| AllowanceError::Invalid(format!("not a status request: {e}")))?;
        // Unknown ids and prepaid allowances answer alike: neither has an agent key.
        let account = self
            .registry
            .get(&request.allowance)
            .await?
            .filter(|a| a.metered.is_some())
            .ok_or(Refusal::Unknown)?;
        let agent = account
            .metered
            .as_ref()
            .map(|m| m.agent_pubkey.clone())
            .unwrap_or_default();
        let pubkey = PublicKey::from_hex(&agent)
            .map_err(|e| AllowanceError::Storage(format!("stored agent key: {e}")))?;
        request
            .verify(&pubkey)
            .map_err(|e| Refusal::BadSignature(e.to_string()))?;
        let now = unix_time();
        if now.abs_diff(request.time) > DRAW_CLOCK_SKEW_SECS {
            return Err(Refusal::BadSignature(format!(
                "time is more than {DRAW_CLOCK_SKEW_SECS} s from the mint's clock"
            ))
            .into());
        }
        let account = self.credit_fundings(account).await?;
        let m = account
            .metered
            .as_ref()
            .ok_or_else(|| AllowanceError::Storage("metered account lost its terms".into()))?;
        Ok(AgentStatus {
            allowance: account.id.clone(),
            state: m.state(now).to_string(),
            balance: m.balance,
            drawn_24h: m.drawn_24h(now),
            policy: m.policy,
            draw_now: 0,
            draw_room_24h: 0,
            time: now,
        }
        .with_room())
    }
}
