//! `paywall-gateway`: parse the config, start tracing, open the merchant, recover, bind, serve;
//! shut down gracefully on SIGINT and SIGTERM.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use merchant::gateway::cli::{GatewayArgs, LogFormat};
use merchant::gateway::{router, GatewayState};
use merchant::{AutoSettler, Merchant};
use tokio::sync::Notify;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = GatewayArgs::parse();
    init_tracing(args.log_format);
    let config = args.load_config()?;
    if args.check_config {
        print!("{}", toml::to_string_pretty(&config)?);
        return Ok(());
    }

    let merchant = Merchant::open(&config.data_dir)
        .await
        .with_context(|| format!("cannot open the data dir {}", config.data_dir.display()))?;
    let summary = merchant.recover().await.context("start-up recovery")?;
    tracing::info!(?summary, "start-up recovery done");
    let state = GatewayState::new(&config, merchant.clone())?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, upstream = ?config.upstream, mints = ?config.mints, lock = config.lock,
        pubkey = %merchant.pubkey(), "paywall-gateway serving");

    let stop_settler = Arc::new(Notify::new());
    let settler = if config.settle.enabled() {
        let settler = AutoSettler::new(merchant.clone(), config.settle.clone())?;
        let stop = stop_settler.clone();
        Some(tokio::spawn(
            settler.run(async move { stop.notified().await }),
        ))
    } else {
        None
    };

    // One machine-readable line on stdout, so scripts and tests binding port 0 learn the port.
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;

    cashu_402::server::serve(
        listener,
        router(state),
        Duration::from_secs(config.header_read_timeout_secs),
        cashu_402::server::shutdown_signal(),
    )
    .await;
    tracing::info!("shutting down");
    if let Some(handle) = settler {
        stop_settler.notify_one();
        // A settlement in progress may finish; a stuck one is abandoned (its saga recovers).
        if tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .is_err()
        {
            tracing::warn!("the settler did not stop within 30 s");
        }
    }
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
