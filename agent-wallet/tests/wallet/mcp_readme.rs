//! The README's section "Use the wallet from an MCP client", run as written: its client config
//! starts a working server, its tool table names the tools the server lists, and its shell
//! snippet gets answers.

use serde_json::{json, Value};

use crate::mcp::Session;
use crate::support::*;

const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
const SECTION: &str = "## Use the wallet from an MCP client";

/// The section's text, up to the next `## ` heading.
fn section() -> &'static str {
    let start = README
        .find(SECTION)
        .expect("the README has the MCP section");
    let rest = &README[start + SECTION.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The fenced blocks of one language in the section.
fn blocks(lang: &str) -> Vec<&'static str> {
    let fence = format!("```{lang}\n");
    section()
        .split(fence.as_str())
        .skip(1)
        .map(|b| &b[..b.find("```").expect("an unclosed block")])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_client_config_starts_a_server_with_the_tools_it_lists() {
    let config: Value = serde_json::from_str(blocks("json")[0]).expect("the config is JSON");
    let server = &config["mcpServers"]["agent-wallet"];
    assert_eq!(server["command"], "agent-wallet");
    let args: Vec<&str> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let env = server["env"].as_object().unwrap();
    assert!(env.contains_key("AGENT_WALLET_DATA_DIR") && env.contains_key("AGENT_WALLET_MINT"));

    // As a client would launch it, with the data dir moved somewhere private to this test.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = CliRunner::new(dir.path()).command(&args);
    for (k, v) in env {
        cmd.env(k, v.as_str().unwrap());
    }
    cmd.env("AGENT_WALLET_DATA_DIR", dir.path());
    let s = Session::spawn(cmd).await;

    let listed: Vec<String> = s
        .client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    let mut documented: Vec<String> = section()
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |").map(|(name, _)| name.to_string()))
        .collect();
    documented.sort();
    assert_eq!(listed, documented, "the README's tool table");

    let budget = s.ok("budget", json!({})).await;
    assert_eq!(
        budget["max_per_request"], 50,
        "the --policy in args: {budget}"
    );
    assert_eq!(budget["allowance_draw_room"], "not connected");
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_shell_snippet_gets_answers() {
    let snippet = blocks("sh")
        .into_iter()
        .find(|b| b.contains("printf"))
        .expect("the snippet");
    let dir = tempfile::tempdir().unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_agent-wallet"));
    let path = std::env::join_paths(std::iter::once(bin.parent().unwrap().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut sh = tokio::process::Command::new("sh");
    sh.arg("-c")
        .arg(snippet)
        .env("PATH", path)
        .env("AGENT_WALLET_DATA_DIR", dir.path())
        .env_remove("AGENT_WALLET_TOKEN")
        .env_remove("AGENT_WALLET_MINT")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(DEADLINE, sh.output())
        .await
        .expect("the snippet did not finish")
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let answers: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0]["result"]["serverInfo"]["name"], "agent-wallet");
    let budget = &answers[1]["result"];
    assert_eq!(budget["isError"], false, "{budget}");
    assert_eq!(
        budget["structuredContent"]["host"]["host"],
        "api.example.com"
    );
}
