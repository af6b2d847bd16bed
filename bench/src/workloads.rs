//! The measured workloads. Everything a timed operation needs (proofs, blinded outputs,
//! invoices, tokens) is prepared first, so the timed loop only sends requests.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, Token};
use serde_json::{json, Value};

use crate::client::{truncate, MintClient, Outputs};
use crate::load::{self, Measurement};

/// How many operations each run may do, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub swaps_c1: usize,
    pub swaps_c8: usize,
    pub mints: usize,
    pub melts: usize,
    pub paid: usize,
    pub max_time: Duration,
}

/// Outputs per mint request while preparing proofs (below every mint's limit).
const PREP_BATCH: usize = 100;

/// Swaps (1 input of 2 sat → 2 outputs of 1 sat) at concurrency 1 and 8, mints (quote + mint of
/// one 8-sat output) and melts (quote + melt of a 32-sat fake invoice with 32+2 sat of inputs) at
/// concurrency 8.
pub async fn mint_suite(target: &str, url: &str, s: Sizes) -> anyhow::Result<Vec<Measurement>> {
    let c = Arc::new(MintClient::connect(url).await?);
    let mut out = Vec::new();

    for (conc, n) in [(1, s.swaps_c1), (8, s.swaps_c8)] {
        let proofs = c
            .mint_many(2, n, PREP_BATCH)
            .await
            .context("prepare swaps")?;
        let mut bodies = Vec::with_capacity(n);
        for p in proofs {
            let outputs = Outputs::new(c.keyset, &[1, 1])?;
            bodies.push(json!({ "inputs": [p], "outputs": outputs.blinded() }).to_string());
        }
        let cl = c.clone();
        out.push(
            load::run(target, "swap", bodies, conc, s.max_time, move |body| {
                let cl = cl.clone();
                async move {
                    let res = post_raw(&cl, "/v1/swap", body).await?;
                    expect_signatures(&res, 2)
                }
            })
            .await,
        );
    }

    let mut mint_outputs = Vec::with_capacity(s.mints);
    for _ in 0..s.mints {
        mint_outputs.push(serde_json::to_value(
            Outputs::new(c.keyset, &[8])?.blinded(),
        )?);
    }
    let cl = c.clone();
    out.push(
        load::run(
            target,
            "mint",
            mint_outputs,
            8,
            s.max_time,
            move |outputs| {
                let cl = cl.clone();
                async move {
                    let quote = cl.paid_mint_quote(8).await?;
                    let res = cl
                        .post(
                            "/v1/mint/bolt11",
                            &json!({ "quote": quote, "outputs": outputs }),
                        )
                        .await?;
                    expect_signatures(&res, 1)
                }
            },
        )
        .await,
    );

    let big = c
        .mint_many(32, s.melts, PREP_BATCH)
        .await
        .context("prepare melts")?;
    let small = c
        .mint_many(2, s.melts, PREP_BATCH)
        .await
        .context("prepare melts")?;
    let jobs: Vec<(String, Value)> = big
        .into_iter()
        .zip(small)
        .map(|(a, b)| {
            let invoice = cdk_fake_wallet::create_fake_invoice(32_000, String::new());
            (invoice.to_string(), json!([a, b]))
        })
        .collect();
    let cl = c.clone();
    out.push(
        load::run(
            target,
            "melt",
            jobs,
            8,
            s.max_time,
            move |(invoice, inputs)| {
                let cl = cl.clone();
                async move {
                    let q = cl
                        .post(
                            "/v1/melt/quote/bolt11",
                            &json!({ "request": invoice, "unit": "sat" }),
                        )
                        .await?;
                    let quote = q["quote"].as_str().context("melt quote id")?;
                    let res = cl
                        .post(
                            "/v1/melt/bolt11",
                            &json!({ "quote": quote, "inputs": inputs }),
                        )
                        .await?;
                    match res["state"].as_str() {
                        Some("PAID") => Ok(()),
                        other => bail!("melt state {other:?}"),
                    }
                }
            },
        )
        .await,
    );
    Ok(out)
}

/// Requests through the paywall (`GET /weather`, 5 sat, redeemed online at the mint) at
/// concurrency 1 and 8, and the free `GET /health` of the same server.
pub async fn paywall_suite(
    target: &str,
    mint_url: &str,
    api_url: &str,
    s: Sizes,
) -> anyhow::Result<Vec<Measurement>> {
    let c = MintClient::connect(mint_url).await?;
    let mint = MintUrl::from_str_checked(mint_url)?;
    let n = s.paid * 2;
    let fours = c.mint_many(4, n, PREP_BATCH).await?;
    let ones = c.mint_many(1, n, PREP_BATCH).await?;
    let mut tokens: Vec<String> = fours
        .into_iter()
        .zip(ones)
        .map(|(a, b)| Token::new(mint.clone(), vec![a, b], None, CurrencyUnit::Sat).to_string())
        .collect();
    let http = c.http.clone();
    let mut out = Vec::new();

    let health: Vec<()> = vec![(); s.paid];
    let (h, url) = (http.clone(), format!("{api_url}/health"));
    out.push(
        load::run(
            target,
            "unpaid GET /health",
            health,
            1,
            s.max_time,
            move |()| {
                let (h, url) = (h.clone(), url.clone());
                async move { expect_ok(h.get(url).send().await?).await }
            },
        )
        .await,
    );
    for conc in [1, 8] {
        let batch: Vec<String> = tokens.drain(..s.paid.min(tokens.len())).collect();
        let (h, url) = (http.clone(), format!("{api_url}/weather"));
        out.push(
            load::run(
                target,
                "paid GET /weather",
                batch,
                conc,
                s.max_time,
                move |t| {
                    let (h, url) = (h.clone(), url.clone());
                    async move { expect_ok(h.get(url).header("X-Cashu", t).send().await?).await }
                },
            )
            .await,
        );
    }
    Ok(out)
}

trait FromStrChecked: Sized {
    fn from_str_checked(s: &str) -> anyhow::Result<Self>;
}

impl FromStrChecked for MintUrl {
    fn from_str_checked(s: &str) -> anyhow::Result<Self> {
        s.parse().map_err(|e| anyhow::anyhow!("mint url {s}: {e}"))
    }
}

async fn post_raw(c: &MintClient, path: &str, body: String) -> anyhow::Result<Value> {
    let res = c
        .http
        .post(format!("{}{path}", c.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = res.status();
    let text = res.text().await?;
    if !status.is_success() {
        bail!("POST {path}: {status}: {}", truncate(&text));
    }
    Ok(serde_json::from_str(&text)?)
}

fn expect_signatures(res: &Value, n: usize) -> anyhow::Result<()> {
    match res["signatures"].as_array() {
        Some(s) if s.len() == n => Ok(()),
        _ => bail!("expected {n} signatures, got {res}"),
    }
}

async fn expect_ok(res: reqwest::Response) -> anyhow::Result<()> {
    let status = res.status();
    let text = res.text().await?;
    if !status.is_success() {
        bail!("{status}: {}", truncate(&text));
    }
    Ok(())
}
