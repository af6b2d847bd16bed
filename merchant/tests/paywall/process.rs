//! Running the binaries (`paywall-gateway`, `merchant`, the `paid_api` example) as processes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::DEADLINE;

/// A child process killed when dropped.
pub struct Proc {
    child: Child,
    pub url: String,
}

impl Proc {
    /// Starts `cmd` and waits for its `listening on http://ADDR` line on stdout.
    pub fn start(mut cmd: Command, log: &Path) -> Self {
        let log_file = std::fs::File::create(log).unwrap();
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        match rx.recv_timeout(DEADLINE) {
            Ok(url) => Self { child, url },
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "no `listening on` line; log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < DEADLINE, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path of the `paid_api` example that `cargo test` builds beside the test binaries.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().and_then(Path::parent).unwrap();
    let path = debug.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace`",
        path.display()
    );
    path
}

/// Runs `merchant` with `args` and returns its stdout; panics if it fails. Async, so that the
/// in-process mint keeps serving while the command talks to it.
pub async fn merchant_cli(data_dir: &Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_merchant"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("MERCHANT_MINT_URL")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "merchant {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
