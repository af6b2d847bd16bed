//! Test support: the real `allowance-mint` binary on loopback, and cdk wallets that talk to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdk::amount::SplitTarget;
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, MintQuoteState, PaymentMethod};
use cdk::wallet::{Wallet, WalletBuilder};
use cdk::Amount;

/// How long a test waits for something that should happen quickly before it fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Path of the `allowance-mint` binary that `cargo test --workspace` built beside this test.
pub fn mint_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let bin = dir.join("allowance-mint");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p allowance-mint`) first",
        bin.display()
    );
    bin
}

/// A running mint process with its own data directory.
pub struct MintProcess {
    child: Option<Child>,
    pub url: String,
    pub port: u16,
    /// The admin API and web page (on a port of its own).
    pub admin_url: String,
    pub data_dir: PathBuf,
    pub log_file: PathBuf,
    config: String,
    /// The binary and its extra flags, to start it again the same way.
    program: PathBuf,
    extra_args: Vec<String>,
}

impl MintProcess {
    /// Starts a mint on a free port with `config` (TOML, may be empty) in a fresh data dir
    /// under `root`.
    pub fn start(root: &Path, config: &str) -> Self {
        Self::start_on(root.join("mint-data"), config, 0)
    }

    /// Starts (or restarts) a mint on `data_dir`, listening on `port` (0 for any).
    pub fn start_on(data_dir: PathBuf, config: &str, port: u16) -> Self {
        Self::start_on_with_env(data_dir, config, port, &[])
    }

    /// [`MintProcess::start`] with extra environment variables for the mint process (for
    /// secrets given as `env:NAME` in `config`).
    pub fn start_with_env(root: &Path, config: &str, env: &[(&str, &str)]) -> Self {
        Self::start_on_with_env(root.join("mint-data"), config, 0, env)
    }

    /// [`MintProcess::start_on`] with extra environment variables for the mint process.
    pub fn start_on_with_env(
        data_dir: PathBuf,
        config: &str,
        port: u16,
        env: &[(&str, &str)],
    ) -> Self {
        Self::launch(&mint_binary(), &[], data_dir, config, port, env)
    }

    /// The real mint with its Lightning backend replaced by node `node` of the simulated
    /// network at `lnsim_url` (the test-only `allowance-mint-lnsim` binary).
    pub fn start_lnsim(root: &Path, config: &str, lnsim_url: &str, node: &str) -> Self {
        let args = ["--lnsim-url", lnsim_url, "--lnsim-node", node];
        Self::launch(
            &workspace_binary("allowance-mint-lnsim"),
            &args,
            root.join("mint-data"),
            config,
            0,
            &[],
        )
    }

    fn launch(
        program: &Path,
        extra_args: &[&str],
        data_dir: PathBuf,
        config: &str,
        port: u16,
        env: &[(&str, &str)],
    ) -> Self {
        std::fs::create_dir_all(&data_dir).unwrap();
        let config_file = data_dir.with_extension("toml");
        std::fs::write(&config_file, config).unwrap();
        let log_file = data_dir.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_file)
            .unwrap();
        let mut child = Command::new(program)
            .args(extra_args)
            .arg("--config")
            .arg(&config_file)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--admin-listen")
            .arg("127.0.0.1:0")
            .env_remove("ALLOWANCE_MINT_PUBLIC_URL")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut admin = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("admin listening on ") {
                    admin = url.to_string();
                }
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send((url.to_string(), admin.clone()));
                }
            }
        });
        let (url, admin_url) = match rx.recv_timeout(DEADLINE) {
            Ok(urls) => urls,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "mint did not start within {DEADLINE:?}; log:\n{}",
                    std::fs::read_to_string(&log_file).unwrap_or_default()
                );
            }
        };
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        Self {
            child: Some(child),
            url,
            port,
            admin_url,
            data_dir,
            log_file,
            config: config.to_string(),
            program: program.to_path_buf(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// Stops with SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> Restartable {
        let mut child = self.child.take().unwrap();
        signal(&child, "TERM");
        let status = wait_with_deadline(&mut child);
        assert!(
            status.success(),
            "mint exited with {status} after SIGTERM; log:\n{}",
            self.log()
        );
        self.restartable()
    }

    /// Kills with SIGKILL: no chance to clean up.
    pub fn kill(mut self) -> Restartable {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        self.restartable()
    }

    fn restartable(&self) -> Restartable {
        Restartable {
            data_dir: self.data_dir.clone(),
            port: self.port,
            config: self.config.clone(),
            program: self.program.clone(),
            extra_args: self.extra_args.clone(),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }
}

impl Drop for MintProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What is needed to start a stopped mint again on the same port and data.
pub struct Restartable {
    pub data_dir: PathBuf,
    pub port: u16,
    pub config: String,
    program: PathBuf,
    extra_args: Vec<String>,
}

impl Restartable {
    pub fn start(self) -> MintProcess {
        let config = self.config.clone();
        self.start_with_config(&config)
    }

    pub fn start_with_config(self, config: &str) -> MintProcess {
        self.launch(config, &[])
    }

    /// Restarts with the same config and extra environment variables for the mint process.
    pub fn start_with_env(self, env: &[(&str, &str)]) -> MintProcess {
        let config = self.config.clone();
        self.launch(&config, env)
    }

    fn launch(self, config: &str, env: &[(&str, &str)]) -> MintProcess {
        let args: Vec<&str> = self.extra_args.iter().map(String::as_str).collect();
        MintProcess::launch(&self.program, &args, self.data_dir, config, self.port, env)
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_with_deadline(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "process did not exit within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A cdk wallet for `mint_url`, with its SQLite file in `dir`, a fresh random seed and no
/// client-side rate limit.
pub async fn wallet(mint_url: &str, dir: &Path) -> Wallet {
    let seed: [u8; 64] = bip39::Mnemonic::generate(12)
        .unwrap()
        .to_seed_normalized("");
    wallet_with_seed(mint_url, dir, seed).await
}

pub async fn wallet_with_seed(mint_url: &str, dir: &Path, seed: [u8; 64]) -> Wallet {
    std::fs::create_dir_all(dir).unwrap();
    let db = cdk_sqlite::WalletSqliteDatabase::new(dir.join("wallet.sqlite"))
        .await
        .unwrap();
    WalletBuilder::new()
        .mint_url(MintUrl::from_str_checked(mint_url))
        .unit(CurrencyUnit::Sat)
        .localstore(Arc::new(db))
        .seed(seed)
        .without_rate_limiting()
        .build()
        .unwrap()
}

trait MintUrlExt {
    fn from_str_checked(s: &str) -> MintUrl;
}

impl MintUrlExt for MintUrl {
    fn from_str_checked(s: &str) -> MintUrl {
        s.parse().unwrap()
    }
}

/// Mints `amount` sat into `wallet` through a bolt11 quote the fake backend pays by itself.
pub async fn fund(wallet: &Wallet, amount: u64) -> Amount {
    let quote = wallet
        .mint_quote(
            PaymentMethod::BOLT11,
            Some(Amount::from(amount)),
            None,
            None,
        )
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let q = wallet.check_mint_quote_status(&quote.id).await.unwrap();
        if q.state == MintQuoteState::Paid {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "quote never paid");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let proofs = wallet
        .mint(&quote.id, SplitTarget::default(), None)
        .await
        .unwrap();
    Amount::try_sum(proofs.iter().map(|p| p.amount)).unwrap()
}

/// A fake-backend invoice for `amount_sat`; the fake backend "pays" it successfully.
pub fn fake_invoice(amount_sat: u64) -> String {
    cdk_fake_wallet::create_fake_invoice(amount_sat * 1000, "e2e".to_string()).to_string()
}

/// Polls `check` until it returns `Some`, failing the test after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Raw HTTP against the mint, for the error-path tests.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

impl MintProcess {
    /// Stops the mint (SIGTERM) and returns everything it logged.
    pub fn stop_and_read_log(self) -> String {
        let log_file = self.log_file.clone();
        self.stop();
        std::fs::read_to_string(log_file).unwrap_or_default()
    }
}

/// A binary of this workspace, built by `cargo test --workspace` beside the tests.
pub fn workspace_binary(name: &str) -> PathBuf {
    let bin = mint_binary().with_file_name(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// An example of this workspace (`cargo test --workspace` builds examples too).
pub fn workspace_example(name: &str) -> PathBuf {
    let bin = mint_binary().with_file_name("examples").join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Any long-running process of ours that prints `listening on http://ADDR` once it serves.
pub struct ServiceProcess {
    child: Option<Child>,
    pub url: String,
    pub log_file: PathBuf,
}

impl ServiceProcess {
    pub fn start(program: &Path, args: &[&str], log_file: PathBuf) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_file)
            .unwrap();
        let mut child = Command::new(program)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "{} did not start; log:\n{}",
                program.display(),
                std::fs::read_to_string(&log_file).unwrap_or_default()
            )
        });
        Self {
            child: Some(child),
            url,
            log_file,
        }
    }

    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `agent-wallet` CLI on a data dir and home mint.
pub struct AgentCli {
    pub data_dir: PathBuf,
    pub mint_url: String,
}

/// What one CLI run gave back.
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl AgentCli {
    pub fn run(&self, args: &[&str]) -> CliRun {
        let out = Command::new(workspace_binary("agent-wallet"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--mint")
            .arg(&self.mint_url)
            .args(args)
            .env_remove("AGENT_WALLET_TOKEN")
            .output()
            .unwrap();
        CliRun {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and requires exit code 0.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "agent-wallet {args:?}: {}\n{}",
            r.stderr, r.stdout
        );
        r.stdout
    }

    pub fn balance(&self) -> u64 {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["--json", "balance"])).unwrap();
        v["total"].as_u64().unwrap()
    }

    pub fn ledger(&self) -> Vec<serde_json::Value> {
        serde_json::from_str::<serde_json::Value>(&self.ok(&["ledger", "--json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

/// `merchant` CLI calls on a data dir (run them while no server holds that dir).
pub fn merchant_cli(data_dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(workspace_binary("merchant"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "merchant {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The merchant's spendable balance, summed over mints.
pub fn merchant_balance(data_dir: &Path) -> u64 {
    merchant_cli(data_dir, &["balance"])
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["spendable"].as_u64().unwrap())
        .sum()
}

impl MintProcess {
    /// The admin token the mint generated in its data dir.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// `method path` on the admin API with the token; returns the status and the JSON body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = http()
            .request(method, format!("{}{path}", self.admin_url))
            .bearer_auth(self.admin_token());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        if status >= 500 {
            eprintln!("admin {path}: {status} {text}; mint log:\n{}", self.log());
        }
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// Runs `cmd` to its end with `stdin` as its input, failing the test if it runs past `deadline`
/// (it is killed then). Its exit code (-1 for a signal), stdout and stderr.
pub fn run_with_deadline(cmd: &mut Command, stdin: &str, deadline: Duration) -> CliRun {
    use std::io::{Read, Write};
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_string();
    std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let Some(status) = status else {
        panic!("{cmd:?} did not finish within {deadline:?}\nstdout:\n{stdout}\nstderr:\n{stderr}")
    };
    CliRun {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// A third-party client a test needs: present, or the test is skipped locally and fails under
/// `CI` (set by `.ci/run` and CI systems) with `hint` on how to install it.
pub fn require_tool<T>(found: Option<T>, what: &str, hint: &str) -> Option<T> {
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is not installed and CI is set: {hint}"
        );
        eprintln!("SKIPPED: {what} is not installed; {hint}");
    }
    found
}

/// What our mint says (NUT-07) about each of `proofs`.
pub async fn proof_states(wallet: &Wallet, proofs: cdk::nuts::Proofs) -> Vec<cdk::nuts::State> {
    wallet
        .check_proofs_spent(proofs)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.state)
        .collect()
}

/// The simulated Lightning network (`lnsim` binary, test support only) on loopback.
pub struct LnsimProcess {
    pub process: ServiceProcess,
}

impl LnsimProcess {
    pub fn start(root: &Path) -> Self {
        std::fs::create_dir_all(root).unwrap();
        let process = ServiceProcess::start(
            &workspace_binary("lnsim"),
            &["--listen", "127.0.0.1:0"],
            root.join("lnsim.log"),
        );
        Self { process }
    }

    pub fn url(&self) -> &str {
        &self.process.url
    }

    /// A client for node `name`, created if new.
    pub async fn node(&self, name: &str) -> lnsim::client::NodeClient {
        let node = lnsim::client::NodeClient::new(self.url(), name).unwrap();
        node.put(&Default::default()).await.unwrap();
        node
    }
}
