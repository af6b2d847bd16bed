//! Embedding the agent wallet in a Rust agent: open a wallet, import an allowance, fetch a paid
//! URL (the wallet pays the `402` within its policy) and print what it cost.
//!
//! ```sh
//! AGENT_WALLET_TOKEN=cashuB... cargo run -p agent-wallet --example pay_api -- \
//!     http://127.0.0.1:3338 https://api.example.com/v1/search?q=rust
//! ```
//!
//! Arguments (or environment): the mint URL (`AGENT_WALLET_MINT`) and the URL to fetch
//! (`PAY_API_URL`). `AGENT_WALLET_TOKEN`, if set, is imported first (again is a no-op);
//! `AGENT_WALLET_DATA_DIR` is the wallet's data dir (default `./agent-wallet-data`).

use agent_wallet::{AgentWallet, PayRequest, Policy, ReceiveOutcome, WalletError, WalletOptions};
use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let arg_or_env = |arg: Option<String>, var: &str| arg.or_else(|| std::env::var(var).ok());
    let mint = arg_or_env(args.next(), "AGENT_WALLET_MINT").context("usage: pay_api MINT URL")?;
    let url = arg_or_env(args.next(), "PAY_API_URL").context("usage: pay_api MINT URL")?;
    let url: url::Url = url.parse().context("URL")?;
    let dir = arg_or_env(None, "AGENT_WALLET_DATA_DIR").unwrap_or("agent-wallet-data".into());

    // The ten lines an agent needs: a wallet with a policy, an allowance, a paid request.
    let mut options = WalletOptions::new(dir);
    options.mint = Some(mint.parse().context("mint URL")?);
    options.policy = Some(Policy {
        max_per_request: Some(50),
        ..Policy::default()
    });
    let wallet = AgentWallet::open_with(options).await?; // recovers what a crash left
    if let Ok(token) = std::env::var("AGENT_WALLET_TOKEN") {
        if let ReceiveOutcome::Received { amount } = wallet.receive(&token).await? {
            eprintln!("imported {amount} sat");
        }
    }
    let request = PayRequest::get(url.clone()).max_cost(Some(21));
    let answer = match wallet.fetch(request).await {
        Ok(answer) => answer,
        // A refusal spends nothing; the error says which limit and carries the 402.
        Err(e @ WalletError::PolicyRefused { .. }) => anyhow::bail!("not paid: {e}"),
        Err(e) => return Err(e.into()),
    };

    println!("HTTP {} cost {} sat", answer.response.status, answer.cost());
    if let Some(payment) = &answer.payment {
        println!(
            "paid {} sat + {} fee at {}: {}",
            payment.amount, payment.fee, payment.mint, payment.outcome
        );
    }
    println!("{}", answer.response.text());
    let budget = wallet.budget(url.host_str()).await?;
    println!(
        "balance {} sat; the next request here may cost up to {} sat",
        budget.balance, budget.next_request_max
    );
    Ok(())
}
