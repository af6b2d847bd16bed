//! The commands of the `agent-wallet` binary.

mod mcp;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use agent_wallet::cashu_402::Amount;
use agent_wallet::{
    exit_code, AgentWallet, Config, LedgerEntry, PayRequest, ReceiveOutcome, WalletError,
    WalletOptions,
};
use anyhow::Context;
use cdk::mint_url::MintUrl;

use crate::{AllowanceAction, Cli, Command, PolicyAction};

/// Runs one command; returns the exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let data_dir = data_dir(cli.data_dir.clone())?;
    let mut config = Config::load(&data_dir)?;
    let mint = cli
        .mint
        .as_deref()
        .map(MintUrl::from_str)
        .transpose()
        .map_err(|e| WalletError::Config {
            detail: format!("--mint: {e}"),
        })?;
    let mut policy = config.policy.clone();
    for kv in &cli.policy_overrides {
        let (k, v) = kv.split_once('=').ok_or_else(|| WalletError::Config {
            detail: format!("--policy {kv:?} is not KEY=VALUE"),
        })?;
        policy.set(k.trim(), v).map_err(|e| WalletError::Config {
            detail: e.to_string(),
        })?;
    }

    let mut options = WalletOptions::new(&data_dir);
    options.mint = mint.clone();
    options.policy = Some(policy);
    if let Command::Fetch { timeout, .. } | Command::Mcp { timeout } = &cli.command {
        options.request_timeout = Duration::from_secs(*timeout);
    }
    let wallet = AgentWallet::open_with(options).await?;
    import_env_token(&wallet).await?;

    let json = cli.json;
    match cli.command {
        Command::Init => {
            let created = !Config::path(&data_dir).exists();
            if let Some(m) = &mint {
                config.mint = Some(m.to_string());
            }
            if created || mint.is_some() {
                config.save(&data_dir)?;
            }
            if json {
                print_json(&serde_json::json!({
                    "data_dir": data_dir, "mint": wallet.home_mint().map(|m| m.to_string()),
                    "config_created": created,
                }));
            } else {
                println!("wallet ready in {}", data_dir.display());
            }
        }
        Command::Receive { token } => {
            let token = if token == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading the token from stdin")?;
                s
            } else {
                token
            };
            let outcome = wallet.receive(&token).await?;
            if json {
                print_json(&serde_json::to_value(outcome)?);
            } else {
                match outcome {
                    ReceiveOutcome::Received { amount } => println!("received {amount} sat"),
                    ReceiveOutcome::AlreadyImported => println!("already imported"),
                }
            }
        }
        Command::Balance => {
            let balances = wallet.balances().await?;
            if json {
                print_json(&serde_json::to_value(&balances)?);
            } else {
                println!("{} sat", balances.total);
                for (m, b) in &balances.mints {
                    println!("  {b} sat at {m}");
                }
            }
        }
        Command::Send { amount } => {
            let sent = wallet.send(amount, mint.as_ref()).await?;
            if json {
                print_json(&serde_json::to_value(&sent)?);
            } else {
                println!("{}", sent.token);
            }
        }
        Command::Fetch {
            url,
            method,
            data,
            headers,
            max_cost,
            ..
        } => return fetch(&wallet, url, method, data, headers, max_cost, json).await,
        Command::Mcp { timeout } => return mcp::serve(wallet, Duration::from_secs(timeout)).await,
        Command::Budget { host } => {
            let b = wallet.budget(host.as_deref()).await?;
            if json {
                print_json(&serde_json::to_value(&b)?);
            } else {
                println!("{}", serde_json::to_string_pretty(&b)?);
            }
        }
        Command::Ledger { json: as_json, csv } => {
            let entries = wallet.ledger()?;
            if as_json || json {
                print_json(&agent_wallet::to_json(&entries));
            } else if csv {
                write_stdout(agent_wallet::to_csv(&entries).as_bytes());
            } else {
                print_table(&entries);
            }
        }
        Command::Allowance { action } => {
            let value = match action {
                AllowanceAction::Connect { credential } => {
                    let info = wallet.connect_allowance(credential.trim()).await?;
                    if !json {
                        println!(
                            "connected to allowance {} at {} (agent key {})",
                            info.allowance, info.mint, info.agent_pubkey
                        );
                    }
                    serde_json::to_value(&info)?
                }
                AllowanceAction::Keygen => {
                    let pk = wallet.allowance_keygen()?;
                    if !json {
                        println!("{pk}");
                    }
                    serde_json::json!({ "agent_pubkey": pk })
                }
                AllowanceAction::Show => {
                    let info = wallet.allowance()?.ok_or(WalletError::NoAllowance)?;
                    if !json {
                        println!(
                            "allowance {} at {} (agent key {})",
                            info.allowance, info.mint, info.agent_pubkey
                        );
                    }
                    serde_json::to_value(&info)?
                }
                AllowanceAction::Status => {
                    let s = wallet.allowance_status().await?;
                    if !json {
                        println!(
                            "allowance {} is {}: {} sat left, {} drawn in 24 h; may draw {} now, {} in the next 24 h (caps {} per draw, {} per day)",
                            s.allowance,
                            s.state,
                            s.balance,
                            s.drawn_24h,
                            s.draw_now,
                            s.draw_room_24h,
                            s.policy.max_per_draw,
                            s.policy.max_per_day
                        );
                    }
                    serde_json::to_value(&s)?
                }
                AllowanceAction::Draw { amount } => {
                    let got = wallet.draw(amount).await?;
                    if !json {
                        println!("drew {got} sat");
                    }
                    serde_json::json!({ "drawn": got })
                }
            };
            if json {
                print_json(&value);
            }
        }
        Command::Policy { action } => {
            let policy = match action {
                PolicyAction::Show => wallet.policy().clone(),
                PolicyAction::Set { key, value } => {
                    let mut config = Config::load(&data_dir)?;
                    config
                        .policy
                        .set(&key, &value)
                        .map_err(|e| WalletError::Config {
                            detail: e.to_string(),
                        })?;
                    config.save(&data_dir)?;
                    config.policy
                }
            };
            if json {
                print_json(&serde_json::to_value(&policy)?);
            } else {
                println!("{policy}");
            }
        }
    }
    Ok(exit_code::OK)
}

async fn fetch(
    wallet: &AgentWallet,
    url: String,
    method: String,
    data: Option<String>,
    headers: Vec<String>,
    max_cost: Option<u64>,
    json: bool,
) -> anyhow::Result<i32> {
    let url = url::Url::parse(&url).map_err(|e| WalletError::Invalid(format!("URL: {e}")))?;
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|e| WalletError::Invalid(format!("method: {e}")))?;
    let mut req = PayRequest::new(method, url).max_cost(max_cost);
    for h in &headers {
        req = req.header_line(h)?;
    }
    if let Some(data) = data {
        req = req.body(read_body(&data)?);
    }
    let answer = wallet.fetch(req).await?;
    let status = answer.response.status;
    if json {
        print_json(&serde_json::json!({
            "status": status.as_u16(),
            "cost": answer.cost(),
            "payment": answer.payment.as_ref().map(|p| agent_wallet::to_json(std::slice::from_ref(p))[0].clone()),
            "body": answer.response.text(),
        }));
    } else {
        write_stdout(&answer.response.body);
        match &answer.payment {
            Some(p) => eprintln!(
                "HTTP {status}; paid {} sat (price {}, fee {}) at {}: {}",
                p.cost(),
                p.amount,
                p.fee,
                p.mint,
                p.outcome
            ),
            None => eprintln!("HTTP {status}; no payment"),
        }
    }
    Ok(if status.as_u16() >= 400 {
        exit_code::HTTP_ERROR
    } else {
        exit_code::OK
    })
}

/// Imports `AGENT_WALLET_TOKEN` if set. A token imported before is a no-op; a malformed one is
/// a configuration error; one the mint will not take is a warning, so the command still runs.
async fn import_env_token(wallet: &AgentWallet) -> anyhow::Result<()> {
    let Ok(token) = std::env::var("AGENT_WALLET_TOKEN") else {
        return Ok(());
    };
    if token.trim().is_empty() {
        return Ok(());
    }
    match wallet.receive(&token).await {
        Ok(ReceiveOutcome::Received { amount }) => {
            eprintln!("agent-wallet: imported {amount} sat from AGENT_WALLET_TOKEN");
        }
        Ok(ReceiveOutcome::AlreadyImported) => {}
        Err(WalletError::Invalid(e)) => {
            return Err(WalletError::Config {
                detail: format!("AGENT_WALLET_TOKEN: {e}"),
            }
            .into())
        }
        Err(e) => eprintln!("agent-wallet: warning: AGENT_WALLET_TOKEN not imported: {e}"),
    }
    Ok(())
}

fn data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(d) = flag {
        return Ok(d);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("agent-wallet"));
    }
    let home = std::env::var_os("HOME").ok_or_else(|| WalletError::Config {
        detail: "no --data-dir, AGENT_WALLET_DATA_DIR or HOME".into(),
    })?;
    Ok(PathBuf::from(home).join(".local/share/agent-wallet"))
}

fn read_body(data: &str) -> anyhow::Result<Vec<u8>> {
    match data.strip_prefix('@') {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            Ok(buf)
        }
        Some(path) => {
            std::fs::read(path).map_err(|e| WalletError::Invalid(format!("-d @{path}: {e}")).into())
        }
        None => Ok(data.as_bytes().to_vec()),
    }
}

fn print_table(entries: &[LedgerEntry]) {
    println!(
        "{:<20}  {:<17}  {:>8}  {:>5}  {:<6}  {:<24}  path",
        "time (UTC)", "outcome", "amount", "fee", "method", "host"
    );
    for e in entries {
        println!(
            "{:<20}  {:<17}  {:>8}  {:>5}  {:<6}  {:<24}  {}",
            agent_wallet::rfc3339(e.time),
            e.outcome.as_str(),
            e.amount,
            e.fee,
            e.method,
            e.host,
            e.path
        );
    }
    let total: u64 = entries.iter().map(LedgerEntry::cost).sum();
    println!("total spent: {} sat", Amount::from(total));
}

fn print_json(v: &serde_json::Value) {
    println!("{v}");
}

/// Writes bytes to stdout; a closed pipe is not an error worth a panic.
pub fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|_| out.flush());
}
