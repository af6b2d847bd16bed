//! Our clients against Nutshell's mint (FakeWallet backend, no input fee, started by the test):
//! the agent wallet receives a token Nutshell's wallet made, sends one back, pays the paid_api
//! example that accepts that mint, and the merchant holds the ecash and settles it (a melt). Skipped without
//! Nutshell, except under `CI` (see [`crate::interop_nutshell`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::interop_nutshell::{nutshell_bin, parse_balance, parse_token, Nutshell};
use crate::interop_paywall::paid_api;
use crate::support::*;

/// Nutshell's mint imports a lot of Python and migrates its database before it serves.
const START_DEADLINE: Duration = Duration::from_secs(90);

/// A Nutshell mint process on loopback with its database in a temporary directory.
pub struct NutshellMint {
    child: Child,
    pub url: String,
    log_file: PathBuf,
}

impl NutshellMint {
    /// Starts the `mint` entry point beside the `cashu` executable `cashu_bin`, and waits until
    /// it answers `/v1/info`.
    pub async fn start(cashu_bin: &Path, dir: &Path) -> Self {
        let mint_bin = cashu_bin.with_file_name("mint");
        assert!(mint_bin.is_file(), "{} is missing", mint_bin.display());
        std::fs::create_dir_all(dir.join("home")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log_file = dir.join("nutshell-mint.log");
        let log = std::fs::File::create(&log_file).unwrap();
        let private_key: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let child = Command::new(&mint_bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.join("home"))
            .env("PYTHONUNBUFFERED", "1")
            .env("DEBUG", "false")
            .env("MINT_BACKEND_BOLT11_SAT", "FakeWallet")
            .env("MINT_LISTEN_HOST", "127.0.0.1")
            .env("MINT_LISTEN_PORT", port.to_string())
            .env("MINT_PRIVATE_KEY", private_key)
            .env("MINT_DATABASE", dir.join("db"))
            .env("MINT_INPUT_FEE_PPK", "0")
            .env("MINT_RATE_LIMIT", "false")
            .env("FAKEWALLET_DELAY_OUTGOING_PAYMENT", "0")
            .current_dir(dir)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", mint_bin.display()));
        let mut mint = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log_file,
        };
        let start = Instant::now();
        loop {
            if let Ok(r) = http().get(format!("{}/v1/info", mint.url)).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            let exited = mint.child.try_wait().unwrap();
            assert!(
                exited.is_none() && start.elapsed() < START_DEADLINE,
                "Nutshell's mint did not start ({exited:?}); log:\n{}",
                mint.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        mint
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }
}

impl Drop for NutshellMint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_receives_sends_and_pays_a_paywall_on_a_nutshell_mint() {
    let Some(bin) = nutshell_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nmint = NutshellMint::start(&bin, &dir.path().join("nutshell-mint")).await;
    let info: serde_json::Value = http()
        .get(format!("{}/v1/info", nmint.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        info["version"].as_str().unwrap().starts_with("Nutshell/"),
        "{info}"
    );

    // Nutshell's own wallet mints on its mint and sends the agent 200 sat.
    let mut human = Nutshell::new(bin, &dir.path().join("human"), &nmint.url);
    let token = tokio::task::block_in_place(|| {
        human.run(&["invoice", "500"]);
        let out = human.run(&["send", "200"]);
        parse_token(&out).unwrap_or_else(|| panic!("no token in:\n{out}"))
    });
    let agent = AgentCli {
        data_dir: dir.path().join("agent"),
        mint_url: nmint.url.clone(),
    };
    agent.ok(&["init"]);
    agent.ok(&["receive", &token]);
    assert_eq!(agent.balance(), 200);

    // The agent sends 50 back; Nutshell's wallet redeems the agent's token at its mint.
    let back = agent.ok(&["send", "50"]).trim().to_string();
    assert!(back.starts_with("cashu"), "{back}");
    assert_eq!(agent.balance(), 150);
    let out = tokio::task::block_in_place(|| human.run(&["receive", &back]));
    assert_eq!(parse_balance(&out), Some(350), "{out}");

    // A paywall that accepts the Nutshell mint: the agent pays 2 × 5 + 20 sat.
    let shop_dir = dir.path().join("shop");
    let shop = paid_api(&nmint.url, &shop_dir);
    for _ in 0..2 {
        let body = agent.ok(&["fetch", &format!("{}/weather", shop.url)]);
        assert!(body.contains("forecast"), "{body}");
    }
    let body = agent.ok(&[
        "fetch",
        "-X",
        "POST",
        "-d",
        "hello world",
        &format!("{}/translate", shop.url),
    ]);
    assert!(body.contains("olleh"), "{body}");
    let spent = 2 * 5 + 20;
    assert_eq!(agent.balance(), 150 - spent, "no input fee on this mint");
    let ledger = agent.ledger();
    let requests: Vec<_> = ledger.iter().filter(|e| e["method"] != "SEND").collect();
    assert_eq!(requests.len(), 3, "{ledger:?}");
    assert!(
        requests
            .iter()
            .all(|e| e["outcome"] == "paid" && e["mint"] == nmint.url.as_str()),
        "{ledger:?}"
    );

    // The merchant holds what the agent paid, as proofs of the Nutshell mint.
    shop.kill();
    assert_eq!(merchant_balance(&shop_dir), spent);

    // It settles 20 sat to Lightning through Nutshell's mint (a melt; FakeWallet charges 1 sat
    // and returns the rest of the reserve as change). Nutshell pays an async melt in a
    // background task after answering, which cdk's wallet used to read as a failed payment and
    // give the spent proofs back to the wallet; the merchant asks for synchronous melts.
    let settled = merchant_cli(&shop_dir, &["settle", "--invoice", &fake_invoice(20)]);
    assert_eq!(settled["amount"], 20, "{settled}");
    assert_eq!(settled["outcome"], "paid", "{settled}");
    let fee = settled["fee"].as_u64().unwrap();
    assert!(fee <= 2, "within the fee reserve: {settled}");
    assert_eq!(
        merchant_balance(&shop_dir),
        spent - 20 - fee,
        "what the merchant still holds is what it had minus the payment and its fee"
    );
    assert!(
        !nmint.log().contains("Error in background melt task"),
        "Nutshell paid the melt in the background:\n{}",
        nmint.log()
    );
}
