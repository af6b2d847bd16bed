//! What the spending policy still allows ([`AgentWallet::budget`]), so an agent can plan before
//! it asks for something that costs money.

use serde::Serialize;

use crate::error::WalletError;
use crate::policy::{host_matches, split_port, Policy, Spent};
use crate::store::now_unix;
use crate::wallet::AgentWallet;

/// The draw room of an allowance the wallet could top itself up from.
///
/// Allowances (a budget a human grants at the mint, drawn from as needed) are not part of this
/// wallet yet, so this is always [`AllowanceDrawRoom::NotConnected`]: the wallet spends only
/// the ecash it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AllowanceDrawRoom {
    /// No allowance is connected to this wallet.
    #[serde(rename = "not connected")]
    NotConnected,
}

/// What one host may still be paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostBudget {
    /// The host, as the policy and the ledger know it (lower case, no port).
    pub host: String,
    /// Whether the policy's allowed hosts admit this host (on any port).
    pub allowed: bool,
    /// What this host was paid in the last 24 hours (price plus fees).
    pub spent_last_24h: u64,
    /// What this host may still be paid in the rolling 24 hours (`"unlimited"` without a cap).
    #[serde(serialize_with = "crate::policy::limit::serialize")]
    pub remaining_last_24h: Option<u64>,
}

/// What the policy still allows, in sat. Caps of `None` are unlimited (`"unlimited"` in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Budget {
    pub unit: String,
    /// Ecash the wallet holds, at all mints: no payment can cost more.
    pub balance: u64,
    /// Most one request may cost (price plus fees).
    #[serde(serialize_with = "crate::policy::limit::serialize")]
    pub max_per_request: Option<u64>,
    /// Most one host may be paid in any rolling 24 hours.
    #[serde(serialize_with = "crate::policy::limit::serialize")]
    pub max_per_host_per_day: Option<u64>,
    /// Most the wallet may spend in all.
    #[serde(serialize_with = "crate::policy::limit::serialize")]
    pub max_total: Option<u64>,
    /// Spent in all so far (payments and sends, fees included).
    pub spent_total: u64,
    /// What the total cap still allows.
    #[serde(serialize_with = "crate::policy::limit::serialize")]
    pub remaining_total: Option<u64>,
    /// The host asked about, if any.
    pub host: Option<HostBudget>,
    /// The most the next paid request (to `host`, if given) may cost right now: the smallest
    /// of the per-request cap, what is left of the caps, and the balance (0 if the host is not
    /// allowed).
    pub next_request_max: u64,
    pub allowed_hosts: Vec<String>,
    pub allowed_mints: Vec<String>,
    /// Room left on a connected allowance; `"not connected"` until allowances exist.
    pub allowance_draw_room: AllowanceDrawRoom,
}

impl AgentWallet {
    /// What the policy still allows: the caps, what the ledger says is spent, and the most the
    /// next request may cost. With `host` (a host name such as `api.example.com`), also what
    /// that host may still be paid in the rolling 24 hours. Local: no network.
    pub async fn budget(&self, host: Option<&str>) -> Result<Budget, WalletError> {
        let balance = self.balances().await?.total;
        let host = host.map(normalize_host).filter(|h| !h.is_empty());
        let spent = self
            .store
            .spent(host.as_deref().unwrap_or_default(), now_unix())?;
        Ok(compute(&self.policy, host, spent, balance))
    }
}

/// A host name as the ledger keys it: lower case, no trailing dot.
fn normalize_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn compute(policy: &Policy, host: Option<String>, spent: Spent, balance: u64) -> Budget {
    let left = |max: Option<u64>, used: u64| max.map(|m| m.saturating_sub(used));
    let remaining_total = left(policy.max_total, spent.total);
    let host = host.map(|host| HostBudget {
        allowed: policy
            .allowed_hosts
            .iter()
            .any(|p| host_allows_any_port(p, &host)),
        spent_last_24h: spent.host_last_day,
        remaining_last_24h: left(policy.max_per_host_per_day, spent.host_last_day),
        host,
    });
    let mut next = [policy.max_per_request, remaining_total]
        .into_iter()
        .flatten()
        .fold(balance, u64::min);
    if let Some(h) = &host {
        if !h.allowed {
            next = 0;
        }
        if let Some(r) = h.remaining_last_24h {
            next = next.min(r);
        }
    }
    Budget {
        unit: "sat".into(),
        balance,
        max_per_request: policy.max_per_request,
        max_per_host_per_day: policy.max_per_host_per_day,
        max_total: policy.max_total,
        spent_total: spent.total,
        remaining_total,
        host,
        next_request_max: next,
        allowed_hosts: policy.allowed_hosts.clone(),
        allowed_mints: policy.allowed_mints.clone(),
        allowance_draw_room: AllowanceDrawRoom::NotConnected,
    }
}

/// Whether a host pattern admits `host` on some port (a pattern with a port admits it there).
fn host_allows_any_port(pattern: &str, host: &str) -> bool {
    let port = split_port(pattern.trim())
        .1
        .and_then(|p| p.parse::<u16>().ok());
    host_matches(pattern, host, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            max_per_request: Some(50),
            max_per_host_per_day: Some(100),
            max_total: Some(1_000),
            allowed_hosts: vec!["*.example.com".into(), "localhost:8080".into()],
            allowed_mints: vec!["*".into()],
            ..Policy::default()
        }
    }

    #[test]
    fn the_smallest_cap_left_bounds_the_next_request() {
        let spent = Spent {
            host_last_day: 80,
            total: 900,
        };
        let b = compute(&policy(), Some("api.example.com".into()), spent, 500);
        let h = b.host.clone().unwrap();
        assert!(h.allowed);
        assert_eq!((h.spent_last_24h, h.remaining_last_24h), (80, Some(20)));
        assert_eq!(b.remaining_total, Some(100));
        assert_eq!(b.next_request_max, 20);
        // Without a host the per-request cap and the total bound it; a small balance too.
        let b = compute(&policy(), None, spent, 30);
        assert_eq!(b.next_request_max, 30);
        let b = compute(&policy(), None, spent, 500);
        assert_eq!(b.next_request_max, 50);
    }

    #[test]
    fn a_host_the_policy_does_not_allow_gets_nothing() {
        let b = compute(&policy(), Some("evil.test".into()), Spent::default(), 500);
        assert!(!b.host.unwrap().allowed);
        assert_eq!(b.next_request_max, 0);
        let b = compute(&policy(), Some("localhost".into()), Spent::default(), 500);
        assert!(b.host.unwrap().allowed, "localhost:8080 admits localhost");
    }

    #[test]
    fn unlimited_caps_serialize_as_unlimited_and_allowances_are_not_connected() {
        let p = Policy {
            max_per_request: None,
            max_per_host_per_day: None,
            max_total: None,
            ..policy()
        };
        let b = compute(&p, Some("a.example.com".into()), Spent::default(), 7);
        assert_eq!(b.next_request_max, 7);
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["max_total"], "unlimited");
        assert_eq!(v["remaining_total"], "unlimited");
        assert_eq!(v["host"]["remaining_last_24h"], "unlimited");
        assert_eq!(v["allowance_draw_room"], "not connected");
    }
}
