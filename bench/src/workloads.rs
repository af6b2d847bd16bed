//! The measured workloads. Everything a timed operation needs (proofs, blinded outputs,
//! invoices, tokens) is prepared first, so the timed loop only sends requests.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use cashu_402::Challenge;
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, PublicKey, Token};
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
    let mut out = swaps(target, &c, &[(1, s.swaps_c1), (8, s.swaps_c8)], s.max_time).await?;
    out.extend(mints_and_melts(target, &c, s).await?);
    Ok(out)
}

/// `n` swaps at concurrency `conc` (for profiling a running mint); with `pause`, waits for a line
/// on stdin once everything is prepared.
pub async fn swap_runs(
    target: &str,
    url: &str,
    n: usize,
    conc: usize,
    max_secs: u64,
    pause: bool,
) -> anyhow::Result<Vec<Measurement>> {
    let c = Arc::new(MintClient::connect(url).await?);
    let bodies = swap_bodies(&c, n).await?;
    if pause {
        eprintln!("bench: {n} swaps prepared; press Enter to send them");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
    }
    Ok(vec![
        run_swaps(target, &c, bodies, conc, Duration::from_secs(max_secs)).await,
    ])
}

/// Request bodies of `n` swaps, 1 input of 2 sat → 2 outputs of 1 sat, with fresh proofs.
async fn swap_bodies(c: &MintClient, n: usize) -> anyhow::Result<Vec<String>> {
    let proofs = c
        .mint_many(2, n, PREP_BATCH)
        .await
        .context("prepare swaps")?;
    let mut bodies = Vec::with_capacity(n);
    for p in proofs {
        let outputs = Outputs::new(c.keyset, &[1, 1])?;
        bodies.push(json!({ "inputs": [p], "outputs": outputs.blinded() }).to_string());
    }
    Ok(bodies)
}

async fn run_swaps(
    target: &str,
    c: &Arc<MintClient>,
    bodies: Vec<String>,
    conc: usize,
    max_time: Duration,
) -> Measurement {
    let cl = c.clone();
    load::run(target, "swap", bodies, conc, max_time, move |body| {
        let cl = cl.clone();
        async move {
            let res = post_raw(&cl, "/v1/swap", body).await?;
            expect_signatures(&res, 2)
        }
    })
    .await
}

async fn swaps(
    target: &str,
    c: &Arc<MintClient>,
    runs: &[(usize, usize)],
    max_time: Duration,
) -> anyhow::Result<Vec<Measurement>> {
    let mut out = Vec::new();
    for &(conc, n) in runs {
        let bodies = swap_bodies(c, n).await?;
        out.push(run_swaps(target, c, bodies, conc, max_time).await);
    }
    Ok(out)
}

async fn mints_and_melts(
    target: &str,
    c: &Arc<MintClient>,
    s: Sizes,
) -> anyhow::Result<Vec<Measurement>> {
    let mut out = Vec::new();
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

/// How the paywall under test takes its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaywallMode {
    /// Plain tokens, redeemed at the mint (a swap) before the handler runs.
    Online,
    /// Tokens P2PK-locked to the merchant with DLEQ proofs (`paid_api --lock`): checked
    /// offline, held with a replay record and served at once; the merchant redeems them at the
    /// mint in the background, during the run.
    Locked,
}

/// Requests through the paywall (`GET /weather`, 5 sat as one 4-sat and one 1-sat proof) at
/// concurrency 1 and 8, and the free `GET /health` of the same server as the unpaid baseline.
pub async fn paywall_suite(
    target: &str,
    mint_url: &str,
    api_url: &str,
    mode: PaywallMode,
    s: Sizes,
) -> anyhow::Result<Vec<Measurement>> {
    let c = MintClient::connect(mint_url).await?;
    let mint = MintUrl::from_str_checked(mint_url)?;
    let n = s.paid * 2;
    let (fours, ones) = match mode {
        PaywallMode::Online => (
            c.mint_many(4, n, PREP_BATCH).await?,
            c.mint_many(1, n, PREP_BATCH).await?,
        ),
        PaywallMode::Locked => {
            let pubkey = merchant_lock(&c.http, api_url).await?;
            let mut fours = Vec::with_capacity(n);
            let mut ones = Vec::with_capacity(n);
            while fours.len() < n {
                let k = PREP_BATCH.min(n - fours.len());
                fours.extend(c.mint_locked(4, k, pubkey).await?);
                ones.extend(c.mint_locked(1, k, pubkey).await?);
            }
            (fours, ones)
        }
    };
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
            crate::report::UNPAID_OP,
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
                crate::report::PAID_OP,
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

/// The key the paywall wants tokens locked to, from its 402 challenge.
async fn merchant_lock(http: &reqwest::Client, api_url: &str) -> anyhow::Result<PublicKey> {
    let res = http.get(format!("{api_url}/weather")).send().await?;
    if res.status() != reqwest::StatusCode::PAYMENT_REQUIRED {
        bail!(
            "GET /weather without payment: {} (expected 402)",
            res.status()
        );
    }
    let header = res
        .headers()
        .get("X-Cashu")
        .context("402 without an X-Cashu challenge")?
        .to_str()?;
    let challenge = Challenge::parse(header).map_err(|e| anyhow::anyhow!("challenge: {e}"))?;
    challenge
        .lock_pubkey()
        .context("the challenge asks for no lock (is paid_api running with --lock?)")
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
