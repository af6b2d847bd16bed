//! `examples/pay_api.rs` run against the test mint and merchant, as its doc says to run it.

use crate::support::*;

/// The example's binary: `cargo test` builds examples into `target/<profile>/examples/`.
fn example(name: &str) -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    path.exists().then_some(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_api_example_imports_a_token_pays_and_prints_the_cost() {
    let Some(bin) = example("pay_api") else {
        eprintln!("skipped: examples/pay_api is not built (run `cargo test --workspace`)");
        return;
    };
    let mint = start_mint().await;
    let merchant = start_merchant(&mint, 5, false).await;
    let dir = tempfile::tempdir().unwrap();
    let token = funding_token(&mint, 40).await;
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg(&mint.url)
        .arg(merchant.url("/report").as_str())
        .env("AGENT_WALLET_DATA_DIR", dir.path())
        .env("AGENT_WALLET_TOKEN", &token)
        .env_remove("AGENT_WALLET_MINT")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(DEADLINE, cmd.output())
        .await
        .expect("the example did not finish")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("HTTP 200 OK cost 5 sat"), "{stdout}");
    assert!(stdout.contains("the paid content"), "{stdout}");
    assert!(stdout.contains("balance 35 sat"), "{stdout}");
    assert_eq!(merchant.redeemed(), 5);
}
