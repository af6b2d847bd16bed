//! An API paid per request in Cashu ecash: `GET /weather` costs 5 sat, `POST /translate` 20 sat,
//! `GET /health` is free.
//!
//! ```sh
//! cargo run -p merchant --example paid_api -- --mint-url http://127.0.0.1:3338 --listen 127.0.0.1:8080
//! curl -i localhost:8080/weather            # 402 with X-Cashu: creqA...
//! curl -H "X-Cashu: cashuB..." localhost:8080/weather
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;
use axum::extract::Extension;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use merchant::{Merchant, Paid, Paywall, PaywallOptions, Price};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "An example API paid per request in Cashu ecash")]
struct Args {
    /// The mint whose ecash is accepted.
    #[arg(long, env = "MERCHANT_MINT_URL")]
    mint_url: String,
    /// Address to listen on (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The merchant's data directory.
    #[arg(long, env = "MERCHANT_DATA_DIR", default_value = "merchant-data")]
    data_dir: PathBuf,
    /// Require tokens P2PK-locked to the merchant's key (with DLEQ proofs).
    #[arg(long)]
    lock: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mint = cdk::mint_url::MintUrl::from_str(&args.mint_url).context("--mint-url")?;
    let merchant = Merchant::open(&args.data_dir).await?;
    merchant.recover().await?;
    let paywall = Paywall::new(merchant, PaywallOptions::new(vec![mint]).locked(args.lock));

    let app = Router::new()
        .route("/weather", get(weather).layer(paywall.price(Price::sat(5))))
        .route(
            "/translate",
            post(translate).layer(paywall.price(Price::sat(20))),
        )
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }));

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn weather(Extension(paid): Extension<Paid>) -> Json<Value> {
    Json(json!({
        "forecast": "sunny, 21 °C",
        "paid": { "amount": u64::from(paid.value), "unit": paid.unit.to_string() },
    }))
}

/// "Translates" the request body (it reverses each word: the point is the payment).
async fn translate(Extension(paid): Extension<Paid>, body: String) -> Json<Value> {
    let translated: Vec<String> = body
        .split_whitespace()
        .map(|w| w.chars().rev().collect())
        .collect();
    Json(json!({
        "translation": translated.join(" "),
        "paid": { "amount": u64::from(paid.value), "unit": paid.unit.to_string() },
    }))
}
