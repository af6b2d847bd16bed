//! The gateway's price table: which offer a request falls under.
//!
//! The longest matching `path_prefix` wins; between rules with the same prefix, one naming the
//! request's method beats one for any method. Prefixes match as plain strings (`/weather` also
//! covers `/weather.json` and `/weatherx`), which charges too much rather than too little.
//! Paths that are not in canonical form (`//`, `/./`, `/../`, percent-encoded `.` or `/`) are
//! refused before matching, because an upstream that normalises them could otherwise serve a
//! priced resource under an unpriced spelling.

use std::str::FromStr;

use axum::http::Method;
use cdk::nuts::CurrencyUnit;

use super::config::{ConfigError, GatewayConfig};
use crate::paywall::{Offer, Paywall, Price};

struct Rule {
    method: Option<Method>,
    prefix: String,
    offer: Offer,
}

/// Rules compiled into offers.
pub struct PriceTable {
    rules: Vec<Rule>,
}

impl PriceTable {
    /// Compiles `config`'s rules under `paywall`'s defaults.
    pub fn new(config: &GatewayConfig, paywall: &Paywall) -> Result<Self, ConfigError> {
        let mut rules = Vec::new();
        for r in &config.prices {
            let method = match r.method.as_deref() {
                None | Some("*") => None,
                Some(m) => Some(Method::from_str(&m.to_ascii_uppercase()).map_err(|e| {
                    ConfigError::Invalid {
                        key: "price.method",
                        reason: e.to_string(),
                    }
                })?),
            };
            let unit = CurrencyUnit::from_str(&r.unit).map_err(|e| ConfigError::Invalid {
                key: "price.unit",
                reason: e.to_string(),
            })?;
            let mut offer = paywall.offer(Price::new(r.amount, unit));
            if let Some(lock) = r.lock {
                offer.lock = lock.then(|| paywall.merchant().pubkey());
                offer.require_dleq = config.require_dleq.unwrap_or(lock);
            }
            rules.push(Rule {
                method,
                prefix: r.path_prefix.clone(),
                offer,
            });
        }
        Ok(Self { rules })
    }

    /// The offer `method path` falls under, if any.
    pub fn find(&self, method: &Method, path: &str) -> Option<&Offer> {
        self.rules
            .iter()
            .filter(|r| path.starts_with(&r.prefix))
            .filter(|r| r.method.as_ref().is_none_or(|m| m == method))
            .max_by_key(|r| (r.prefix.len(), r.method.is_some()))
            .map(|r| &r.offer)
    }
}

/// Whether `path` is in canonical form (see the module docs).
pub fn canonical_path(path: &str) -> bool {
    if !path.starts_with('/') || path.contains("//") {
        return false;
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return false;
    }
    let lower = path.to_ascii_lowercase();
    !(lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
        || path.contains('\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths() {
        for ok in ["/", "/weather", "/weather/today", "/a.b/c", "/x%20y"] {
            assert!(canonical_path(ok), "{ok}");
        }
        for bad in [
            "//weather",
            "/./weather",
            "/a/../weather",
            "/%2e%2e/weather",
            "/%2Fweather",
            "/a\\b",
            "weather",
        ] {
            assert!(!canonical_path(bad), "{bad}");
        }
    }
}
