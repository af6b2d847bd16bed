//! The `agent-wallet` command as a process: init, receive, balance, fetch, policy, ledger, send,
//! exit codes, and the AGENT_WALLET_TOKEN import.

use agent_wallet::exit_code;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_pays_and_refuses_with_the_documented_exit_codes() {
    let mint = start_mint().await;
    let merchant = start_merchant(&mint, 5, false).await;
    let dir = tempfile::tempdir().unwrap();
    let cli = CliRunner::new(&dir.path().join("wallet"));

    let init = cli.json(&["init", "--mint", &mint.url]).await;
    assert_eq!(init["mint"], mint.mint_url.to_string());
    assert!(cli.dir.join("seed").exists());
    let token = funding_token(&mint, 100).await;
    let out = cli.run(&["receive", &token]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "received 100 sat");
    assert_eq!(cli.balance().await, 100);

    let url = merchant.url("/report").to_string();
    let out = cli.run(&["fetch", &url]).await;
    assert_eq!(out.code, exit_code::OK, "{out:?}");
    assert_eq!(out.stdout, "the paid content");
    assert!(out.stderr.contains("HTTP 200"), "{}", out.stderr);
    assert!(out.stderr.contains("paid 5 sat"), "{}", out.stderr);
    assert_eq!(cli.balance().await, 95);

    let set = cli.run(&["policy", "set", "max_per_request", "4"]).await;
    assert_eq!(set.code, 0, "{set:?}");
    assert_eq!(cli.json(&["policy", "show"]).await["max_per_request"], 4);
    let out = cli.run(&["fetch", &url]).await;
    assert_eq!(out.code, exit_code::POLICY_REFUSED, "{out:?}");
    assert!(
        out.stdout.contains("payment required"),
        "the 402 body: {out:?}"
    );
    assert!(out.stderr.contains("per-request maximum"), "{}", out.stderr);
    let out = cli.run(&["--json", "fetch", &url]).await;
    assert_eq!(out.code, exit_code::POLICY_REFUSED);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["error"], "policy_refused");
    assert_eq!(v["violation"], "max_per_request");
    assert_eq!(v["status"], 402);
    assert_eq!(cli.balance().await, 95, "a refusal spends nothing");

    // A flag overrides the config for one run; --max-cost caps one request.
    let out = cli
        .run(&[
            "--policy",
            "max_per_request=10",
            "fetch",
            &url,
            "--max-cost",
            "4",
        ])
        .await;
    assert_eq!(out.code, exit_code::POLICY_REFUSED, "{out:?}");
    let out = cli
        .run(&["--policy", "max_per_request=10", "--json", "fetch", &url])
        .await;
    assert_eq!(out.code, exit_code::OK, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        (v["status"].as_u64(), v["cost"].as_u64()),
        (Some(200), Some(5))
    );

    // The server refuses the paid request: HTTP error, and the token comes back.
    merchant.set_mode(Mode::Unavailable);
    let out = cli
        .run(&["--policy", "max_per_request=10", "fetch", &url])
        .await;
    assert_eq!(out.code, exit_code::HTTP_ERROR, "{out:?}");
    assert_eq!(cli.balance().await, 90);

    let ledger = cli.ledger().await;
    let outcomes: Vec<&str> = ledger
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["paid", "paid", "refused-by-server"]);
    let csv = cli.run(&["ledger", "--csv"]).await;
    assert_eq!(csv.code, 0);
    assert_eq!(csv.stdout.lines().count(), 4, "{}", csv.stdout);
    assert!(csv.stdout.starts_with("id,time,time_utc,host,path"));

    let sent = cli.run(&["send", "7"]).await;
    assert_eq!(sent.code, 0, "{sent:?}");
    assert!(sent.stdout.trim().starts_with("cashuB"), "{sent:?}");
    assert_eq!(cli.balance().await, 83);
    let out = cli.run(&["send", "1000"]).await;
    assert_eq!(out.code, exit_code::PAYMENT_FAILED, "{out:?}");

    let out = cli.run(&["policy", "set", "max_total", "lots"]).await;
    assert_eq!(out.code, exit_code::USAGE, "{out:?}");
    let out = cli.run(&["fetch", "not a url"]).await;
    assert_eq!(out.code, exit_code::USAGE, "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowance_from_the_environment_is_imported_once() {
    let mint = start_mint().await;
    let dir = tempfile::tempdir().unwrap();
    let cli = CliRunner::new(dir.path());
    let token = funding_token(&mint, 21).await;
    for _ in 0..2 {
        let mut cmd = cli.command(&["--json", "balance"]);
        cmd.env("AGENT_WALLET_TOKEN", &token);
        let out = cli.run_with(cmd).await;
        assert_eq!(out.code, 0, "{out:?}");
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(v["total"], 21);
    }
    // The same token again through `receive -` (stdin) is reported, not failed.
    let mut cmd = cli.command(&["receive", "-"]);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(token.as_bytes()).await.unwrap();
    }
    let out = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "already imported"
    );
    assert_eq!(cli.balance().await, 21);
}
