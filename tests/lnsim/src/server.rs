//! The network over HTTP, so each process (the mint, a merchant, a test) talks to its own node
//! on loopback:
//!
//! | route | what |
//! |---|---|
//! | `PUT /v1/nodes/{node}` | create the node or change its settings ([`NodeSettings`]) |
//! | `GET /v1/nodes/{node}` | the node: key, balance, settings |
//! | `POST /v1/nodes/{node}/invoices` | a new invoice ([`CreateInvoice`]) |
//! | `GET /v1/nodes/{node}/invoices/{hash}` | one invoice |
//! | `GET /v1/nodes/{node}/settled?after=N&wait_ms=M` | invoices settled after N (long poll) |
//! | `POST /v1/nodes/{node}/payments` | pay an invoice ([`PayInvoice`]) |
//! | `GET /v1/nodes/{node}/payments/{hash}` | one outgoing payment |

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;

use crate::api::{CreateInvoice, ErrorBody, NodeSettings, PayInvoice};
use crate::network::{Network, NetworkError};

/// Longest a long poll of the settled feed may wait.
const MAX_WAIT: Duration = Duration::from_secs(30);

pub fn router(network: Network) -> Router {
    Router::new()
        .route("/v1/nodes/{node}", put(put_node).get(get_node))
        .route("/v1/nodes/{node}/invoices", post(create_invoice))
        .route("/v1/nodes/{node}/invoices/{hash}", get(get_invoice))
        .route("/v1/nodes/{node}/settled", get(settled))
        .route("/v1/nodes/{node}/payments", post(pay))
        .route("/v1/nodes/{node}/payments/{hash}", get(get_payment))
        .with_state(network)
}

/// The one place errors become answers.
impl IntoResponse for NetworkError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::UnknownNode(_) | Self::UnknownInvoice { .. } | Self::UnknownPayment { .. } => {
                StatusCode::NOT_FOUND
            }
            Self::BadInvoice(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Sign(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}

async fn put_node(
    State(net): State<Network>,
    Path(node): Path<String>,
    body: Option<Json<NodeSettings>>,
) -> impl IntoResponse {
    let settings = body.map(|Json(s)| s).unwrap_or_default();
    Json(net.put_node(&node, &settings))
}

async fn get_node(
    State(net): State<Network>,
    Path(node): Path<String>,
) -> Result<impl IntoResponse, NetworkError> {
    Ok(Json(net.node(&node)?))
}

async fn create_invoice(
    State(net): State<Network>,
    Path(node): Path<String>,
    Json(req): Json<CreateInvoice>,
) -> Result<impl IntoResponse, NetworkError> {
    Ok(Json(net.create_invoice(&node, &req)?))
}

async fn get_invoice(
    State(net): State<Network>,
    Path((node, hash)): Path<(String, String)>,
) -> Result<impl IntoResponse, NetworkError> {
    Ok(Json(net.invoice(&node, &hash)?))
}

#[derive(Deserialize)]
struct FeedQuery {
    #[serde(default)]
    after: u64,
    #[serde(default)]
    wait_ms: u64,
}

async fn settled(
    State(net): State<Network>,
    Path(node): Path<String>,
    Query(q): Query<FeedQuery>,
) -> Result<impl IntoResponse, NetworkError> {
    let wait = Duration::from_millis(q.wait_ms).min(MAX_WAIT);
    Ok(Json(net.settled(&node, q.after, wait).await?))
}

async fn pay(
    State(net): State<Network>,
    Path(node): Path<String>,
    Json(req): Json<PayInvoice>,
) -> Result<impl IntoResponse, NetworkError> {
    Ok(Json(net.pay(&node, &req)?))
}

async fn get_payment(
    State(net): State<Network>,
    Path((node, hash)): Path<(String, String)>,
) -> Result<impl IntoResponse, NetworkError> {
    Ok(Json(net.payment(&node, &hash)?))
}
