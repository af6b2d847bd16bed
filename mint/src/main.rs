//! `allowance-mint`: parse flags, start tracing, then serve or run a maintenance command.

mod allowance_cmd;

use std::io::Write;
use std::time::Duration;

use allowance_mint::cli::{Cli, Command, ConfigCommand, KeysetCommand, LogFormat};
use allowance_mint::config::{Config, EXAMPLE};
use allowance_mint::http::serve::serve as serve_http;
use allowance_mint::lightning::{Backend, FAKE_BACKEND_WARNING};
use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.global.log_format);
    match cli.command {
        Some(Command::Config(ConfigCommand::Example)) => {
            print!("{EXAMPLE}");
            Ok(())
        }
        Some(Command::Config(ConfigCommand::Check)) => {
            let config = cli.global.load_config()?;
            // The config holds only references to secrets, never their values: safe to print.
            print!("{}", toml::to_string_pretty(&config)?);
            Ok(())
        }
        Some(Command::Keyset(KeysetCommand::Rotate)) => {
            let config = cli.global.load_config()?;
            let (old, new) = allowance_mint::mint_setup::rotate_keyset(&config).await?;
            println!("rotated sat keyset: {old} -> {new} (the old keyset stays redeemable)");
            Ok(())
        }
        Some(Command::Keyset(KeysetCommand::List)) => {
            let config = cli.global.load_config()?;
            let assembled = allowance_mint::mint_setup::assemble(&config).await?;
            for k in assembled.mint.keysets().keysets {
                println!(
                    "{}\t{}\t{}\tfee_ppk={}",
                    k.id,
                    k.unit,
                    if k.active { "active" } else { "inactive" },
                    k.input_fee_ppk
                );
            }
            Ok(())
        }
        Some(Command::Allowance(args)) => {
            let config = cli.global.load_config()?;
            allowance_cmd::run(&config, args).await
        }
        None | Some(Command::Serve) => serve(cli.global.load_config()?).await,
    }
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    if config.lightning.backend == Backend::Fake {
        for _ in 0..3 {
            tracing::warn!("{FAKE_BACKEND_WARNING}");
        }
    }
    // Bind first: with port 0 the advertised URL must carry the port actually bound.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{addr}"));
    }
    let app = allowance_mint::app(&config).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let header_timeout = Duration::from_secs(config.http.header_read_timeout_secs);
    let admin = match app.admin_router.clone() {
        Some(router) => {
            let admin_listener = tokio::net::TcpListener::bind(config.admin.listen)
                .await
                .with_context(|| format!("cannot listen on {} (admin)", config.admin.listen))?;
            let admin_addr = admin_listener.local_addr()?;
            match &app.admin_token_source {
                Some(allowance_mint::admin::TokenSource::Generated(path)) => tracing::warn!(
                    path = %path.display(), "generated an admin token (mode 0600)"),
                Some(source) => tracing::info!(?source, "admin token loaded"),
                None => {}
            }
            tracing::info!(%admin_addr, "admin API and web page serving");
            println!("admin listening on http://{admin_addr}");
            let mut rx = stop_rx.clone();
            Some(tokio::spawn(serve_http(
                admin_listener,
                router,
                header_timeout,
                async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                },
            )))
        }
        None => None,
    };
    let sweeper = app.allowances.spawn_sweeper(Duration::from_secs(2));
    tracing::info!(%addr, public_url = %config.public_url(), storage = %app.storage,
        backend = app.backend.name(), "allowance-mint serving");
    // One machine-readable line on stdout, so scripts and tests that bind port 0 learn the port.
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;

    serve_http(listener, app.router, header_timeout, async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    })
    .await;
    if let Some(admin) = admin {
        admin.await?;
    }
    sweeper.abort();
    tracing::info!("shutting down: stopping the mint's background tasks");
    app.mint.stop().await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn example_is_not_empty() {
        assert!(super::EXAMPLE.contains("[limits]"));
    }
}
