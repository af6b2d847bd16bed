//! The web page for humans: a login form that turns the admin token into a session cookie
//! (`HttpOnly`, `SameSite=Strict`, `Secure` unless configured off), and one page that creates
//! allowances, shows the invoice as a QR code, notices the payment by polling the admin API, and
//! lists allowances with revoke, withdraw and top-up buttons. Everything is served from here;
//! the Content-Security-Policy forbids loading anything from elsewhere.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::{authenticate, token, AdminState};

const LOGIN_HTML: &str = include_str!("page/login.html");
const APP_HTML: &str = include_str!("page/app.html");
const APP_JS: &str = include_str!("page/app.js");
const APP_CSS: &str = include_str!("page/app.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Routes anyone may reach: the page shell (login form or app), its script and style, login.
pub fn public_routes() -> Router<AdminState> {
    Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript", APP_JS) }),
        )
        .route("/app.css", get(|| async { asset("text/css", APP_CSS) }))
}

/// Routes behind the token (none besides the API yet).
pub fn protected_routes() -> Router<AdminState> {
    Router::new()
}

fn page(status: StatusCode, html: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if authenticate(&state, &headers).is_some() {
        page(StatusCode::OK, APP_HTML)
    } else {
        page(StatusCode::OK, LOGIN_HTML)
    }
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(state): State<AdminState>, Form(form): Form<LoginForm>) -> Response {
    if !state.token.verify(form.token.trim()) {
        return page(StatusCode::UNAUTHORIZED, LOGIN_HTML);
    }
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict{}",
        token::COOKIE,
        state.token.session(),
        if state.cookie_secure { "; Secure" } else { "" }
    );
    set_cookie(Redirect::to("/").into_response(), &cookie)
}

async fn logout(State(state): State<AdminState>) -> Response {
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        token::COOKIE,
        if state.cookie_secure { "; Secure" } else { "" }
    );
    set_cookie(Redirect::to("/").into_response(), &cookie)
}

fn set_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}
