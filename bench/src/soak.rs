//! The soak: mixed traffic (mint, swap, checkstate, melt) against one running mint for a fixed
//! time, with the mint's resident memory read from `/proc/<pid>/status` before, after a warm-up
//! and at the end. It fails when any operation fails or when memory grew past a bound after the
//! warm-up: caches and pools fill during the warm-up, so growth after it means a leak.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cdk::nuts::Proof;
use serde::Serialize;
use serde_json::json;

use crate::client::{MintClient, Outputs};
use crate::load::percentile;

/// How long, how hard, and how much growth is tolerated.
#[derive(Debug, Clone, Copy)]
pub struct SoakParams {
    pub duration: Duration,
    pub warmup: Duration,
    pub concurrency: usize,
    pub max_growth_kib: u64,
}

/// One kind of operation over the whole soak.
#[derive(Debug, Clone, Serialize)]
pub struct OpStats {
    pub op: String,
    pub ok: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// What the soak measured, printed and written as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub secs: f64,
    pub warmup_secs: f64,
    pub concurrency: usize,
    pub ops: Vec<OpStats>,
    pub total_ops: usize,
    pub ops_per_sec: f64,
    /// Resident set of the mint process (VmRSS), in KiB.
    pub rss_start_kib: u64,
    pub rss_warm_kib: u64,
    pub rss_end_kib: u64,
    pub rss_peak_kib: u64,
    /// Most `rss_end_kib` may exceed `rss_warm_kib`.
    pub max_growth_kib: u64,
}

impl SoakReport {
    /// Growth of the resident set after the warm-up, in KiB (0 when it shrank).
    pub fn growth_kib(&self) -> u64 {
        self.rss_end_kib.saturating_sub(self.rss_warm_kib)
    }

    /// Why the soak failed, if it did.
    pub fn verdict(&self) -> Result<(), String> {
        if let Some(op) = self.ops.iter().find(|o| o.errors > 0) {
            return Err(format!(
                "{} {} operations failed, first: {}",
                op.errors,
                op.op,
                op.first_error.as_deref().unwrap_or("?")
            ));
        }
        if let Some(op) = self.ops.iter().find(|o| o.ok == 0) {
            return Err(format!("no {} operation completed", op.op));
        }
        if self.growth_kib() > self.max_growth_kib {
            return Err(format!(
                "mint memory grew by {} KiB after the warm-up (bound {} KiB): {} → {} KiB",
                self.growth_kib(),
                self.max_growth_kib,
                self.rss_warm_kib,
                self.rss_end_kib
            ));
        }
        Ok(())
    }

    pub fn table(&self) -> String {
        let mut t =
            String::from("| operation | ok | errors | p50 ms | p99 ms |\n|---|---|---|---|---|\n");
        for o in &self.ops {
            t += &format!(
                "| {} | {} | {} | {:.1} | {:.1} |\n",
                o.op, o.ok, o.errors, o.p50_ms, o.p99_ms
            );
        }
        t += &format!(
            "\n{} operations in {:.1} s at concurrency {}: {:.1} ops/s\n\
             mint RSS: start {} KiB, after {:.0} s warm-up {} KiB, end {} KiB, peak {} KiB; \
             growth after warm-up {} KiB (bound {} KiB)\n",
            self.total_ops,
            self.secs,
            self.concurrency,
            self.ops_per_sec,
            self.rss_start_kib,
            self.warmup_secs,
            self.rss_warm_kib,
            self.rss_end_kib,
            self.rss_peak_kib,
            self.growth_kib(),
            self.max_growth_kib
        );
        t
    }
}

/// The resident set of process `pid` in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    parse_vm_rss(&status).context("no VmRSS line in /proc/<pid>/status")
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

const OPS: [&str; 4] = ["mint", "swap", "checkstate", "melt"];

#[derive(Default)]
struct WorkerLog {
    latencies: [Vec<Duration>; 4],
    errors: [Vec<String>; 4],
}

/// Runs the soak against the mint at `url` whose process is `pid`.
pub async fn run(url: &str, pid: u32, p: SoakParams) -> anyhow::Result<SoakReport> {
    let client = Arc::new(MintClient::connect(url).await?);
    let rss_start = rss_kib(pid)?;
    let start = Instant::now();
    let deadline = start + p.duration;
    let mut workers = Vec::new();
    for _ in 0..p.concurrency.max(1) {
        let c = client.clone();
        workers.push(tokio::spawn(async move {
            let mut log = WorkerLog::default();
            while Instant::now() < deadline {
                cycle(&c, &mut log).await;
            }
            log
        }));
    }
    // Sample memory while the workers run: the value at the end of the warm-up, and the peak.
    let warm_at = start + p.warmup.min(p.duration);
    let mut rss_warm = None;
    let mut rss_peak = rss_start;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = rss_kib(pid)?;
        rss_peak = rss_peak.max(now);
        if rss_warm.is_none() && Instant::now() >= warm_at {
            rss_warm = Some(now);
        }
    }
    let mut total = WorkerLog::default();
    for w in workers {
        let log = w.await.context("soak worker panicked")?;
        for i in 0..OPS.len() {
            total.latencies[i].extend(&log.latencies[i]);
            total.errors[i].extend(log.errors[i].iter().cloned());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let rss_end = rss_kib(pid)?;
    let mut ops = Vec::new();
    let mut total_ops = 0;
    for (i, name) in OPS.iter().enumerate() {
        let lat = &mut total.latencies[i];
        lat.sort();
        total_ops += lat.len();
        ops.push(OpStats {
            op: name.to_string(),
            ok: lat.len(),
            errors: total.errors[i].len(),
            first_error: total.errors[i].first().cloned(),
            p50_ms: percentile(lat, 0.50),
            p99_ms: percentile(lat, 0.99),
        });
    }
    Ok(SoakReport {
        secs,
        warmup_secs: p.warmup.as_secs_f64(),
        concurrency: p.concurrency,
        ops,
        total_ops,
        ops_per_sec: total_ops as f64 / secs.max(f64::EPSILON),
        rss_start_kib: rss_start,
        rss_warm_kib: rss_warm.unwrap_or(rss_end),
        rss_end_kib: rss_end,
        rss_peak_kib: rss_peak.max(rss_end),
        max_growth_kib: p.max_growth_kib,
    })
}

/// One round of a wallet's life: mint 40 sat, swap part of it, check the states, melt 32 sat.
/// A failed step ends the round (the next one starts afresh with new ecash).
async fn cycle(c: &MintClient, log: &mut WorkerLog) {
    let t = Instant::now();
    let Some(mut proofs) = log.record(0, t, c.mint(&[32, 4, 2, 2]).await) else {
        return;
    };
    // Swap the 4 into 2 + 1 + 1.
    let Some(four) = proofs.iter().position(|p| u64::from(p.amount) == 4) else {
        log.errors[1].push("minted proofs lack the 4-sat one".into());
        return;
    };
    let input = proofs.swap_remove(four);
    let t = Instant::now();
    let Some(change) = log.record(1, t, swap(c, &input, &[2, 1, 1]).await) else {
        return;
    };
    proofs.extend(change);
    // The swapped-away proof is spent, the rest are not.
    let t = Instant::now();
    let states = async {
        check_states(c, &proofs, "UNSPENT").await?;
        check_states(c, std::slice::from_ref(&input), "SPENT").await
    };
    if log.record(2, t, states.await).is_none() {
        return;
    }
    // Melt 32 sat: the 32 plus a 2 for the fee reserve.
    let mut inputs = Vec::new();
    for amount in [32, 2] {
        match proofs.iter().position(|p| u64::from(p.amount) == amount) {
            Some(i) => inputs.push(proofs.swap_remove(i)),
            None => {
                log.errors[3].push(format!("no {amount}-sat proof left to melt"));
                return;
            }
        }
    }
    let t = Instant::now();
    log.record(3, t, melt(c, inputs).await);
}

impl WorkerLog {
    fn record<T>(&mut self, op: usize, started: Instant, result: anyhow::Result<T>) -> Option<T> {
        match result {
            Ok(v) => {
                self.latencies[op].push(started.elapsed());
                Some(v)
            }
            Err(e) => {
                self.errors[op].push(format!("{e:#}"));
                None
            }
        }
    }
}

async fn swap(c: &MintClient, input: &Proof, amounts: &[u64]) -> anyhow::Result<Vec<Proof>> {
    let outputs = Outputs::new(c.keyset, amounts)?;
    let res = c
        .post(
            "/v1/swap",
            &json!({ "inputs": [input], "outputs": outputs.blinded() }),
        )
        .await?;
    let sigs = serde_json::from_value(res["signatures"].clone()).context("swap signatures")?;
    outputs.unblind(sigs, &c.keys)
}

async fn melt(c: &MintClient, inputs: Vec<Proof>) -> anyhow::Result<()> {
    let invoice = cdk_fake_wallet::create_fake_invoice(32_000, String::new());
    let q = c
        .post(
            "/v1/melt/quote/bolt11",
            &json!({ "request": invoice.to_string(), "unit": "sat" }),
        )
        .await?;
    let quote = q["quote"].as_str().context("melt quote id")?;
    let res = c
        .post(
            "/v1/melt/bolt11",
            &json!({ "quote": quote, "inputs": inputs }),
        )
        .await?;
    match res["state"].as_str() {
        Some("PAID") => Ok(()),
        other => bail!("melt state {other:?}"),
    }
}

/// Asks for the states of `proofs` and checks each is `expected`.
pub async fn check_states(c: &MintClient, proofs: &[Proof], expected: &str) -> anyhow::Result<()> {
    let ys = proofs
        .iter()
        .map(|p| p.y().map(|y| y.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let res = c.post("/v1/checkstate", &json!({ "Ys": ys })).await?;
    let states = res["states"].as_array().context("checkstate states")?;
    if states.len() != ys.len() {
        bail!(
            "checkstate answered {} states for {} Ys",
            states.len(),
            ys.len()
        );
    }
    for s in states {
        if s["state"] != expected {
            bail!("proof state {} where {expected} was expected", s["state"]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_from_proc_status() {
        let status =
            "Name:\tallowance-mint\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }

    fn report(warm: u64, end: u64, errors: usize) -> SoakReport {
        SoakReport {
            secs: 10.0,
            warmup_secs: 2.0,
            concurrency: 2,
            ops: OPS
                .iter()
                .map(|op| OpStats {
                    op: op.to_string(),
                    ok: 5,
                    errors,
                    first_error: (errors > 0).then(|| "boom".into()),
                    p50_ms: 1.0,
                    p99_ms: 2.0,
                })
                .collect(),
            total_ops: 20,
            ops_per_sec: 2.0,
            rss_start_kib: 1000,
            rss_warm_kib: warm,
            rss_end_kib: end,
            rss_peak_kib: end.max(warm),
            max_growth_kib: 100,
        }
    }

    #[test]
    fn the_verdict_fails_on_growth_past_the_bound_or_any_error() {
        assert!(report(2000, 2100, 0).verdict().is_ok());
        assert!(report(2000, 1500, 0).verdict().is_ok(), "shrinking is fine");
        let err = report(2000, 2101, 0).verdict().unwrap_err();
        assert!(err.contains("grew by 101 KiB"), "{err}");
        let err = report(2000, 2000, 1).verdict().unwrap_err();
        assert!(err.contains("boom"), "{err}");
    }
}
