//! `allowance-bench`: our mint, our paywall and peer mints (Nutshell, cdk-mintd) measured over
//! real HTTP by one protocol-generic Cashu v1 client. Prints a table and writes JSON.
//!
//! ```sh
//! bench/run.sh                       # release build, PostgreSQL, Nutshell, cdk-mintd if present
//! cargo run -p bench -- --tiny      # a few operations against our mint only (the smoke test)
//! cargo run --release -p bench -- --soak-secs 300   # mixed traffic, memory checked (soak.rs)
//! ```

mod client;
mod load;
mod procs;
mod report;
mod soak;
mod workloads;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use report::{Report, Skipped};
use workloads::{PaywallMode, Sizes};

const OURS: &str = "allowance-mint sqlite";

#[derive(Parser)]
#[command(
    name = "allowance-bench",
    about = "Cashu mint and paywall benchmarks over HTTP"
)]
struct Args {
    /// A few operations against our mint (SQLite) and paywall only; for the smoke test.
    #[arg(long)]
    tiny: bool,
    /// Directory holding `allowance-mint` and `examples/paid_api` [default: this binary's].
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// PostgreSQL server (keyword form, e.g. "host=127.0.0.1 port=5432 user=postgres
    /// dbname=postgres"); a fresh database is created on it with psql.
    #[arg(long, env = "BENCH_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// Nutshell virtualenv [default: <bin-dir>/../nutshell-venv].
    #[arg(long)]
    nutshell_venv: Option<PathBuf>,
    /// cdk-mintd binary [default: <bin-dir>/../cdk-mintd/bin/cdk-mintd].
    #[arg(long)]
    cdk_mintd: Option<PathBuf>,
    /// Only the two paywall modes (our SQLite mint behind them, its own suite skipped), for
    /// measuring the paywall alone; prints the table, writes no JSON.
    #[arg(long, conflicts_with_all = ["tiny", "swaps_only", "soak_secs"])]
    paywall_only: bool,
    /// JSON output [default: <bin-dir>/../bench/results.json].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only swaps at concurrency 1, against an already running mint at this URL (for profiling
    /// the mint under callgrind or perf); prints the table, writes no JSON. With `--pause`, waits
    /// for a line on stdin between preparing the proofs and sending the swaps, so the profiler's
    /// counters can be zeroed there (`callgrind_control -z`).
    #[arg(long, value_name = "MINT_URL")]
    swaps_only: Option<String>,
    /// Swaps with --swaps-only.
    #[arg(long, default_value_t = 200)]
    swaps: usize,
    #[arg(long, requires = "swaps_only")]
    pause: bool,
    /// Concurrent swaps with --swaps-only.
    #[arg(long, default_value_t = 1, requires = "swaps_only")]
    concurrency: usize,
    /// Longest any one measured run may take, in seconds.
    #[arg(long, default_value_t = 15)]
    max_secs: u64,
    /// Instead of the benchmarks: a soak of mixed traffic (mint, swap, checkstate, melt) against
    /// our mint (SQLite) for this many seconds, checking its memory.
    #[arg(long)]
    soak_secs: Option<u64>,
    /// Seconds of the soak before the memory baseline is taken [default: a fifth of the soak,
    /// at least 5].
    #[arg(long)]
    soak_warmup_secs: Option<u64>,
    /// Concurrent wallets in the soak.
    #[arg(long, default_value_t = 8)]
    soak_concurrency: usize,
    /// Most the mint's resident memory may grow after the warm-up, in MiB.
    #[arg(long, default_value_t = 64)]
    soak_max_growth_mib: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .to_path_buf(),
    };
    if let Some(url) = &args.swaps_only {
        let ms = workloads::swap_runs(
            "profiled mint",
            url,
            args.swaps,
            args.concurrency,
            args.max_secs,
            args.pause,
        )
        .await?;
        let mut report = Report {
            mode: "swaps-only".into(),
            cpus: 1,
            measurements: ms,
            ratios: vec![],
            paywall_overhead: vec![],
            skipped: vec![],
        };
        report.compute_ratios("");
        print!("{}", report.table());
        return Ok(());
    }
    let target_dir = bin_dir.parent().unwrap_or(&bin_dir).to_path_buf();
    let out = args.out.clone().unwrap_or_else(|| match args.soak_secs {
        Some(_) => target_dir.join("bench/soak.json"),
        None => target_dir.join("bench/results.json"),
    });
    let work = target_dir.join(format!("bench/run-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;

    let sizes = if args.tiny {
        Sizes {
            swaps_c1: 4,
            swaps_c8: 8,
            mints: 4,
            melts: 4,
            paid: 4,
            max_time: Duration::from_secs(60),
        }
    } else {
        Sizes {
            swaps_c1: 400,
            swaps_c8: 1500,
            mints: 400,
            melts: 400,
            paid: 300,
            max_time: Duration::from_secs(args.max_secs),
        }
    };
    let mut report = Report {
        mode: if args.tiny { "tiny" } else { "full" }.into(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        measurements: vec![],
        ratios: vec![],
        paywall_overhead: vec![],
        skipped: vec![],
    };
    let mint_bin = bin_dir.join("allowance-mint");
    if let Some(secs) = args.soak_secs {
        let result = run_soak(&args, secs, &mint_bin, &work, &out).await;
        let _ = std::fs::remove_dir_all(&work);
        return result;
    }
    let paid_api_bin = bin_dir.join("examples/paid_api");

    // Our mint on SQLite, and the paywall in front of it.
    {
        let mint = procs::allowance_mint(&mint_bin, &work.join("ours-sqlite"), "", &[])
            .context("start allowance-mint (sqlite)")?;
        eprintln!("bench: {OURS} at {}", mint.url);
        if !args.paywall_only {
            let ms = workloads::mint_suite(OURS, &mint.url, sizes)
                .await
                .with_context(|| format!("{OURS}:\n{}", mint.log_tail()))?;
            report.measurements.extend(ms);
        }
        for (name, mode, dir) in [
            ("paywall (online)", PaywallMode::Online, "paywall"),
            (
                "paywall (locked, DLEQ)",
                PaywallMode::Locked,
                "paywall-locked",
            ),
        ] {
            let api = procs::paid_api(
                &paid_api_bin,
                &work.join(dir),
                &mint.url,
                mode == PaywallMode::Locked,
            )
            .context("start paid_api")?;
            eprintln!("bench: {name} at {}", api.url);
            let ms = workloads::paywall_suite(name, &mint.url, &api.url, mode, sizes)
                .await
                .with_context(|| format!("{name}:\n{}", api.log_tail()))?;
            report.measurements.extend(ms);
        }
    }

    if args.paywall_only {
        report.mode = "paywall-only".into();
        report.compute_ratios(OURS);
        print!("{}", report.table());
        let _ = std::fs::remove_dir_all(&work);
        return Ok(());
    }
    if !args.tiny {
        run_postgres(&args, &mint_bin, &work, sizes, &mut report).await;
        let venv = args
            .nutshell_venv
            .clone()
            .unwrap_or_else(|| target_dir.join("nutshell-venv"));
        peer(
            &mut report,
            "nutshell",
            sizes,
            procs::nutshell(&venv, &work.join("nutshell")),
        )
        .await;
        let mintd = args
            .cdk_mintd
            .clone()
            .unwrap_or_else(|| target_dir.join("cdk-mintd/bin/cdk-mintd"));
        peer(
            &mut report,
            "cdk-mintd sqlite",
            sizes,
            procs::cdk_mintd(&mintd, &work.join("cdk-mintd")),
        )
        .await;
    }

    report.compute_ratios(OURS);
    print!("{}", report.table());
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("bench: wrote {}", out.display());
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

async fn run_soak(
    args: &Args,
    secs: u64,
    mint_bin: &Path,
    work: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let params = soak::SoakParams {
        duration: Duration::from_secs(secs),
        warmup: Duration::from_secs(args.soak_warmup_secs.unwrap_or((secs / 5).max(5))),
        concurrency: args.soak_concurrency,
        max_growth_kib: args.soak_max_growth_mib * 1024,
    };
    let mint = procs::allowance_mint(mint_bin, &work.join("soak"), "", &[])
        .context("start allowance-mint (sqlite)")?;
    eprintln!(
        "soak: {OURS} at {} (pid {}), {params:?}",
        mint.url,
        mint.pid()
    );
    let report = soak::run(&mint.url, mint.pid(), params)
        .await
        .with_context(|| mint.log_tail())?;
    print!("{}", report.table());
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("soak: wrote {}", out.display());
    report
        .verdict()
        .map_err(|e| anyhow::anyhow!("soak failed: {e}\n{}", mint.log_tail()))
}

async fn run_postgres(
    args: &Args,
    mint_bin: &Path,
    work: &Path,
    sizes: Sizes,
    report: &mut Report,
) {
    const TARGET: &str = "allowance-mint postgres";
    let Some(url) = &args.postgres_url else {
        report.skipped.push(Skipped {
            target: TARGET.into(),
            reason: "no PostgreSQL (set BENCH_POSTGRES_URL or --postgres-url)".into(),
        });
        return;
    };
    let result = async {
        let db = procs::fresh_postgres_db(url, &format!("allowance_bench_{}", std::process::id()))?;
        let config = "[database]\nengine = \"postgres\"\n[database.postgres]\nurl = \"env:BENCH_PG_URL\"\ntls_mode = \"disable\"\n";
        let mint = procs::allowance_mint(mint_bin, &work.join("ours-pg"), config, &[("BENCH_PG_URL", &db)])?;
        eprintln!("bench: {TARGET} at {}", mint.url);
        workloads::mint_suite(TARGET, &mint.url, sizes)
            .await
            .with_context(|| mint.log_tail())
    }
    .await;
    record(report, TARGET, result);
}

async fn peer(
    report: &mut Report,
    target: &str,
    sizes: Sizes,
    started: impl std::future::Future<Output = anyhow::Result<procs::Service>>,
) {
    let result = async {
        let svc = started.await?;
        eprintln!("bench: {target} at {}", svc.url);
        workloads::mint_suite(target, &svc.url, sizes)
            .await
            .with_context(|| svc.log_tail())
    }
    .await;
    record(report, target, result);
}

fn record(report: &mut Report, target: &str, result: anyhow::Result<Vec<load::Measurement>>) {
    match result {
        Ok(ms) => report.measurements.extend(ms),
        Err(e) => {
            eprintln!("bench: skipped {target}: {e:#}");
            let reason = format!("{e:#}");
            report.skipped.push(Skipped {
                target: target.into(),
                reason: reason.lines().next().unwrap_or("").to_string(),
            });
        }
    }
}
