//! `agent-wallet mcp`: the wallet as an MCP server on stdin/stdout.

use std::sync::Arc;
use std::time::Duration;

use agent_wallet::mcp::WalletServer;
use agent_wallet::{exit_code, AgentWallet};

/// Serves until the client hangs up, or SIGINT/SIGTERM; then waits for payments in flight
/// (at most two request timeouts: each payment is two requests).
pub async fn serve(wallet: AgentWallet, request_timeout: Duration) -> anyhow::Result<i32> {
    tracing::info!(data_dir = %wallet.data_dir().display(), "serving MCP on stdio");
    let server = WalletServer::new(Arc::new(wallet));
    server
        .serve_stdio(shutdown_signal(), request_timeout.saturating_mul(2))
        .await?;
    Ok(exit_code::OK)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
