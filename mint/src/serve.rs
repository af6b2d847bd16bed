//! Serving: bind, build the mint, serve the public and admin APIs, and shut down cleanly on
//! SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;
use crate::config::Config;
use crate::lightning::{Backend, InjectedBackend, FAKE_BACKEND_WARNING};
use crate::{admin, AppError};
use cashu_402::server::{serve as serve_http, shutdown_signal};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    App(#[from] AppError),
    #[error("serving failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the admin server task failed: {0}")]
    Admin(#[from] tokio::task::JoinError),
    #[error("cannot stop the mint cleanly: {0}")]
    Stop(#[from] cdk::Error),
}

/// Serves the mint described by `config` until SIGINT or SIGTERM. `injected` replaces the
/// configured Lightning backend (see [`InjectedBackend`]); the product binary passes `None`.
pub async fn serve(
    mut config: Config,
    injected: Option<InjectedBackend>,
) -> Result<(), ServeError> {
    match &injected {
        Some(i) => tracing::warn!(backend = i.name, "{}", i.warning),
        None if config.lightning.backend == Backend::Fake => {
            for _ in 0..3 {
                tracing::warn!("{FAKE_BACKEND_WARNING}");
            }
        }
        None => {}
    }
    // Bind first: with port 0 the advertised URL must carry the port actually bound.
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr()?;
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{addr}"));
    }
    let app = crate::app_with(&config, injected).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let header_timeout = Duration::from_secs(config.http.header_read_timeout_secs);
    let admin = match app.admin_router.clone() {
        Some(router) => {
            let admin_listener = bind(config.admin.listen).await?;
            let admin_addr = admin_listener.local_addr()?;
            match &app.admin_token_source {
                Some(admin::TokenSource::Generated(path)) => tracing::warn!(
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

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Logs to stderr (stdout carries the `listening on` lines), filtered by `RUST_LOG`.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
