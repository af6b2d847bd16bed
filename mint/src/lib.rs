//! `allowance-mint`: a Cashu ecash mint backed by a Lightning node.
//!
//! Humans fund bounded allowances for their agents here, merchants redeem the agents' ecash here,
//! and the mint melts ecash to Lightning to pay merchants' invoices. This crate wraps cdk's `Mint`
//! in a daemon: layered configuration ([`config`]), storage ([`storage`]), the seed ([`seed`]),
//! the Lightning backends ([`lightning`]), and the HTTP API with its operational routes
//! ([`http`]). The binary in `main.rs` only parses flags, starts tracing, binds and serves.

pub mod cli;
pub mod config;
pub mod data_dir;
pub mod http;
pub mod lightning;
pub mod mint_setup;
pub mod secret;
pub mod seed;
pub mod storage;

use std::sync::Arc;

use axum::Router;
use cdk::Mint;

pub use config::Config;
pub use mint_setup::SetupError;

/// A mint whose background tasks run, and the router that serves it.
pub struct App {
    pub router: Router,
    pub mint: Arc<Mint>,
    pub backend: lightning::Backend,
    pub storage: String,
    pub lock: data_dir::DataDirLock,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("cannot start the mint: {0}")]
    Start(#[from] cdk::Error),
    #[error(transparent)]
    Router(#[from] http::RouterError),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Builds and starts the mint (saga recovery, invoice listeners) and its router.
pub async fn app(config: &Config) -> Result<App, AppError> {
    let assembled = mint_setup::assemble(config).await?;
    assembled.mint.start().await?;
    let metrics = http::metrics::Metrics::new(assembled.backend.name())?;
    let state = http::AppState {
        mint: assembled.mint.clone(),
        backend: assembled.backend,
        metrics,
    };
    let router = http::router(state, &config.http).await?;
    Ok(App {
        router,
        mint: assembled.mint,
        backend: assembled.backend,
        storage: assembled.storage,
        lock: assembled.lock,
    })
}
