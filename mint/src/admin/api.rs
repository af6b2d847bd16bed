//! The admin API's JSON handlers (see the table in the module above).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cashu_402::allowance::{AllowanceView, CreateMetered, CreatePrepaid, TopUp, Withdraw};
use serde::Deserialize;

use super::AdminState;
use crate::allowance::books::Books;
use crate::allowance::AllowanceError;

pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin/v1/allowances", get(list))
        .route("/admin/v1/allowances/prepaid", post(create_prepaid))
        .route("/admin/v1/allowances/metered", post(create_metered))
        .route("/admin/v1/allowances/{id}", get(show))
        .route("/admin/v1/allowances/{id}/topup", post(top_up))
        .route("/admin/v1/allowances/{id}/revoke", post(revoke))
        .route("/admin/v1/allowances/{id}/withdraw", post(withdraw))
        .route("/admin/v1/books", get(books))
        .route("/admin/v1/qr.svg", get(qr))
}

type Answer<T> = Result<Json<T>, AllowanceError>;

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, AllowanceError> {
    b.map(|Json(t)| t)
        .map_err(|e| AllowanceError::Invalid(format!("malformed request: {}", e.body_text())))
}

async fn list(State(s): State<AdminState>) -> Answer<Vec<AllowanceView>> {
    Ok(Json(s.allowances.list().await?))
}

async fn create_prepaid(
    State(s): State<AdminState>,
    b: Result<Json<CreatePrepaid>, JsonRejection>,
) -> Answer<AllowanceView> {
    Ok(Json(s.allowances.create_prepaid(body(b)?).await?))
}

async fn create_metered(
    State(s): State<AdminState>,
    b: Result<Json<CreateMetered>, JsonRejection>,
) -> Answer<AllowanceView> {
    Ok(Json(s.allowances.create_metered(body(b)?).await?))
}

async fn show(State(s): State<AdminState>, Path(id): Path<String>) -> Answer<AllowanceView> {
    Ok(Json(s.allowances.show(&id).await?))
}

async fn top_up(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    b: Result<Json<TopUp>, JsonRejection>,
) -> Answer<AllowanceView> {
    Ok(Json(s.allowances.top_up(&id, body(b)?.amount).await?))
}

async fn revoke(State(s): State<AdminState>, Path(id): Path<String>) -> Answer<AllowanceView> {
    Ok(Json(s.allowances.revoke(&id).await?))
}

async fn withdraw(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    b: Result<Json<Withdraw>, JsonRejection>,
) -> Answer<AllowanceView> {
    Ok(Json(s.allowances.withdraw(&id, &body(b)?.invoice).await?))
}

async fn books(State(s): State<AdminState>) -> Answer<Books> {
    Ok(Json(s.allowances.books().await?))
}

#[derive(Deserialize)]
struct QrQuery {
    data: String,
}

async fn qr(Query(q): Query<QrQuery>) -> Response {
    match super::qr::svg(&q.data) {
        Ok(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            svg,
        )
            .into_response(),
        Err(e) => AllowanceError::Invalid(e).into_response(),
    }
}
