//! Interop with Nutshell, the Python reference wallet: its `cashu` CLI mints, sends, receives and
//! melts against our mint, and trades tokens with a cdk wallet.
//!
//! Needs Nutshell in `target/nutshell-venv` (`tests/interop/install-nutshell.sh`) or at
//! `NUTSHELL_BIN`. Without it the test is skipped, except under `CI`, where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cdk::wallet::{ReceiveOptions, SendOptions};
use cdk::Amount;

use crate::support::*;

/// Nutshell's first run creates its database and fetches keysets; give it more than [`DEADLINE`].
const NUTSHELL_DEADLINE: Duration = Duration::from_secs(120);

const INSTALL_HINT: &str = "install it with `tests/interop/install-nutshell.sh` \
     (a venv in target/nutshell-venv) or point NUTSHELL_BIN at a `cashu` executable";

/// Where the `cashu` executable is: `NUTSHELL_BIN`, else `target/nutshell-venv/bin/cashu` beside
/// this test's target directory or the workspace's.
fn nutshell_bin_path() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("NUTSHELL_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "NUTSHELL_BIN={} does not exist; {INSTALL_HINT}",
            bin.display()
        );
        return Some(bin);
    }
    let venv_bin = Path::new("nutshell-venv").join("bin").join("cashu");
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> -> target
    let from_exe = exe.ancestors().nth(3).map(|target| target.join(&venv_bin));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let from_workspace = workspace.join("target").join(&venv_bin);
    from_exe
        .into_iter()
        .chain([from_workspace])
        .find(|p| p.is_file())
}

/// The `cashu` executable, or `None` when the test is to be skipped (never under `CI`).
pub fn nutshell_bin() -> Option<PathBuf> {
    require_tool(
        nutshell_bin_path(),
        "Nutshell (the `cashu` CLI)",
        INSTALL_HINT,
    )
}

/// One Nutshell wallet: its own HOME and CASHU_DIR, pointed at one mint.
pub struct Nutshell {
    bin: PathBuf,
    dir: PathBuf,
    mint_url: String,
    runs: usize,
}

impl Nutshell {
    pub fn new(bin: PathBuf, dir: &Path, mint_url: &str) -> Self {
        std::fs::create_dir_all(dir.join("home")).unwrap();
        Self {
            bin,
            dir: dir.to_path_buf(),
            mint_url: mint_url.to_string(),
            runs: 0,
        }
    }

    /// Runs `cashu -y <args>` non-interactively and returns its stdout; fails the test if it
    /// exits non-zero or runs past [`NUTSHELL_DEADLINE`].
    pub fn run(&mut self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.try_run(args);
        assert!(
            ok,
            "`cashu -y {}` failed\nstdout:\n{stdout}\nstderr:\n{stderr}",
            args.join(" ")
        );
        stdout
    }

    /// Runs `cashu -y <args>`: whether it exited 0, its stdout and its stderr. Fails the test if
    /// it runs past [`NUTSHELL_DEADLINE`].
    pub fn try_run(&mut self, args: &[&str]) -> (bool, String, String) {
        self.try_run_with_input(args, "")
    }

    /// [`Nutshell::try_run`] with `stdin` as the command's input (for its prompts).
    pub fn try_run_with_input(&mut self, args: &[&str], stdin: &str) -> (bool, String, String) {
        self.runs += 1;
        let path = std::env::var_os("PATH").unwrap_or_default();
        let start = Instant::now();
        // A clean environment: no MINT_URL, SOCKS_PROXY or ~/.cashu/.env of the developer's.
        let run = run_with_deadline(
            Command::new(&self.bin)
                .arg("-y")
                .args(args)
                .env_clear()
                .env("PATH", path)
                .env("HOME", self.dir.join("home"))
                .env("CASHU_DIR", self.dir.join("cashu"))
                .env("MINT_URL", &self.mint_url)
                .env("TOR", "false")
                .env("DEBUG", "false")
                .env("PYTHONUNBUFFERED", "1")
                .current_dir(&self.dir),
            stdin,
            NUTSHELL_DEADLINE,
        );
        eprintln!("nutshell: `cashu {}` took {:.1?}", args[0], start.elapsed());
        (run.code == 0, run.stdout, run.stderr)
    }

    /// The available balance, from `cashu balance`.
    pub fn balance(&mut self) -> u64 {
        let out = self.run(&["balance"]);
        parse_balance(&out).unwrap_or_else(|| panic!("no balance in:\n{out}"))
    }

    /// Pending (sent but not yet known spent) amount, from `cashu balance -v`.
    pub fn pending(&mut self) -> u64 {
        let out = self.run(&["balance", "-v"]);
        out.lines()
            .filter_map(|l| l.split("(pending: ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .filter_map(|n| n.trim_end_matches(')').parse().ok())
            .next_back()
            .unwrap_or_else(|| panic!("no pending amount in:\n{out}"))
    }
}

/// The last `Balance: N sat` line's N.
pub fn parse_balance(out: &str) -> Option<u64> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Balance: "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|n| n.parse().ok())
        .next_back()
}

/// The token `cashu send` printed, on a line of its own.
pub fn parse_token(out: &str) -> Option<String> {
    out.lines()
        .map(str::trim)
        .find(|l| l.starts_with("cashuA") || l.starts_with("cashuB"))
        .map(str::to_string)
}

/// The mint quote id in the hint `cashu invoice 1000 --id <quote>` that `cashu invoice` prints.
pub fn parse_quote_id(out: &str) -> Option<String> {
    out.lines()
        .filter_map(|l| l.split("--id ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .next_back()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nutshell_mints_sends_receives_and_melts_against_our_mint() {
    let Some(bin) = nutshell_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mint = MintProcess::start(dir.path(), "");
    let mut nutshell = Nutshell::new(bin, &dir.path().join("nutshell"), &mint.url);
    let run = |n: &mut Nutshell, args: &[&str]| tokio::task::block_in_place(|| n.run(args));
    let balance = |n: &mut Nutshell| tokio::task::block_in_place(|| n.balance());

    // Mint: Nutshell asks for an invoice, the fake backend pays it, Nutshell mints 1000 sat.
    let out = run(&mut nutshell, &["invoice", "1000"]);
    assert!(out.contains("Invoice paid."), "{out}");
    assert_eq!(balance(&mut nutshell), 1000);
    let quote_id = parse_quote_id(&out).unwrap_or_else(|| panic!("no quote id in:\n{out}"));
    let quote: serde_json::Value = http()
        .get(format!("{}/v1/mint/quote/bolt11/{quote_id}", mint.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(quote["state"], "ISSUED", "{quote}");

    // Nutshell sends 100 sat; a cdk wallet receives them.
    let out = run(&mut nutshell, &["send", "100"]);
    let token = parse_token(&out).unwrap_or_else(|| panic!("no token in:\n{out}"));
    assert_eq!(balance(&mut nutshell), 900);
    let cdk_wallet = wallet(&mint.url, &dir.path().join("cdk-wallet")).await;
    let received = cdk_wallet
        .receive(&token, ReceiveOptions::default())
        .await
        .unwrap();
    assert_eq!(received, Amount::from(100));
    assert_eq!(cdk_wallet.total_balance().await.unwrap(), Amount::from(100));
    // Nutshell learns through NUT-07 that its sent proofs are spent, and forgets them.
    run(&mut nutshell, &["burn", "-a"]);
    assert_eq!(tokio::task::block_in_place(|| nutshell.pending()), 0);
    assert_eq!(balance(&mut nutshell), 900);

    // The cdk wallet sends 60 sat; Nutshell receives them.
    let prepared = cdk_wallet
        .prepare_send(Amount::from(60), SendOptions::default())
        .await
        .unwrap();
    let send_id = prepared.operation_id();
    let cdk_token = prepared.confirm(None).await.unwrap().to_string();
    assert_eq!(cdk_wallet.total_balance().await.unwrap(), Amount::from(40));
    let out = run(&mut nutshell, &["receive", &cdk_token]);
    assert_eq!(parse_balance(&out), Some(960), "{out}");
    assert_eq!(balance(&mut nutshell), 960);
    // Receiving it again is refused: Nutshell understands our "already spent" error.
    let (ok, stdout, stderr) =
        tokio::task::block_in_place(|| nutshell.try_run(&["receive", &cdk_token]));
    assert!(!ok, "a spent token was received twice:\n{stdout}");
    assert!(
        format!("{stdout}{stderr}").to_lowercase().contains("spent"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(balance(&mut nutshell), 960);
    assert!(
        cdk_wallet.check_send_status(send_id).await.unwrap(),
        "the cdk wallet does not see its token as claimed"
    );
    assert_eq!(cdk_wallet.total_balance().await.unwrap(), Amount::from(40));

    // Melt: Nutshell pays a 200 sat invoice. The fake backend spends amount + 1 sat and the mint
    // returns the rest of the fee reserve as change (NUT-08).
    let invoice = fake_invoice(200);
    let out = run(&mut nutshell, &["pay", &invoice]);
    assert!(out.contains("Invoice paid."), "{out}");
    assert_eq!(balance(&mut nutshell), 960 - 200 - 1);
    assert_eq!(cdk_wallet.total_balance().await.unwrap(), Amount::from(40));

    mint.stop();
}
