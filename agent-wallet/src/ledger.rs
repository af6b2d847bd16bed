//! The spend ledger: one row per payment, with its outcome, exported as JSON or CSV.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// What became of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The token is made and on its way; the answer is not in yet (or the wallet crashed and
    /// has not recovered yet).
    Pending,
    /// The server answered the paid request with a status below 400.
    Paid,
    /// The server answered the paid request with an error. If the token was not redeemed the
    /// wallet took it back (`counted` is false).
    RefusedByServer,
    /// The payment did not go through and the ecash stayed in (or came back to) the wallet.
    Failed,
    /// The token was redeemed but no answer came (a crash or a lost connection).
    Unknown,
    /// Ecash drawn from a metered allowance into the wallet (incoming: counts against no cap).
    Drawn,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::RefusedByServer => "refused-by-server",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
            Self::Drawn => "drawn",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => Self::Pending,
            "paid" => Self::Paid,
            "refused-by-server" => Self::RefusedByServer,
            "failed" => Self::Failed,
            "unknown" => Self::Unknown,
            "drawn" => Self::Drawn,
            other => return Err(format!("unknown outcome {other:?}")),
        })
    }
}

/// The scheme name of NUT-24 payments in the ledger.
pub const SCHEME_CASHU: &str = "cashu";
/// The scheme name of L402 payments (a Lightning invoice paid by melting ecash).
pub const SCHEME_L402: &str = "l402";
/// The scheme name of x402 payments with the `cashu` scheme.
pub const SCHEME_X402_CASHU: &str = "x402-cashu";
/// The method recorded for a plain `send` (a token handed out, not an HTTP payment).
pub const METHOD_SEND: &str = "SEND";
/// The method and scheme recorded for a draw from a metered allowance.
pub const METHOD_DRAW: &str = "DRAW";
pub const SCHEME_ALLOWANCE: &str = "allowance";

/// One payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    pub id: String,
    /// Unix seconds when the payment started.
    pub time: u64,
    pub host: String,
    pub path: String,
    pub method: String,
    /// The price asked (net of the receiver's fee).
    pub amount: u64,
    /// Fees the wallet paid on top: the receiver's input fee added to the token, swaps, and
    /// the fee of taking a token back.
    pub fee: u64,
    pub unit: String,
    pub scheme: String,
    pub mint: String,
    pub outcome: Outcome,
    /// Whether `amount` left the wallet for good (and counts against the caps).
    pub counted: bool,
    /// The HTTP status of the answer to the paid request, if one came.
    pub status: Option<u16>,
    pub detail: String,
}

impl LedgerEntry {
    /// What the payment cost the wallet: the amount if it left, plus fees.
    pub fn cost(&self) -> u64 {
        let amount = if self.counted { self.amount } else { 0 };
        amount.saturating_add(self.fee)
    }
}

/// The CSV header line, in the order [`to_csv`] writes fields.
pub const CSV_COLUMNS: [&str; 15] = [
    "id", "time", "time_utc", "host", "path", "method", "amount", "fee", "cost", "unit", "scheme",
    "mint", "outcome", "status", "detail",
];

/// The ledger as a JSON array (each row also carries `time_utc` and `cost`).
pub fn to_json(entries: &[LedgerEntry]) -> serde_json::Value {
    serde_json::Value::Array(
        entries
            .iter()
            .map(|e| {
                let mut v = serde_json::json!({
                    "id": e.id, "time": e.time, "time_utc": rfc3339(e.time), "host": e.host,
                    "path": e.path, "method": e.method, "amount": e.amount, "fee": e.fee,
                    "cost": e.cost(), "unit": e.unit, "scheme": e.scheme, "mint": e.mint,
                    "outcome": e.outcome.as_str(), "counted": e.counted, "status": e.status,
                    "detail": e.detail,
                });
                if e.detail.is_empty() {
                    if let Some(map) = v.as_object_mut() {
                        map.remove("detail");
                    }
                }
                v
            })
            .collect(),
    )
}

/// The ledger as CSV (RFC 4180, CRLF line ends, a header line).
pub fn to_csv(entries: &[LedgerEntry]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for e in entries {
        let fields = [
            e.id.clone(),
            e.time.to_string(),
            rfc3339(e.time),
            e.host.clone(),
            e.path.clone(),
            e.method.clone(),
            e.amount.to_string(),
            e.fee.to_string(),
            e.cost().to_string(),
            e.unit.clone(),
            e.scheme.clone(),
            e.mint.clone(),
            e.outcome.to_string(),
            e.status.map(|s| s.to_string()).unwrap_or_default(),
            e.detail.clone(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One CSV field: quoted when it holds a comma, quote, CR or LF, or edge spaces (quotes
/// doubled). A field that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR
/// first) gets a leading `'`: paths and details come from servers and must not execute.
pub fn csv_field(value: &str) -> String {
    let mut v = String::with_capacity(value.len() + 2);
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        v.push('\'');
    }
    v.push_str(value);
    let needs_quotes = v.contains([',', '"', '\r', '\n']) || v.starts_with(' ') || v.ends_with(' ');
    if needs_quotes {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
