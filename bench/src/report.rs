//! The printed table, the ratios between mints, and the JSON file.

use serde::Serialize;

use crate::load::Measurement;

/// The operation names of the paywall runs (see `workloads::paywall_suite`).
pub const PAID_OP: &str = "paid GET /weather";
pub const UNPAID_OP: &str = "unpaid GET /health";

/// A target that was not measured, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub target: String,
    pub reason: String,
}

/// Our throughput divided by a peer's, for one operation.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub op: String,
    pub concurrency: usize,
    pub ours: String,
    pub peer: String,
    pub throughput_ratio: f64,
}

/// What a paywall adds to one request: paid p50 at concurrency 1 minus the unpaid p50 of the
/// same server.
#[derive(Debug, Clone, Serialize)]
pub struct Overhead {
    pub target: String,
    pub paid_p50_ms: f64,
    pub unpaid_p50_ms: f64,
    pub added_p50_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: String,
    pub cpus: usize,
    pub measurements: Vec<Measurement>,
    pub ratios: Vec<Ratio>,
    pub paywall_overhead: Vec<Overhead>,
    pub skipped: Vec<Skipped>,
}

impl Report {
    /// Fills `ratios`: `ours` against every other target with the same op and concurrency.
    pub fn compute_ratios(&mut self, ours: &str) {
        let mut ratios = Vec::new();
        for m in self.measurements.iter().filter(|m| m.target == ours) {
            for p in self.measurements.iter().filter(|p| {
                p.target != ours
                    && p.op == m.op
                    && p.concurrency == m.concurrency
                    && p.ops_per_sec > 0.0
            }) {
                ratios.push(Ratio {
                    op: m.op.clone(),
                    concurrency: m.concurrency,
                    ours: ours.to_string(),
                    peer: p.target.clone(),
                    throughput_ratio: m.ops_per_sec / p.ops_per_sec,
                });
            }
        }
        self.ratios = ratios;

        let find = |target: &str, op: &str| {
            self.measurements
                .iter()
                .find(|m| m.target == target && m.op == op && m.concurrency == 1 && m.ok > 0)
        };
        let mut overhead = Vec::new();
        for paid in self
            .measurements
            .iter()
            .filter(|m| m.op == PAID_OP && m.concurrency == 1 && m.ok > 0)
        {
            if let (Some(p), Some(u)) = (find(&paid.target, PAID_OP), find(&paid.target, UNPAID_OP))
            {
                overhead.push(Overhead {
                    target: p.target.clone(),
                    paid_p50_ms: p.p50_ms,
                    unpaid_p50_ms: u.p50_ms,
                    added_p50_ms: p.p50_ms - u.p50_ms,
                });
            }
        }
        self.paywall_overhead = overhead;
    }

    /// The table as Markdown (also readable on a terminal).
    pub fn table(&self) -> String {
        let mut s = String::new();
        s.push_str("| target | operation | conc | ok | errors | ops/s | p50 ms | p99 ms |\n");
        s.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
        for m in &self.measurements {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {:.1} | {:.2} | {:.2} |\n",
                m.target, m.op, m.concurrency, m.ok, m.errors, m.ops_per_sec, m.p50_ms, m.p99_ms
            ));
        }
        if !self.ratios.is_empty() {
            s.push_str("\n| operation | conc | ours / peer | throughput ratio |\n");
            s.push_str("|---|---:|---|---:|\n");
            for r in &self.ratios {
                s.push_str(&format!(
                    "| {} | {} | {} / {} | {:.2}× |\n",
                    r.op, r.concurrency, r.ours, r.peer, r.throughput_ratio
                ));
            }
        }
        if !self.paywall_overhead.is_empty() {
            s.push_str("\n| paywall | paid p50 ms | unpaid p50 ms | added p50 ms |\n");
            s.push_str("|---|---:|---:|---:|\n");
            for o in &self.paywall_overhead {
                s.push_str(&format!(
                    "| {} | {:.2} | {:.2} | {:.2} |\n",
                    o.target, o.paid_p50_ms, o.unpaid_p50_ms, o.added_p50_ms
                ));
            }
        }
        for k in &self.skipped {
            s.push_str(&format!("\nskipped {}: {}", k.target, k.reason));
        }
        for m in self.measurements.iter().filter(|m| m.errors > 0) {
            s.push_str(&format!(
                "\nerrors in {} {} (c={}): {}",
                m.target,
                m.op,
                m.concurrency,
                m.first_error.as_deref().unwrap_or("")
            ));
        }
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(target: &str, op: &str, ops: f64) -> Measurement {
        Measurement {
            target: target.into(),
            op: op.into(),
            concurrency: 8,
            ok: 10,
            errors: 0,
            first_error: None,
            secs: 1.0,
            ops_per_sec: ops,
            p50_ms: 1.0,
            p99_ms: 2.0,
        }
    }

    #[test]
    fn ratios_compare_same_op_and_concurrency_only() {
        let mut r = Report {
            mode: "full".into(),
            cpus: 2,
            measurements: vec![m("ours", "swap", 100.0), m("peer", "swap", 25.0)],
            ratios: vec![],
            paywall_overhead: vec![],
            skipped: vec![],
        };
        r.measurements.push(m("peer", "mint", 1.0));
        r.compute_ratios("ours");
        assert_eq!(r.ratios.len(), 1);
        assert_eq!(r.ratios[0].throughput_ratio, 4.0);
        assert!(r.table().contains("4.00×"));
    }

    #[test]
    fn overhead_is_paid_minus_unpaid_p50_at_concurrency_1() {
        let mut paid = m("pw", PAID_OP, 10.0);
        paid.concurrency = 1;
        paid.p50_ms = 3.5;
        let mut unpaid = m("pw", UNPAID_OP, 100.0);
        unpaid.concurrency = 1;
        unpaid.p50_ms = 0.5;
        let mut r = Report {
            mode: "full".into(),
            cpus: 2,
            measurements: vec![unpaid, paid, m("pw", PAID_OP, 20.0)],
            ratios: vec![],
            paywall_overhead: vec![],
            skipped: vec![],
        };
        r.compute_ratios("ours");
        assert_eq!(r.paywall_overhead.len(), 1);
        assert_eq!(r.paywall_overhead[0].added_p50_ms, 3.0);
        assert!(r.table().contains("| pw | 3.50 | 0.50 | 3.00 |"));
    }
}
