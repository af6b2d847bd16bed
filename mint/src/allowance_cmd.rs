//! `allowance-mint allowance …`: the admin API from the command line.

use std::io::Write;
use std::time::Duration;

use allowance_mint::admin::qr;
use allowance_mint::admin_client::AdminClient;
use allowance_mint::cli::{AllowanceArgs, AllowanceCommand};
use allowance_mint::config::Config;
use cashu_402::allowance::{AllowanceView, CreateMetered, CreatePrepaid};

/// How long `new` and `topup` wait for the invoice to be paid.
const PAY_WAIT: Duration = Duration::from_secs(3600);

pub async fn run(config: &Config, args: AllowanceArgs) -> anyhow::Result<()> {
    let client = AdminClient::from_config(config, args.admin_url.as_deref())?;
    let json = args.json;
    match args.command {
        AllowanceCommand::New {
            amount,
            memo,
            metered,
            per_draw,
            per_day,
            expires_days,
            agent_pubkey,
            no_wait,
        } => {
            let view = if metered {
                let per_draw = per_draw.unwrap_or(amount);
                let req = CreateMetered {
                    amount,
                    max_per_draw: per_draw,
                    max_per_day: per_day.unwrap_or(per_draw.max(amount)),
                    expires_at: expires_days.map(|d| now() + d.saturating_mul(86_400)),
                    memo,
                    agent_pubkey,
                };
                client.create_metered(&req).await?
            } else {
                client
                    .create_prepaid(&CreatePrepaid { amount, memo })
                    .await?
            };
            print_invoice(&view, json)?;
            if !no_wait {
                let quote = view.fundings.last().map(|f| f.quote_id.clone());
                let paid = wait_paid(&client, &view.id, quote.as_deref(), json).await?;
                print_secret(&paid, view.credential.as_deref(), json)?;
            }
        }
        AllowanceCommand::Show { id } => {
            let view = client.show(&id).await?;
            if json {
                println!("{}", serde_json::to_string(&view)?);
            } else {
                print_view(&view);
                if let Some(token) = &view.token {
                    println!("\ntoken (shown once; hand it to the agent):\n{token}");
                }
            }
        }
        AllowanceCommand::List => {
            let list = client.list().await?;
            if json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                println!(
                    "{:<26}  {:<8}  {:<16}  {:>10}  {:>10}  memo",
                    "id", "kind", "state", "balance", "drawn 24h"
                );
                for v in list {
                    println!(
                        "{:<26}  {:<8}  {:<16}  {:>10}  {:>10}  {}",
                        v.id,
                        v.kind,
                        v.state,
                        v.balance,
                        v.drawn_24h,
                        v.memo.unwrap_or_default()
                    );
                }
            }
        }
        AllowanceCommand::Topup {
            id,
            amount,
            no_wait,
        } => {
            let view = client.top_up(&id, amount).await?;
            print_invoice(&view, json)?;
            if !no_wait {
                let quote = view.fundings.last().map(|f| f.quote_id.clone());
                let paid = wait_paid(&client, &id, quote.as_deref(), json).await?;
                if json {
                    println!("{}", serde_json::to_string(&paid)?);
                } else {
                    println!("paid: the balance is now {} sat", paid.balance);
                }
            }
        }
        AllowanceCommand::Revoke { id } => {
            let view = client.revoke(&id).await?;
            if json {
                println!("{}", serde_json::to_string(&view)?);
            } else {
                println!(
                    "{} revoked; {} sat left (withdraw it with `allowance withdraw`)",
                    view.id, view.balance
                );
            }
        }
        AllowanceCommand::Withdraw { id, invoice } => {
            let view = client.withdraw(&id, &invoice).await?;
            if json {
                println!("{}", serde_json::to_string(&view)?);
            } else {
                match view
                    .history
                    .iter()
                    .rev()
                    .find(|h| h.kind.starts_with("withdraw"))
                {
                    Some(h) if h.kind == "withdrawn" => println!(
                        "paid {} sat (fee {} sat); {} sat left",
                        h.amount, h.fee, view.balance
                    ),
                    _ => println!("payment in flight; `allowance show {id}` tells when it settles"),
                }
            }
        }
        AllowanceCommand::Books => {
            println!("{}", serde_json::to_string_pretty(&client.books().await?)?);
        }
    }
    Ok(())
}

fn now() -> u64 {
    cdk::util::unix_time()
}

fn print_invoice(view: &AllowanceView, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(view)?);
        return Ok(());
    }
    let Some(f) = view.fundings.iter().rev().find(|f| f.state == "unpaid") else {
        return Ok(());
    };
    println!(
        "{} allowance {}: pay {} sat to this invoice",
        view.kind, view.id, f.amount
    );
    match qr::terminal(&f.invoice) {
        Ok(code) => println!("{code}"),
        Err(e) => eprintln!("(no QR code: {e})"),
    }
    println!("{}", f.invoice);
    std::io::stdout().flush()?;
    Ok(())
}

/// Polls until the funding `quote` is paid (prepaid: until the token comes back).
async fn wait_paid(
    client: &AdminClient,
    id: &str,
    quote: Option<&str>,
    json: bool,
) -> anyhow::Result<AllowanceView> {
    if !json {
        eprintln!("waiting for the payment (Ctrl-C to stop; `allowance show {id}` later)…");
    }
    let deadline = tokio::time::Instant::now() + PAY_WAIT;
    loop {
        let view = client.show(id).await?;
        let paid = match view.kind.as_str() {
            "prepaid" => view.token.is_some() || view.state == "delivered",
            _ => view
                .fundings
                .iter()
                .any(|f| Some(f.quote_id.as_str()) == quote && f.state == "paid"),
        };
        if paid {
            return Ok(view);
        }
        if view
            .fundings
            .iter()
            .any(|f| Some(f.quote_id.as_str()) == quote && f.state == "expired")
        {
            anyhow::bail!("the invoice expired unpaid");
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("gave up waiting for the payment");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn print_secret(view: &AllowanceView, credential: Option<&str>, json: bool) -> anyhow::Result<()> {
    if json {
        let mut v = serde_json::to_value(view)?;
        if let (Some(c), Some(map)) = (credential, v.as_object_mut()) {
            map.insert("credential".into(), c.into());
        }
        println!("{v}");
        return Ok(());
    }
    if let Some(token) = &view.token {
        println!("paid. The agent's token (shown once):\n{token}");
    } else if let Some(c) = credential {
        println!("paid. The agent's credential (shown once):\n{c}");
        println!("on the agent: agent-wallet allowance connect '{c}'");
    } else {
        println!("paid: the balance is {} sat", view.balance);
    }
    Ok(())
}

fn print_view(v: &AllowanceView) {
    println!("{} ({}, {})", v.id, v.kind, v.state);
    if let Some(m) = &v.memo {
        println!("  memo: {m}");
    }
    println!("  amount: {} sat, balance: {} sat", v.amount, v.balance);
    if let Some(p) = &v.policy {
        println!(
            "  per draw: {} sat, per 24 h: {} sat, drawn 24 h: {} sat{}",
            p.max_per_draw,
            p.max_per_day,
            v.drawn_24h,
            p.expires_at
                .map(|e| format!(", expires at {e} (unix)"))
                .unwrap_or_default()
        );
    }
    for f in &v.fundings {
        println!("  invoice {} sat: {}", f.amount, f.state);
    }
    for h in &v.history {
        println!(
            "  {}  {:<18} {:>8} sat{}{}",
            h.time,
            h.kind,
            h.amount,
            if h.fee > 0 {
                format!(" (fee {})", h.fee)
            } else {
                String::new()
            },
            if h.detail.is_empty() {
                String::new()
            } else {
                format!("  {}", h.detail)
            }
        );
    }
}
