//! Every request runs to its end, whatever the client does.
//!
//! hyper drops a request's future when the client hangs up, and the timeout layer drops it when
//! time is up. Dropped inside a swap, cdk's future stops between the transaction that marks the
//! inputs pending and the one that spends them: the inputs stay PENDING until the next start's
//! saga recovery, and a merchant killed mid-redemption then saw its token answered "pending"
//! (503) on every retry. Run on a task of its own, the handler finishes and stores its outcome;
//! only the answer is lost, and a retry reads the outcome (NUT-19 cache or the spent set).

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn detached(request: Request, next: Next) -> Response {
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(e) => {
            // A panic in a handler: the error layer turns this into a Cashu body without
            // internals; the log keeps the reason.
            tracing::error!(error = %e, "request handler failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
