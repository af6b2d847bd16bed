//! Tool results: a one-line summary a model reads first, the same facts as JSON (in a second
//! text block and as `structuredContent`), and `isError` when the tool did not do its job.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{json, Value};

use crate::budget::{AllowanceDrawRoom, Budget};
use crate::error::WalletError;
use crate::http::{FetchResponse, HttpResponse};
use crate::ledger::{to_json, LedgerEntry};
use crate::wallet::{AgentWallet, Balances, ReceiveOutcome};

/// Body text `fetch` returns when the call does not say.
pub const DEFAULT_MAX_BODY_CHARS: usize = 100_000;

fn result(summary: String, value: Value, is_error: bool) -> CallToolResult {
    let content = vec![
        ContentBlock::text(summary),
        ContentBlock::text(value.to_string()),
    ];
    let mut r = if is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    r.structured_content = Some(value);
    r
}

/// A failure that is not a [`WalletError`].
pub fn failure(reason: String) -> CallToolResult {
    let v = json!({ "error": "internal", "reason": reason });
    result(reason, v, true)
}

/// An answer: `isError` when its status is >= 400, as the CLI exits 5.
pub fn fetched(answer: &FetchResponse, max_chars: usize) -> CallToolResult {
    let r = &answer.response;
    let cost = answer.cost();
    let payment = answer
        .payment
        .as_ref()
        .map(|p| to_json(std::slice::from_ref(p))[0].clone());
    let mut v = json!({
        "status": r.status.as_u16(),
        "ok": r.status.as_u16() < 400,
        "cost": cost,
        "unit": "sat",
        "payment": payment,
    });
    add_response(&mut v, r, max_chars);
    let paid = match &answer.payment {
        Some(p) => format!(
            "paid {cost} sat (price {}, fee {}) at {}: {}",
            p.amount, p.fee, p.mint, p.outcome
        ),
        None => "no payment".into(),
    };
    let summary = format!("HTTP {}; {paid}", r.status);
    result(summary, v, r.status.as_u16() >= 400)
}

/// Status, headers and (possibly cut) body of an answer, into `v`.
fn add_response(v: &mut Value, r: &HttpResponse, max_chars: usize) {
    let mut headers = serde_json::Map::new();
    for name in r.headers.keys() {
        let values: Vec<String> = r
            .headers
            .get_all(name)
            .iter()
            .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
            .collect();
        headers.insert(name.to_string(), values.join(", ").into());
    }
    v["status"] = r.status.as_u16().into();
    v["headers"] = headers.into();
    v["body_bytes"] = r.body.len().into();
    match std::str::from_utf8(&r.body) {
        Ok(text) => {
            let cut: String = text.chars().take(max_chars).collect();
            v["body_truncated"] = (cut.len() < text.len()).into();
            v["body"] = cut.into();
        }
        Err(_) => {
            use base64::Engine;
            let take = r.body.len().min(max_chars.saturating_mul(3) / 4);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&r.body[..take]);
            v["body_truncated"] = (take < r.body.len()).into();
            v["body_base64"] = b64.into();
        }
    }
}

/// A [`WalletError`]: `isError`, with the reason, a machine-readable `error` kind, and for
/// payments what became of the money.
pub fn wallet_error(wallet: &AgentWallet, e: &WalletError) -> CallToolResult {
    let mut reason = e.to_string();
    let mut v = json!({ "error": e.kind(), "reason": reason });
    match e {
        WalletError::PolicyRefused { violation, .. } => {
            v["violation"] = violation.code().into();
            v["spent"] = 0.into();
            reason.push_str("; nothing was spent (call budget to see what the policy allows)");
        }
        WalletError::NotPayable { .. } | WalletError::InsufficientFunds { .. } => {
            v["spent"] = 0.into();
            reason.push_str("; nothing was spent");
        }
        WalletError::PaymentFailed {
            payment_id: Some(id),
            ..
        } => {
            v["payment_id"] = id.clone().into();
            if let Ok(Some(row)) = wallet.store.ledger_entry(id) {
                v["payment"] = to_json(std::slice::from_ref(&row))[0].clone();
                v["cost"] = row.cost().into();
            }
        }
        _ => {}
    }
    if let Some(resp) = e.response() {
        add_response(&mut v, resp, DEFAULT_MAX_BODY_CHARS);
    }
    v["reason"] = reason.clone().into();
    result(reason, v, true)
}

pub fn balance(b: &Balances) -> CallToolResult {
    let summary = format!("{} {} in all", b.total, b.unit);
    result(summary, json!(b), false)
}

pub fn budget(b: &Budget) -> CallToolResult {
    let cap = |c: Option<u64>| c.map_or("unlimited".to_string(), |n| format!("{n} sat"));
    let mut summary = format!(
        "the next paid request may cost up to {} sat; per request {}, total left {}, balance {} sat",
        b.next_request_max,
        cap(b.max_per_request),
        cap(b.remaining_total),
        b.balance
    );
    if let Some(h) = &b.host {
        if h.allowed {
            summary.push_str(&format!(
                "; {} may still be paid {} under its rolling 24 h cap",
                h.host,
                cap(h.remaining_last_24h)
            ));
        } else {
            summary.push_str(&format!("; {} is not an allowed host", h.host));
        }
    }
    match &b.allowance_draw_room {
        AllowanceDrawRoom::NotConnected => {}
        AllowanceDrawRoom::Connected(r) => summary.push_str(&format!(
            "; the allowance ({}) lets the wallet draw {} sat now and {} sat in the next 24 h",
            r.state, r.draw_now, r.draw_room_24h
        )),
        AllowanceDrawRoom::Unavailable(r) => summary.push_str(&format!(
            "; the allowance's mint did not answer ({}), so only the balance counts",
            r.detail
        )),
    }
    let v = serde_json::to_value(b).unwrap_or_else(|e| json!({ "error": e.to_string() }));
    result(summary, v, false)
}

pub fn ledger(rows: &[LedgerEntry], host: Option<&str>) -> CallToolResult {
    let cost: u64 = rows.iter().map(LedgerEntry::cost).sum();
    let whose = host.map_or(String::new(), |h| format!(" to {h}"));
    let summary = format!(
        "{} payment(s){whose}, newest first, costing {cost} sat together",
        rows.len()
    );
    let v = json!({ "count": rows.len(), "cost": cost, "entries": to_json(rows) });
    result(summary, v, false)
}

pub fn received(outcome: ReceiveOutcome, balance: Option<u64>) -> CallToolResult {
    let mut v = json!(outcome);
    v["balance"] = json!(balance);
    let summary = match outcome {
        ReceiveOutcome::Received { amount } => format!("received {amount} sat"),
        ReceiveOutcome::AlreadyImported => "already imported; nothing changed".into(),
    };
    result(summary, v, false)
}
