//! `agent-wallet mcp` driven as an MCP client drives it: the real binary as a child process,
//! JSON-RPC over its stdin/stdout (rmcp's client, and plain lines as an older client sends).

use std::process::Stdio;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::support::*;

/// An MCP session with the `agent-wallet mcp` server process, and its stderr.
pub struct Session {
    pub client: RunningService<RoleClient, ()>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Session {
    /// `agent-wallet [args] mcp` on `cli`'s data dir.
    pub async fn start(cli: &CliRunner, args: &[&str]) -> Self {
        let mut all = args.to_vec();
        all.push("mcp");
        let mut cmd = cli.command(&all);
        cmd.env("AGENT_WALLET_LOG", "info");
        Self::spawn(cmd).await
    }

    /// Runs `cmd` (an `agent-wallet ... mcp` command) and initializes a session with it.
    pub async fn spawn(cmd: tokio::process::Command) -> Self {
        let (transport, stderr) = TokioChildProcess::builder(cmd)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = stderr.unwrap();
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s).await;
            s
        });
        // `serve` runs the `initialize` / `notifications/initialized` handshake.
        let client = tokio::time::timeout(DEADLINE, ().serve(transport))
            .await
            .expect("initialize timed out")
            .unwrap();
        Self { client, stderr }
    }

    pub async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        let Value::Object(args) = args else {
            panic!("arguments must be an object")
        };
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(args);
        tokio::time::timeout(DEADLINE, self.client.call_tool(params))
            .await
            .unwrap_or_else(|_| panic!("{tool} timed out"))
            .unwrap_or_else(|e| panic!("{tool}: a protocol error, not a tool result: {e}"))
    }

    /// Calls a tool that must succeed; returns its structured content.
    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args).await;
        assert_eq!(r.is_error, Some(false), "{tool}: {r:?}");
        r.structured_content.unwrap()
    }

    /// Hangs up; returns what the server wrote to stderr.
    pub async fn close(self) -> String {
        tokio::time::timeout(DEADLINE, self.client.cancel())
            .await
            .expect("the server did not stop")
            .unwrap();
        let stderr = self.stderr.await.unwrap();
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr
    }
}

pub fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_client_pays_a_402_sees_the_ledger_and_gets_refusals_as_tool_errors() {
    let mint = start_mint().await;
    let merchant = start_merchant(&mint, 5, false).await;
    let dir = tempfile::tempdir().unwrap();
    let cli = CliRunner::new(&dir.path().join("wallet"));
    cli.json(&["init", "--mint", &mint.url]).await;
    let url = merchant.url("/report").to_string();

    let s = Session::start(&cli, &["--policy", "max_per_request=10"]).await;
    let info = s.client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "agent-wallet");
    let instructions = info.instructions.clone().unwrap_or_default();
    assert!(
        instructions.contains("at most 10 sat per request"),
        "{instructions}"
    );

    // The tools, and descriptions that tell a model what things cost and the limits.
    let tools = s.client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["balance", "budget", "fetch", "ledger", "receive"]);
    let describe = |name: &str| {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        tool.description.clone().unwrap_or_default().to_string()
    };
    let fetch = describe("fetch");
    for limit in [
        "at most 10 sat per request",
        "at most 1000 sat per host in any 24 hours",
        "no cap in all",
        "max_cost",
        "spends nothing",
    ] {
        assert!(
            fetch.contains(limit),
            "fetch description lacks {limit:?}: {fetch}"
        );
    }
    assert!(describe("budget").contains("not connected"));
    assert!(describe("balance").contains("Free"));
    let fetch_schema = &tools
        .iter()
        .find(|t| t.name == "fetch")
        .unwrap()
        .input_schema;
    assert_eq!(fetch_schema["required"], json!(["url"]), "{fetch_schema:?}");

    // Funding through the `receive` tool; the same token again changes nothing.
    let token = funding_token(&mint, 100).await;
    let v = s.ok("receive", json!({ "token": token })).await;
    assert_eq!(
        (v["result"].as_str(), v["amount"].as_u64()),
        (Some("received"), Some(100))
    );
    let v = s.ok("receive", json!({ "token": token })).await;
    assert_eq!(v["result"], "already_imported");
    assert_eq!(s.ok("balance", json!({})).await["total"], 100);

    let budget = s.ok("budget", json!({ "host": url })).await;
    assert_eq!(budget["next_request_max"], 10);
    assert_eq!(budget["max_total"], "unlimited");
    assert_eq!(budget["host"]["host"], "127.0.0.1");
    assert_eq!(budget["host"]["remaining_last_24h"], 1000);
    assert_eq!(budget["allowance_draw_room"], "not connected");

    // A paid endpoint: the wallet pays the 402 and hands back the answer and its cost.
    let r = s.call("fetch", json!({ "url": url })).await;
    assert_eq!(r.is_error, Some(false), "{r:?}");
    let v = r.structured_content.clone().unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["body"], "the paid content");
    assert_eq!(v["cost"], 5);
    assert_eq!(v["payment"]["outcome"], "paid");
    assert!(v["headers"]["content-type"].is_string(), "{v}");
    assert!(text(&r).contains("paid 5 sat"), "{}", text(&r));
    assert_eq!(merchant.redeemed(), 5);

    let ledger = s.ok("ledger", json!({})).await;
    assert_eq!(ledger["count"], 1);
    let row = &ledger["entries"][0];
    assert_eq!(
        (
            row["host"].as_str(),
            row["path"].as_str(),
            row["cost"].as_u64()
        ),
        (Some("127.0.0.1"), Some("/report"), Some(5))
    );
    assert_eq!(row["outcome"], "paid");
    let other = s.ok("ledger", json!({ "host": "api.example.com" })).await;
    assert_eq!(other["count"], 0);
    let budget = s.ok("budget", json!({ "host": "127.0.0.1" })).await;
    assert_eq!(budget["spent_total"], 5);
    assert_eq!(budget["host"]["remaining_last_24h"], 995);

    // A cap for one call refuses: a tool error with the reason, and nothing spent.
    let r = s.call("fetch", json!({ "url": url, "max_cost": 4 })).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let v = r.structured_content.clone().unwrap();
    assert_eq!(
        (v["error"].as_str(), v["violation"].as_str()),
        (Some("policy_refused"), Some("max_cost"))
    );
    assert_eq!(
        (v["spent"].as_u64(), v["status"].as_u64()),
        (Some(0), Some(402))
    );
    assert!(text(&r).contains("nothing was spent"), "{}", text(&r));
    // Bad arguments are tool errors too, not protocol errors.
    let r = s.call("fetch", json!({ "url": "not a url" })).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert_eq!(r.structured_content.unwrap()["error"], "invalid_input");
    let r = s
        .call("receive", json!({ "token": "cashuBnonsense" }))
        .await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    s.close().await;

    // A policy that refuses the price: the error says why, and no token left the wallet.
    let s = Session::start(&cli, &["--policy", "max_per_request=4"]).await;
    let tools = s.client.list_all_tools().await.unwrap();
    let fetch = tools.iter().find(|t| t.name == "fetch").unwrap();
    assert!(fetch
        .description
        .as_deref()
        .unwrap_or_default()
        .contains("at most 4 sat per request"));
    let r = s.call("fetch", json!({ "url": url })).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let v = r.structured_content.clone().unwrap();
    assert_eq!(v["violation"], "max_per_request");
    assert_eq!(v["spent"], 0);
    assert!(
        text(&r).contains("cost 5 exceeds the per-request maximum of 4"),
        "{}",
        text(&r)
    );
    assert_eq!(s.ok("balance", json!({})).await["total"], 95);
    assert_eq!(s.ok("ledger", json!({})).await["count"], 1);
    let stderr = s.close().await;
    assert!(
        stderr.contains("serving MCP on stdio"),
        "logs go to stderr: {stderr}"
    );

    // The CLI sees the same ledger and balance: one wallet, one policy, one ledger.
    assert_eq!(merchant.tokens().len(), 1, "refusals send no token");
    assert_eq!(cli.ledger().await.len(), 1);
    assert_eq!(cli.balance().await, 95);
}

/// A client that speaks an older protocol version with plain JSON-RPC lines (as most MCP
/// clients do) gets its version, the tools, and answers; stdout carries nothing else even with
/// debug logging, and the server exits 0 when stdin closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_speaks_json_rpc_lines_to_an_older_client_and_keeps_stdout_for_the_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let cli = CliRunner::new(dir.path());
    let mut cmd = cli.command(&["mcp"]);
    cmd.env("AGENT_WALLET_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });

    let send = |msg: Value| format!("{msg}\n");
    let mut next = async || -> Value {
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("no answer in time")
            .unwrap()
            .expect("stdout closed");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not JSON-RPC on stdout: {line:?}: {e}"))
    };

    let init = send(json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": { "name": "plain-client", "version": "0" }
        }
    }));
    stdin.write_all(init.as_bytes()).await.unwrap();
    let answer = next().await;
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(
        answer["result"]["protocolVersion"], "2025-06-18",
        "{answer}"
    );
    assert_eq!(answer["result"]["serverInfo"]["name"], "agent-wallet");
    assert!(
        answer["result"]["capabilities"]["tools"].is_object(),
        "{answer}"
    );

    let msgs = [
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }),
    ];
    for m in msgs {
        stdin.write_all(send(m).as_bytes()).await.unwrap();
    }
    let answer = next().await;
    assert_eq!(answer["id"], 2, "{answer}");
    let tools = answer["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 5, "{answer}");
    assert!(tools
        .iter()
        .all(|t| t["description"].is_string() && t["inputSchema"].is_object()));

    let call = send(json!({
        "jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": { "name": "balance", "arguments": {} }
    }));
    stdin.write_all(call.as_bytes()).await.unwrap();
    let answer = next().await;
    assert_eq!(answer["id"], 3, "{answer}");
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    assert_eq!(
        answer["result"]["structuredContent"]["total"], 0,
        "{answer}"
    );

    drop(stdin);
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("the server did not exit when stdin closed")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(next_is_eof(&mut lines).await, "stray output on stdout");
    let stderr = stderr.await.unwrap();
    assert!(stderr.contains("serving MCP on stdio"), "{stderr}");
}

async fn next_is_eof(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> bool {
    matches!(lines.next_line().await, Ok(None))
}
