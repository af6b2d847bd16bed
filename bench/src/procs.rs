//! The processes under test: our mint and paywall, Nutshell's mint and cdk-mintd, each on a
//! 127.0.0.1 port, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running server process.
pub struct Service {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// Last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// The process id (for reading its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn log_file(path: &Path) -> anyhow::Result<std::fs::File> {
    Ok(std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?)
}

/// Spawns `cmd` and waits for the `listening on http://ADDR` line our binaries print.
fn spawn_announcing(mut cmd: Command, log: PathBuf) -> anyhow::Result<Service> {
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file(&log)?))
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    match rx.recv_timeout(START_DEADLINE) {
        Ok(url) => Ok(Service { child, url, log }),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "did not start within {START_DEADLINE:?}:\n{}",
                log_tail(&log)
            )
        }
    }
}

/// Spawns a server that says nothing on stdout and waits until `GET url/v1/info` answers.
async fn spawn_polled(mut cmd: Command, url: String, log: PathBuf) -> anyhow::Result<Service> {
    let child = cmd
        .stdout(Stdio::from(log_file(&log)?))
        .stderr(Stdio::from(log_file(&log)?))
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let mut svc = Service { child, url, log };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Ok(res) = http.get(format!("{}/v1/info", svc.url)).send().await {
            if res.status().is_success() {
                return Ok(svc);
            }
        }
        if let Ok(Some(status)) = svc.child.try_wait() {
            bail!("exited with {status}:\n{}", svc.log_tail());
        }
        if Instant::now() > deadline {
            bail!(
                "did not answer within {START_DEADLINE:?}:\n{}",
                svc.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Our mint with `config` (TOML) in a fresh data directory under `dir`.
pub fn allowance_mint(
    bin: &Path,
    dir: &Path,
    config: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<Service> {
    std::fs::create_dir_all(dir)?;
    let config_file = dir.join("config.toml");
    // No admin API: its fixed default port may be taken, and the bench never uses it.
    std::fs::write(&config_file, format!("[admin]\nenabled = false\n{config}"))?;
    let mut cmd = Command::new(bin);
    cmd.arg("--config")
        .arg(&config_file)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .env_remove("ALLOWANCE_MINT_PUBLIC_URL")
        .envs(env.iter().copied());
    spawn_announcing(cmd, dir.join("mint.log"))
}

/// The `paid_api` example in front of `mint_url`; with `lock`, it asks for tokens P2PK-locked to
/// the merchant with DLEQ proofs, and serves them after the offline checks (redeeming later).
pub fn paid_api(bin: &Path, dir: &Path, mint_url: &str, lock: bool) -> anyhow::Result<Service> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Command::new(bin);
    if lock {
        cmd.arg("--lock");
    }
    cmd.arg("--mint-url")
        .arg(mint_url)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(dir.join("data"));
    spawn_announcing(cmd, dir.join("paid_api.log"))
}

/// Nutshell's mint from a virtualenv: FakeWallet, SQLite, no rate limit, no input fee.
pub async fn nutshell(venv: &Path, dir: &Path) -> anyhow::Result<Service> {
    let python = venv.join("bin/python");
    if !python.exists() {
        bail!("no Nutshell virtualenv at {}", venv.display());
    }
    std::fs::create_dir_all(dir)?;
    let port = free_port()?;
    let key: [u8; 32] = rand::random();
    let mut cmd = Command::new(python);
    cmd.args(["-m", "cashu.mint"])
        .current_dir(dir)
        .env("CASHU_DIR", dir)
        .env("MINT_DATABASE", dir.join("mint"))
        .env("MINT_LISTEN_HOST", "127.0.0.1")
        .env("MINT_LISTEN_PORT", port.to_string())
        .env("MINT_URL", format!("http://127.0.0.1:{port}"))
        .env("MINT_BACKEND_BOLT11_SAT", "FakeWallet")
        .env("MINT_PRIVATE_KEY", hex::encode(key))
        .env("MINT_RATE_LIMIT", "FALSE")
        .env("MINT_INPUT_FEE_PPK", "0")
        .env("FAKEWALLET_BRR", "TRUE")
        .env("FAKEWALLET_DELAY_INCOMING_PAYMENT", "0")
        .env("FAKEWALLET_DELAY_OUTGOING_PAYMENT", "0")
        .env("LIGHTNING_FEE_PERCENT", "1.0")
        .env("LIGHTNING_RESERVE_FEE_MIN", "2000")
        .env("DEBUG", "FALSE")
        .env("LOG_LEVEL", "WARNING");
    spawn_polled(
        cmd,
        format!("http://127.0.0.1:{port}"),
        dir.join("nutshell.log"),
    )
    .await
}

/// cdk-mintd with only the fake wallet and SQLite: `config init --new-mint`, then run.
pub async fn cdk_mintd(bin: &Path, dir: &Path) -> anyhow::Result<Service> {
    if !bin.exists() {
        bail!("no cdk-mintd at {}", bin.display());
    }
    std::fs::create_dir_all(dir)?;
    let port = free_port()?;
    let mnemonic = bip39::Mnemonic::generate(12)?.to_string();
    let config = format!(
        r#"[info]
url = "http://127.0.0.1:{port}/"
listen_host = "127.0.0.1"
listen_port = {port}
mnemonic = "env:CDK_MINTD_MNEMONIC"
input_fee_ppk = 0

[database]
engine = "sqlite"

[payment_backend]
backend = "fakewallet"
unit = "sat"

[fake_wallet]
supported_units = ["sat"]
fee_percent = 0.02
reserve_fee_min = 2
min_delay_time = 0
max_delay_time = 0
"#
    );
    let config_file = dir.join("config.toml");
    std::fs::write(&config_file, config)?;
    let log = dir.join("cdk-mintd.log");
    let init = Command::new(bin)
        .arg("--work-dir")
        .arg(dir)
        .args(["config", "init", "--new-mint", "--file"])
        .arg(&config_file)
        .env("CDK_MINTD_MNEMONIC", &mnemonic)
        .stdout(Stdio::from(log_file(&log)?))
        .stderr(Stdio::from(log_file(&log)?))
        .status()?;
    if !init.success() {
        bail!("cdk-mintd config init failed:\n{}", log_tail(&log));
    }
    let mut cmd = Command::new(bin);
    cmd.arg("--work-dir")
        .arg(dir)
        .env("CDK_MINTD_MNEMONIC", &mnemonic)
        .env("RUST_LOG", "warn");
    spawn_polled(cmd, format!("http://127.0.0.1:{port}"), log).await
}

/// Makes a fresh database `name` on the PostgreSQL server of `url` (keyword form) with `psql`
/// and returns the connection string for it.
pub fn fresh_postgres_db(url: &str, name: &str) -> anyhow::Result<String> {
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        let out = Command::new("psql")
            .arg(url)
            .args(["-q", "-c", &sql])
            .output()
            .context("run psql")?;
        if !out.status.success() {
            bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let kept: Vec<&str> = url
        .split_whitespace()
        .filter(|kv| !kv.starts_with("dbname="))
        .collect();
    Ok(format!("{} dbname={name}", kept.join(" ")))
}
