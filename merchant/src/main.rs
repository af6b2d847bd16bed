//! `merchant`: balance, settle, settlements, pubkey, recover.

use std::str::FromStr;

use anyhow::{bail, Context};
use clap::Parser;
use merchant::cli::{Cli, Command};
use merchant::{Merchant, SettlementSource};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    // A mistyped --data-dir must not quietly create an empty wallet; `pubkey` may set one up.
    if !matches!(cli.command, Command::Pubkey)
        && !cli.data_dir.join(merchant::seed::SEED_FILE).exists()
    {
        bail!(
            "no merchant data in {} (no {}): check --data-dir / MERCHANT_DATA_DIR",
            cli.data_dir.display(),
            merchant::seed::SEED_FILE
        );
    }
    let merchant = Merchant::open(&cli.data_dir).await.with_context(|| {
        format!(
            "cannot open the merchant data dir {}",
            cli.data_dir.display()
        )
    })?;
    match &cli.command {
        Command::Balance => balance(&cli, &merchant).await,
        Command::Settle { invoice, unit } => settle(&cli, &merchant, invoice, unit).await,
        Command::Settlements { limit } => settlements(&cli, &merchant, *limit).await,
        Command::Pubkey => {
            let pk = merchant.pubkey().to_string();
            if cli.json {
                println!("{}", serde_json::json!({ "pubkey": pk }));
            } else {
                println!("{pk}");
            }
            Ok(())
        }
        Command::Recover => {
            let summary = merchant.recover().await?;
            if cli.json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                println!("{summary:?}");
            }
            Ok(())
        }
    }
}

async fn balance(cli: &Cli, merchant: &Merchant) -> anyhow::Result<()> {
    let balances = merchant.balances().await?;
    if cli.json {
        println!("{}", serde_json::to_string(&balances)?);
        return Ok(());
    }
    if balances.is_empty() {
        println!("no ecash yet");
    }
    for b in balances {
        println!(
            "{}\t{} {}\t(pending {}, held {} not yet redeemed)",
            b.mint_url, b.spendable, b.unit, b.pending, b.held
        );
    }
    Ok(())
}

async fn settle(cli: &Cli, merchant: &Merchant, invoice: &str, unit: &str) -> anyhow::Result<()> {
    let unit = cdk::nuts::CurrencyUnit::from_str(unit).context("--unit")?;
    let mint = match &cli.mint {
        Some(m) => cdk::mint_url::MintUrl::from_str(m).context("--mint")?,
        None => {
            let holding: Vec<_> = merchant
                .balances()
                .await?
                .into_iter()
                .filter(|b| b.unit == unit.to_string() && b.spendable > 0)
                .collect();
            match holding.as_slice() {
                [one] => cdk::mint_url::MintUrl::from_str(&one.mint_url)?,
                [] => bail!("no {unit} balance to settle"),
                _ => bail!("ecash at several mints: choose one with --mint"),
            }
        }
    };
    let s = merchant::settle(merchant, &mint, &unit, invoice, SettlementSource::Manual).await?;
    if cli.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "paid {} {} (fee {} {}) to {}",
            s.amount,
            s.unit,
            s.fee.unwrap_or(0),
            s.unit,
            short(&s.invoice)
        );
    }
    Ok(())
}

async fn settlements(cli: &Cli, merchant: &Merchant, limit: usize) -> anyhow::Result<()> {
    // Pending ones are resolved first (the mint is asked what became of their melt).
    let list = merchant.settlements(limit).await?;
    if cli.json {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("no settlements yet");
    }
    for s in list {
        println!(
            "#{}\t{}\t{}\t{} {}\tfee {}\t{}\t{}{}",
            s.id,
            s.created_at,
            s.outcome,
            s.amount,
            s.unit,
            s.fee.map(|f| f.to_string()).unwrap_or_else(|| "-".into()),
            s.source,
            short(&s.invoice),
            s.detail.map(|d| format!("\t{d}")).unwrap_or_default()
        );
    }
    Ok(())
}

fn short(invoice: &str) -> String {
    let head: String = invoice.chars().take(24).collect();
    if head.len() < invoice.len() {
        format!("{head}...")
    } else {
        head
    }
}
