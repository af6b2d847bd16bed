//! The wallet as a Model Context Protocol server (`agent-wallet mcp`), built on the official
//! Rust SDK (`rmcp`).
//!
//! Tools (see [`describe`] for the descriptions a model reads):
//!
//! | tool | arguments | result |
//! |------|-----------|--------|
//! | `fetch` | `url`, `method`?, `headers`?, `body`?, `max_cost`?, `max_body_chars`? | `status`, `headers`, `body`, `cost`, `payment` |
//! | `balance` | | `total`, `unit`, `mints` |
//! | `budget` | `host`? | the caps, what is left of them, `next_request_max`, `allowance_draw_room` |
//! | `ledger` | `host`?, `limit`? | `entries` (newest first), `count` |
//! | `receive` | `token` | `result`, `amount`, `balance` |
//!
//! Every call goes through the one [`AgentWallet`] the server holds: the same policy, ledger
//! and outbox as the command line. Whatever goes wrong in a tool (a refused payment, a failed
//! payment, a bad argument, a mint that cannot be reached) is a tool result with `isError`
//! and a `reason`, never a protocol error. The protocol owns stdout; logs go to stderr.
//!
//! Payments run in tasks of their own that the server waits for before it exits, so a client
//! that hangs up (or a SIGTERM) while a payment is on the wire does not cut it short.

mod describe;
mod results;
mod tools;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{tool_handler, ServiceExt};
use tokio_util::task::TaskTracker;

use crate::wallet::AgentWallet;

pub use tools::{BudgetParams, FetchParams, LedgerParams, ReceiveParams};

/// Why the MCP server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the MCP client did not complete the handshake: {0}")]
    Initialize(#[from] Box<rmcp::service::ServerInitializeError>),
    #[error("the MCP service task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The wallet's MCP server: one [`AgentWallet`] behind the tools.
#[derive(Clone)]
pub struct WalletServer {
    wallet: Arc<AgentWallet>,
    tool_router: ToolRouter<Self>,
    payments: TaskTracker,
    instructions: String,
}

impl std::fmt::Debug for WalletServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletServer")
            .field("wallet", &self.wallet)
            .finish_non_exhaustive()
    }
}

impl WalletServer {
    /// A server over `wallet`. The tool descriptions carry the policy's numbers as they are
    /// now; a policy changed in the config file takes effect when the server is restarted.
    pub fn new(wallet: Arc<AgentWallet>) -> Self {
        let mut tool_router = Self::tool_router();
        let policy = wallet.policy();
        for (name, route) in tool_router.map.iter_mut() {
            if let Some(text) = describe::tool(name, policy) {
                route.attr.description = Some(text.into());
            }
        }
        Self {
            instructions: describe::instructions(policy),
            wallet,
            tool_router,
            payments: TaskTracker::new(),
        }
    }

    pub fn wallet(&self) -> &Arc<AgentWallet> {
        &self.wallet
    }

    /// The tools as a client lists them.
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.tool_router.list_all()
    }

    /// Serves MCP over stdin/stdout until the client hangs up or `shutdown` resolves, then
    /// waits (at most `drain`) for payments still in flight.
    pub async fn serve_stdio(
        self,
        shutdown: impl Future<Output = ()>,
        drain: Duration,
    ) -> Result<(), ServeError> {
        self.serve_transport(rmcp::transport::stdio(), shutdown, drain)
            .await
    }

    /// As [`WalletServer::serve_stdio`], over any byte stream pair (a pipe, a socket).
    pub async fn serve_transport<R, W>(
        self,
        transport: (R, W),
        shutdown: impl Future<Output = ()>,
        drain: Duration,
    ) -> Result<(), ServeError>
    where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
        W: tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let payments = self.payments.clone();
        let service = self.serve(transport).await.map_err(Box::new)?;
        let cancel = service.cancellation_token();
        let waiting = service.waiting();
        tokio::pin!(waiting);
        let reason = tokio::select! {
            r = &mut waiting => r?,
            () = shutdown => {
                tracing::info!("shutting down");
                cancel.cancel();
                waiting.await?
            }
        };
        tracing::info!(?reason, "MCP session ended");
        payments.close();
        if !payments.is_empty() {
            tracing::info!(in_flight = payments.len(), "waiting for payments in flight");
            if tokio::time::timeout(drain, payments.wait()).await.is_err() {
                tracing::warn!("payments still in flight; the next start recovers them");
            }
        }
        Ok(())
    }
}

#[tool_handler(router = self.tool_router)]
impl rmcp::ServerHandler for WalletServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "agent-wallet",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(self.instructions.clone())
    }
}
