//! `allowance-mint`: a Cashu ecash mint backed by a Lightning node.
//!
//! Humans fund bounded allowances for their agents here, merchants redeem the agents' ecash here,
//! and the mint melts ecash to Lightning to pay merchants' invoices. This crate wraps cdk's `Mint`
//! in a daemon: layered configuration ([`config`]), storage ([`storage`]), the seed ([`seed`]),
//! the Lightning backends ([`lightning`]), and the HTTP API with its operational routes
//! ([`http`]), and serving until a signal ([`serve`]). The binary in `main.rs` only parses flags,
//! starts tracing and serves.

pub mod admin;
pub mod admin_client;
pub mod allowance;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod dleq_sign;
pub mod http;
pub mod lightning;
pub mod mint_setup;
pub mod secret;
pub mod seed;
pub mod serve;
pub mod signatory;
pub mod sqlite;
pub mod start_lock;
pub mod storage;

use std::sync::Arc;

use axum::Router;
use cdk::Mint;

pub use config::Config;
pub use mint_setup::SetupError;

/// A mint whose background tasks run, and the router that serves it.
pub struct App {
    pub router: Router,
    /// The admin API and web page, for their own listener (absent when disabled).
    pub admin_router: Option<Router>,
    pub admin_token_source: Option<admin::TokenSource>,
    pub mint: Arc<Mint>,
    pub allowances: allowance::Allowances,
    pub backend: lightning::ActiveBackend,
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
    #[error("cannot set up allowances: {0}")]
    Allowances(#[from] allowance::AllowanceError),
    #[error("cannot set up the admin token: {0}")]
    AdminToken(#[from] admin::token::TokenError),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Builds and starts the mint (saga recovery, invoice listeners) and its router.
pub async fn app(config: &Config) -> Result<App, AppError> {
    app_with(config, None).await
}

/// [`app`] on an injected payment backend instead of the configured one.
pub async fn app_with(
    config: &Config,
    injected: Option<lightning::InjectedBackend>,
) -> Result<App, AppError> {
    let assembled = mint_setup::assemble_with(config, injected).await?;
    assembled.mint.start().await?;
    let metrics = http::metrics::Metrics::new(assembled.backend.name())?;
    let allowances = allowance::Allowances::new(
        assembled.mint.clone(),
        assembled.registry.clone(),
        assembled.lightning.clone(),
        &config.public_url(),
    )
    .await?;
    let state = http::AppState {
        mint: assembled.mint.clone(),
        allowances: allowances.clone(),
        backend: assembled.backend,
        metrics,
    };
    let router = http::router(state, &config.http).await?;
    let (admin_router, admin_token_source) = if config.admin.enabled {
        let (token, source) =
            admin::AdminToken::load_or_generate(config.admin.token.as_ref(), &config.data_dir)?;
        let state = admin::AdminState {
            allowances: allowances.clone(),
            token,
            cookie_secure: config.admin.cookie_secure,
        };
        (Some(admin::router(state)), Some(source))
    } else {
        (None, None)
    };
    Ok(App {
        router,
        admin_router,
        admin_token_source,
        mint: assembled.mint,
        allowances,
        backend: assembled.backend,
        storage: assembled.storage,
        lock: assembled.lock,
    })
}
