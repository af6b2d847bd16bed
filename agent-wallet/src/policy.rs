//! The spending policy a human sets: caps and allow-lists checked before any ecash leaves.
//!
//! Amounts are in the wallet's unit (sat). A cap of `None` means unlimited (written
//! `"unlimited"` in the config file). The caps count what a payment costs the wallet: the
//! price plus the fees it pays (the receiver's input fee that `include_fee` adds, and any swap).

use std::fmt;
use std::str::FromStr;

use cashu_402::SchemeKind;
use cdk::mint_url::MintUrl;
use serde::{Deserialize, Serialize};

/// The policy: three caps and two allow-lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Most one request may cost (price plus fees).
    #[serde(with = "limit")]
    pub max_per_request: Option<u64>,
    /// Most one host may be paid in any rolling 24 hours (from the ledger).
    #[serde(with = "limit")]
    pub max_per_host_per_day: Option<u64>,
    /// Most the wallet may spend in all (from the ledger, sends included).
    #[serde(with = "limit")]
    pub max_total: Option<u64>,
    /// Hosts that may be paid: `api.example.com`, `*.example.com` (subdomains only), `*`
    /// (any), optionally with a port (`localhost:8080`).
    pub allowed_hosts: Vec<String>,
    /// Mints whose ecash may be spent: mint URLs, or `*` for any mint the wallet holds ecash at.
    pub allowed_mints: Vec<String>,
    /// The 402 schemes the wallet pays, most preferred first, when one answer offers several:
    /// `cashu` (NUT-24 `X-Cashu`: no Lightning fee, no round trip to the mint), `l402` (a
    /// Lightning invoice paid by melting ecash at the mint, fee reserve counted in the cost),
    /// `x402-cashu` (x402's `PAYMENT-REQUIRED` with our `cashu` scheme). An offer the wallet
    /// cannot pay (no ecash at its mints, another unit) falls through to the next; a scheme not
    /// listed is never paid.
    pub schemes: Vec<SchemeKind>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_per_request: Some(100),
            max_per_host_per_day: Some(1_000),
            max_total: None,
            allowed_hosts: vec!["*".into()],
            allowed_mints: vec!["*".into()],
            schemes: SchemeKind::DEFAULT_ORDER.to_vec(),
        }
    }
}

/// Why the policy refuses a payment. Nothing has been spent when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("host {host} is not in the allowed hosts")]
    HostNotAllowed { host: String },
    #[error("none of the mints the challenge accepts ({mints}) is allowed by the policy")]
    MintNotAllowed { mints: String },
    #[error("cost {cost} exceeds the per-request maximum of {max}")]
    PerRequest { cost: u64, max: u64 },
    #[error("cost {cost} exceeds --max-cost {max}")]
    MaxCost { cost: u64, max: u64 },
    #[error("cost {cost} would bring {host}'s last 24 h to {} (maximum {max})", spent + cost)]
    PerHostPerDay {
        host: String,
        cost: u64,
        spent: u64,
        max: u64,
    },
    #[error("cost {cost} would bring the total spent to {} (maximum {max})", spent + cost)]
    Total { cost: u64, spent: u64, max: u64 },
}

impl PolicyViolation {
    /// A stable machine-readable name for JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::HostNotAllowed { .. } => "host_not_allowed",
            Self::MintNotAllowed { .. } => "mint_not_allowed",
            Self::PerRequest { .. } => "max_per_request",
            Self::MaxCost { .. } => "max_cost",
            Self::PerHostPerDay { .. } => "max_per_host_per_day",
            Self::Total { .. } => "max_total",
        }
    }
}

/// What the ledger says was already spent, for the caps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    /// Spent at this host in the last 24 hours.
    pub host_last_day: u64,
    /// Spent in all.
    pub total: u64,
}

/// An error in a `policy set KEY VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicySetError {
    #[error("unknown policy key {0:?} (keys: max_per_request, max_per_host_per_day, max_total, allowed_hosts, allowed_mints, schemes)")]
    UnknownKey(String),
    #[error("{key} takes a whole number or \"unlimited\", not {value:?}")]
    BadLimit { key: String, value: String },
    #[error("bad host pattern {0:?}: use api.example.com, *.example.com, host:port or *")]
    BadHostPattern(String),
    #[error("bad mint {0:?}: use a mint URL or *")]
    BadMint(String),
    #[error("{0}")]
    BadScheme(String),
}

impl Policy {
    /// Sets one key from text, as `policy set` and `--policy KEY=VALUE` do. Lists are
    /// comma-separated; an empty value is an empty list (nothing allowed).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), PolicySetError> {
        let value = value.trim();
        match key {
            "max_per_request" => self.max_per_request = parse_limit(key, value)?,
            "max_per_host_per_day" => self.max_per_host_per_day = parse_limit(key, value)?,
            "max_total" => self.max_total = parse_limit(key, value)?,
            "allowed_hosts" => {
                let hosts = split_list(value);
                for h in &hosts {
                    validate_host_pattern(h)?;
                }
                self.allowed_hosts = hosts;
            }
            "allowed_mints" => {
                let mints = split_list(value);
                for m in &mints {
                    if m != "*" && MintUrl::from_str(m).is_err() {
                        return Err(PolicySetError::BadMint(m.clone()));
                    }
                }
                self.allowed_mints = mints;
            }
            "schemes" => {
                self.schemes = split_list(value)
                    .iter()
                    .map(|s| SchemeKind::from_str(s).map_err(PolicySetError::BadScheme))
                    .collect::<Result<_, _>>()?;
            }
            other => return Err(PolicySetError::UnknownKey(other.to_string())),
        }
        Ok(())
    }

    /// Checks every pattern, as a loaded config must pass.
    pub fn validate(&self) -> Result<(), PolicySetError> {
        for h in &self.allowed_hosts {
            validate_host_pattern(h)?;
        }
        for m in &self.allowed_mints {
            if m != "*" && MintUrl::from_str(m).is_err() {
                return Err(PolicySetError::BadMint(m.clone()));
            }
        }
        Ok(())
    }

    /// Whether `host` (with `port`, the URL's effective port) may be paid.
    pub fn check_host(&self, host: &str, port: Option<u16>) -> Result<(), PolicyViolation> {
        if self
            .allowed_hosts
            .iter()
            .any(|p| host_matches(p, host, port))
        {
            Ok(())
        } else {
            Err(PolicyViolation::HostNotAllowed {
                host: host.to_string(),
            })
        }
    }

    /// Whether ecash from `mint` may be spent.
    pub fn allows_mint(&self, mint: &MintUrl) -> bool {
        self.allowed_mints.iter().any(|m| {
            m == "*"
                || MintUrl::from_str(m)
                    .map(|allowed| &allowed == mint)
                    .unwrap_or(false)
        })
    }

    /// Checks a payment of `cost` to `host` against the caps, given what was `spent`, and the
    /// caller's own `max_cost` for this request.
    pub fn check_cost(
        &self,
        host: &str,
        cost: u64,
        max_cost: Option<u64>,
        spent: Spent,
    ) -> Result<(), PolicyViolation> {
        if let Some(max) = self.max_per_request {
            if cost > max {
                return Err(PolicyViolation::PerRequest { cost, max });
            }
        }
        if let Some(max) = max_cost {
            if cost > max {
                return Err(PolicyViolation::MaxCost { cost, max });
            }
        }
        if let Some(max) = self.max_per_host_per_day {
            if spent.host_last_day.saturating_add(cost) > max {
                return Err(PolicyViolation::PerHostPerDay {
                    host: host.to_string(),
                    cost,
                    spent: spent.host_last_day,
                    max,
                });
            }
        }
        self.check_total(cost, spent.total)
    }

    /// Checks the total cap alone (used for plain sends, which have no host).
    pub fn check_total(&self, cost: u64, spent_total: u64) -> Result<(), PolicyViolation> {
        if let Some(max) = self.max_total {
            if spent_total.saturating_add(cost) > max {
                return Err(PolicyViolation::Total {
                    cost,
                    spent: spent_total,
                    max,
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = |l: Option<u64>| l.map_or("unlimited".to_string(), |v| v.to_string());
        writeln!(f, "max_per_request = {}", limit(self.max_per_request))?;
        writeln!(
            f,
            "max_per_host_per_day = {}",
            limit(self.max_per_host_per_day)
        )?;
        writeln!(f, "max_total = {}", limit(self.max_total))?;
        writeln!(f, "allowed_hosts = {}", self.allowed_hosts.join(","))?;
        write!(f, "allowed_mints = {}", self.allowed_mints.join(","))
    }
}

fn parse_limit(key: &str, value: &str) -> Result<Option<u64>, PolicySetError> {
    match value {
        "unlimited" | "none" => Ok(None),
        v => v.parse().map(Some).map_err(|_| PolicySetError::BadLimit {
            key: key.to_string(),
            value: v.to_string(),
        }),
    }
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn validate_host_pattern(pattern: &str) -> Result<(), PolicySetError> {
    let bad = || PolicySetError::BadHostPattern(pattern.to_string());
    if pattern == "*" {
        return Ok(());
    }
    let (name, port) = split_port(pattern);
    if let Some(port) = port {
        port.parse::<u16>().map_err(|_| bad())?;
    }
    let name = name.strip_prefix("*.").unwrap_or(name);
    let ok = !name.is_empty()
        && !name.contains('*')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':'));
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Splits `host:port` (an IPv6 literal keeps its brackets). Returns the port text if any.
pub(crate) fn split_port(pattern: &str) -> (&str, Option<&str>) {
    if let Some(rest) = pattern.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let after = &rest[end + 1..];
            let name = &pattern[..end + 2];
            return (name, after.strip_prefix(':'));
        }
        return (pattern, None);
    }
    match pattern.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (pattern, None),
    }
}

/// Whether a host pattern matches. Names compare case-insensitively, ignoring a trailing dot.
/// `*.example.com` matches subdomains at any depth but not `example.com` itself.
pub fn host_matches(pattern: &str, host: &str, port: Option<u16>) -> bool {
    let pattern = pattern.trim();
    if pattern == "*" {
        return true;
    }
    let (name, want_port) = split_port(pattern);
    if let Some(want) = want_port {
        match (want.parse::<u16>(), port) {
            (Ok(w), Some(p)) if w == p => {}
            _ => return false,
        }
    }
    let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
    let host = norm(host);
    match name.strip_prefix("*.") {
        Some(suffix) => {
            let suffix = norm(suffix);
            host.len() > suffix.len() + 1
                && host.ends_with(&suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        }
        None => norm(name) == host,
    }
}

/// Serde for caps: an integer, or `"unlimited"`.
pub(crate) mod limit {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_u64(*n),
            None => s.serialize_str("unlimited"),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Some(n)),
            Raw::Text(t) if t == "unlimited" || t == "none" => Ok(None),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "expected a whole number or \"unlimited\", got {t:?}"
            ))),
        }
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
