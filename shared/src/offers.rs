//! Everything one 402 answer offers: `X-Cashu` (NUT-24), `WWW-Authenticate: L402` and x402
//! (`PAYMENT-REQUIRED` v2 header, or the v1 JSON body), gathered into one list so that a payer
//! can choose by its own rule. Offers that cannot be paid (malformed, other x402 schemes or
//! networks) are kept as [`Unsupported`] with the reason, so the payer can report them.

use crate::l402::{L402Challenge, WWW_AUTHENTICATE};
use crate::nut24::{Challenge, X_CASHU};
use crate::x402::PAYMENT_REQUIRED;
use crate::x402::{CashuRequirements, PaymentRequired, PaymentRequirements, X402Version};

/// The scheme families we name in policies, ledgers and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchemeKind {
    /// NUT-24 `X-Cashu`.
    Cashu,
    /// L402 / LSAT.
    L402,
    /// x402 with our `cashu` scheme.
    X402Cashu,
}

impl SchemeKind {
    /// The name in ledgers, configs and reports: `cashu`, `l402`, `x402-cashu`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cashu => "cashu",
            Self::L402 => "l402",
            Self::X402Cashu => "x402-cashu",
        }
    }

    /// The default preference: Cashu first (no Lightning fee, no round trip to the mint), then
    /// L402, then x402-cashu.
    pub const DEFAULT_ORDER: [SchemeKind; 3] = [Self::Cashu, Self::L402, Self::X402Cashu];
}

impl std::fmt::Display for SchemeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SchemeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cashu" | "x-cashu" | "nut24" | "nut-24" => Ok(Self::Cashu),
            "l402" | "lsat" => Ok(Self::L402),
            "x402-cashu" | "x402" => Ok(Self::X402Cashu),
            other => Err(format!(
                "unknown 402 scheme `{other}` (known: cashu, l402, x402-cashu)"
            )),
        }
    }
}

/// A payable offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    Cashu(Challenge),
    L402(L402Challenge),
    X402Cashu {
        version: X402Version,
        /// The entry as offered, echoed in a v2 credential.
        entry: Box<PaymentRequirements>,
        requirements: Box<CashuRequirements>,
    },
}

impl Offer {
    pub fn kind(&self) -> SchemeKind {
        match self {
            Self::Cashu(_) => SchemeKind::Cashu,
            Self::L402(_) => SchemeKind::L402,
            Self::X402Cashu { .. } => SchemeKind::X402Cashu,
        }
    }
}

/// An offer we cannot pay, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// Where it came from: `X-Cashu`, `WWW-Authenticate`, `PAYMENT-REQUIRED`, `body`.
    pub source: &'static str,
    /// e.g. `x402 exact on eip155:8453`, `L402`.
    pub what: String,
    pub reason: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.what, self.source, self.reason)
    }
}

/// Everything one 402 offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offers {
    pub offers: Vec<Offer>,
    pub unsupported: Vec<Unsupported>,
}

impl Offers {
    /// Gathers the offers of a 402 from its headers (name, value; names case-insensitive, a name
    /// may repeat) and its body. The x402 v1 body is read only when there is no v2 header (v2
    /// bodies may duplicate the header).
    pub fn collect<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        body: Option<&[u8]>,
    ) -> Self {
        let mut out = Self::default();
        let mut www_auth = Vec::new();
        let mut saw_v2 = false;
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(X_CASHU) {
                match Challenge::parse(value) {
                    Ok(c) => out.offers.push(Offer::Cashu(c)),
                    Err(e) => out.unsupported.push(Unsupported {
                        source: X_CASHU,
                        what: "Cashu NUT-24".into(),
                        reason: e.to_string(),
                    }),
                }
            } else if name.eq_ignore_ascii_case(WWW_AUTHENTICATE) {
                www_auth.push(value);
            } else if name.eq_ignore_ascii_case(PAYMENT_REQUIRED) {
                saw_v2 = true;
                match PaymentRequired::from_header(value) {
                    Ok(pr) => out.add_x402(&pr, PAYMENT_REQUIRED),
                    Err(e) => out.unsupported.push(Unsupported {
                        source: PAYMENT_REQUIRED,
                        what: "x402".into(),
                        reason: e.to_string(),
                    }),
                }
            }
        }
        for l402 in L402Challenge::parse_all(www_auth) {
            match l402 {
                Ok(c) => out.offers.push(Offer::L402(c)),
                Err(e) => out.unsupported.push(Unsupported {
                    source: WWW_AUTHENTICATE,
                    what: "L402".into(),
                    reason: e.to_string(),
                }),
            }
        }
        if !saw_v2 {
            if let Some(body) = body {
                match PaymentRequired::from_body(body) {
                    Ok(Some(pr)) => out.add_x402(&pr, "body"),
                    Ok(None) => {}
                    // A 402 body that is not JSON is ordinary; only report x402-looking ones.
                    Err(e) if looks_like_x402(body) => out.unsupported.push(Unsupported {
                        source: "body",
                        what: "x402".into(),
                        reason: e.to_string(),
                    }),
                    Err(_) => {}
                }
            }
        }
        out
    }

    fn add_x402(&mut self, pr: &PaymentRequired, source: &'static str) {
        let version = match pr.version() {
            Ok(v) => v,
            Err(e) => {
                self.unsupported.push(Unsupported {
                    source,
                    what: "x402".into(),
                    reason: e.to_string(),
                });
                return;
            }
        };
        for entry in &pr.accepts {
            let what = format!("x402 {} on {}", entry.scheme, entry.network);
            match entry.cashu() {
                Ok(requirements) => self.offers.push(Offer::X402Cashu {
                    version,
                    entry: Box::new(entry.clone()),
                    requirements: Box::new(requirements),
                }),
                Err(e) => self.unsupported.push(Unsupported {
                    source,
                    what,
                    reason: e.to_string(),
                }),
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.offers.is_empty()
    }

    /// The first offer in `preference` order (kinds not listed are never chosen), and within a
    /// kind the first offered.
    pub fn choose(&self, preference: &[SchemeKind]) -> Option<&Offer> {
        preference
            .iter()
            .find_map(|kind| self.offers.iter().find(|o| o.kind() == *kind))
    }

    /// The unsupported offers, one per line, for error messages.
    pub fn describe_unsupported(&self) -> String {
        self.unsupported
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn looks_like_x402(body: &[u8]) -> bool {
    body.windows(b"x402Version".len())
        .any(|w| w == b"x402Version")
}

#[cfg(test)]
#[path = "offers_tests.rs"]
mod tests;
