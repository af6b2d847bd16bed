//! Runs prepared operations with a fixed number of concurrent workers, bounded in count and time,
//! and summarises throughput and latency.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub target: String,
    pub op: String,
    pub concurrency: usize,
    pub ok: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub secs: f64,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Runs `op` on each job with `concurrency` workers until the jobs run out or `max_time` passes.
pub async fn run<J, F, Fut>(
    target: &str,
    name: &str,
    jobs: Vec<J>,
    concurrency: usize,
    max_time: Duration,
    op: F,
) -> Measurement
where
    J: Send + 'static,
    F: Fn(J) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let queue = Arc::new(Mutex::new(jobs.into_iter().collect::<VecDeque<J>>()));
    let op = Arc::new(op);
    let start = Instant::now();
    let deadline = start + max_time;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let queue = queue.clone();
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = Vec::new();
            while Instant::now() < deadline {
                let job = match queue.lock() {
                    Ok(mut q) => q.pop_front(),
                    Err(_) => None,
                };
                let Some(job) = job else { break };
                let t = Instant::now();
                match op(job).await {
                    Ok(()) => lat.push(t.elapsed()),
                    Err(e) => errors.push(format!("{e:#}")),
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = Vec::new();
    for w in workers {
        match w.await {
            Ok((l, e)) => {
                lat.extend(l);
                errors.extend(e);
            }
            Err(e) => errors.push(format!("worker panicked: {e}")),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    Measurement {
        target: target.to_string(),
        op: name.to_string(),
        concurrency,
        ok: lat.len(),
        errors: errors.len(),
        first_error: errors.into_iter().next(),
        secs,
        ops_per_sec: if secs > 0.0 {
            lat.len() as f64 / secs
        } else {
            0.0
        },
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
    }
}

/// Nearest-rank percentile of sorted latencies, in milliseconds.
pub fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&v[..1], 0.99), 1.0);
    }

    #[tokio::test]
    async fn run_counts_successes_and_errors() {
        let m = run(
            "t",
            "op",
            (0..10).collect(),
            3,
            Duration::from_secs(10),
            |i| async move {
                if i % 5 == 0 {
                    anyhow::bail!("job {i} failed")
                }
                Ok(())
            },
        )
        .await;
        assert_eq!(m.ok, 8);
        assert_eq!(m.errors, 2);
        assert!(m.first_error.is_some());
    }
}
