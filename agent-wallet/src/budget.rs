//! What the spending policy still allows ([`AgentWallet::budget`]), so an agent can plan before
//! it asks for something that costs money.

use serde::Serialize;

use crate::error::WalletError;
use crate::policy::{host_matches, split_port, Policy, Spent};
use crate::store::now_unix;
use crate::wallet::AgentWallet;

/// The draw room of the allowance connected to the wallet, if any: when a payment needs more
/// than the wallet holds at the allowance's mint, the wallet draws the shortfall first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowanceDrawRoom {
    /// No allowance is connected (`"not connected"` in JSON).
    NotConnected,
    /// What the mint says the allowance still allows.
    Connected(ConnectedRoom),
    /// An allowance is connected but the mint could not be asked, or refused to answer.
    Unavailable(UnavailableRoom),
}

/// A connected allowance's room, as its mint reported it just now. Amounts in sat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectedRoom {
    pub mint: String,
    pub allowance: String,
    /// `active`, `awaiting_payment`, `expired` or `revoked`.
    pub state: String,
    /// Left in the allowance.
    pub balance: u64,
    pub drawn_24h: u64,
    pub max_per_draw: u64,
    pub max_per_day: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The most one draw may take now (what the next payment can add to the wallet).
    pub draw_now: u64,
    /// The most all draws may take before the rolling day frees room.
    pub draw_room_24h: u64,
}

/// A connected allowance whose mint did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnavailableRoom {
    pub mint: String,
    pub allowance: String,
    /// Always `unavailable`.
    pub state: &'static str,
    pub detail: String,
}

impl Serialize for AllowanceDrawRoom {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::NotConnected => s.serialize_str("not connected"),
            Self::Connected(room) => room.serialize(s),
            Self::Unavailable(room) => room.serialize(s),
        }
    }
}

impl AllowanceDrawRoom {
    /// What a draw can add to the wallet before the next payment (0 unless connected).
    pub fn draw_now(&self) -> u64 {
        match self {
            Self::Connected(room) => room.draw_now,
            _ => 0,
        }
    }
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
    /// of the per-request cap, what is left of the caps, and the balance plus what one draw
    /// from the connected allowance may add (0 if the host is not allowed).
    pub next_request_max: u64,
    pub allowed_hosts: Vec<String>,
    pub allowed_mints: Vec<String>,
    /// Room left on the connected allowance (asked of its mint); `"not connected"` without one.
    pub allowance_draw_room: AllowanceDrawRoom,
}

impl AgentWallet {
    /// What the policy still allows: the caps, what the ledger says is spent, and the most the
    /// next request may cost. With `host` (a host name such as `api.example.com`), also what
    /// that host may still be paid in the rolling 24 hours. Local, except that a connected
    /// allowance's room is asked of its mint (an unreachable mint makes it `unavailable`, not
    /// an error).
    pub async fn budget(&self, host: Option<&str>) -> Result<Budget, WalletError> {
        let balance = self.balances().await?.total;
        let host = host.map(normalize_host).filter(|h| !h.is_empty());
        let spent = self
            .store
            .spent(host.as_deref().unwrap_or_default(), now_unix())?;
        let room = self.allowance_room().await?;
        Ok(compute(&self.policy, host, spent, balance, room))
    }

    async fn allowance_room(&self) -> Result<AllowanceDrawRoom, WalletError> {
        let Some(info) = self.allowance()? else {
            return Ok(AllowanceDrawRoom::NotConnected);
        };
        Ok(match self.allowance_status().await {
            Ok(s) => AllowanceDrawRoom::Connected(ConnectedRoom {
                mint: info.mint,
                allowance: info.allowance,
                state: s.state,
                balance: s.balance,
                drawn_24h: s.drawn_24h,
                max_per_draw: s.policy.max_per_draw,
                max_per_day: s.policy.max_per_day,
                expires_at: s.policy.expires_at,
                draw_now: s.draw_now,
                draw_room_24h: s.draw_room_24h,
            }),
            Err(e) => AllowanceDrawRoom::Unavailable(UnavailableRoom {
                mint: info.mint,
                allowance: info.allowance,
                state: "unavailable",
                detail: e.to_string(),
            }),
        })
    }
}

/// A host name as the ledger keys it: lower case, no trailing dot.
fn normalize_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn compute(
    policy: &Policy,
    host: Option<String>,
    spent: Spent,
    balance: u64,
    room: AllowanceDrawRoom,
) -> Budget {
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
        .fold(balance.saturating_add(room.draw_now()), u64::min);
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
        allowance_draw_room: room,
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
        let b = compute(
            &policy(),
            Some("api.example.com".into()),
            spent,
            500,
            AllowanceDrawRoom::NotConnected,
        );
        let h = b.host.clone().unwrap();
        assert!(h.allowed);
        assert_eq!((h.spent_last_24h, h.remaining_last_24h), (80, Some(20)));
        assert_eq!(b.remaining_total, Some(100));
        assert_eq!(b.next_request_max, 20);
        // Without a host the per-request cap and the total bound it; a small balance too.
        let b = compute(&policy(), None, spent, 30, AllowanceDrawRoom::NotConnected);
        assert_eq!(b.next_request_max, 30);
        let b = compute(&policy(), None, spent, 500, AllowanceDrawRoom::NotConnected);
        assert_eq!(b.next_request_max, 50);
    }

    #[test]
    fn a_host_the_policy_does_not_allow_gets_nothing() {
        let b = compute(
            &policy(),
            Some("evil.test".into()),
            Spent::default(),
            500,
            AllowanceDrawRoom::NotConnected,
        );
        assert!(!b.host.unwrap().allowed);
        assert_eq!(b.next_request_max, 0);
        let b = compute(
            &policy(),
            Some("localhost".into()),
            Spent::default(),
            500,
            AllowanceDrawRoom::NotConnected,
        );
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
        let b = compute(
            &p,
            Some("a.example.com".into()),
            Spent::default(),
            7,
            AllowanceDrawRoom::NotConnected,
        );
        assert_eq!(b.next_request_max, 7);
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["max_total"], "unlimited");
        assert_eq!(v["remaining_total"], "unlimited");
        assert_eq!(v["host"]["remaining_last_24h"], "unlimited");
        assert_eq!(v["allowance_draw_room"], "not connected");
    }

    fn room(draw_now: u64) -> AllowanceDrawRoom {
        AllowanceDrawRoom::Connected(ConnectedRoom {
            mint: "http://127.0.0.1:3338".into(),
            allowance: "al0123456789abcdef01234567".into(),
            state: "active".into(),
            balance: 900,
            drawn_24h: 100,
            max_per_draw: draw_now,
            max_per_day: 1000,
            expires_at: None,
            draw_now,
            draw_room_24h: 900,
        })
    }

    #[test]
    fn a_connected_allowance_adds_one_draw_to_what_the_next_request_may_cost() {
        let spent = Spent::default();
        // 30 held + one draw of at most 40: 70, under the per-request cap of 50 → 50.
        let b = compute(&policy(), None, spent, 30, room(40));
        assert_eq!(b.next_request_max, 50);
        let b = compute(&policy(), None, spent, 5, room(20));
        assert_eq!(b.next_request_max, 25);
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["allowance_draw_room"]["draw_now"], 20);
        assert_eq!(v["allowance_draw_room"]["state"], "active");
        assert_eq!(v["allowance_draw_room"]["max_per_day"], 1000);
        // A host the policy refuses still gets nothing.
        let b = compute(&policy(), Some("evil.test".into()), spent, 5, room(20));
        assert_eq!(b.next_request_max, 0);
        // An unreachable mint adds nothing and says why.
        let gone = AllowanceDrawRoom::Unavailable(UnavailableRoom {
            mint: "http://127.0.0.1:1".into(),
            allowance: "al0123456789abcdef01234567".into(),
            state: "unavailable",
            detail: "connection refused".into(),
        });
        let b = compute(&policy(), None, spent, 5, gone);
        assert_eq!(b.next_request_max, 5);
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["allowance_draw_room"]["state"], "unavailable");
    }
}
