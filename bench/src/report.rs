//! The printed table, the ratios between mints, and the JSON file.

use serde::Serialize;

use crate::load::Measurement;

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

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: String,
    pub cpus: usize,
    pub measurements: Vec<Measurement>,
    pub ratios: Vec<Ratio>,
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
            skipped: vec![],
        };
        r.measurements.push(m("peer", "mint", 1.0));
        r.compute_ratios("ours");
        assert_eq!(r.ratios.len(), 1);
        assert_eq!(r.ratios[0].throughput_ratio, 4.0);
        assert!(r.table().contains("4.00×"));
    }
}
