//! `deploy/`: what can be checked without a container runtime or a systemd PID 1. The systemd
//! units pass `systemd-analyze verify` without a warning and keep their hardening score; the
//! Dockerfile is multi-stage, copies every workspace member, and runs as a non-root user with a
//! health check; the compose file wires the mint to PostgreSQL with a config that parses; the
//! gateway's example config validates. (The mint's example configs are checked in
//! `mint/tests/cli.rs`.)

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{require_tool, workspace_binary};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn units() -> Vec<PathBuf> {
    let mut units: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join("systemd"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect();
    units.sort();
    assert!(
        units.len() >= 3,
        "expected the mint, replica and gateway units: {units:?}"
    );
    units
}

/// The hardening every unit must keep (the list, and what protects the data dir).
const HARDENING: &[&str] = &[
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ReadWritePaths=/var/lib/",
    "PrivateTmp=yes",
    "ProtectHome=yes",
    "CapabilityBoundingSet=\n",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "MemoryDenyWriteExecute=yes",
    "SystemCallFilter=@system-service",
    "UMask=0077",
];

#[test]
fn systemd_units_keep_their_hardening_directives() {
    for unit in units() {
        let text = read(&unit);
        for directive in HARDENING {
            assert!(
                text.contains(directive),
                "{} lacks {directive:?}",
                unit.display()
            );
        }
        assert!(!text.contains("User=root"), "{}", unit.display());
    }
}

/// Copies `unit` into `dir` with the installed binary paths pointing at this build (verify
/// checks that ExecStart is executable), naming a template's copy as an instance.
fn installable_copy(unit: &Path, dir: &Path) -> PathBuf {
    let name = unit
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace("@.", "@a.");
    let text = read(unit)
        .replace(
            "/usr/local/bin/allowance-mint",
            workspace_binary("allowance-mint").to_str().unwrap(),
        )
        .replace(
            "/usr/local/bin/paywall-gateway",
            workspace_binary("paywall-gateway").to_str().unwrap(),
        );
    let copy = dir.join(name);
    std::fs::write(&copy, text).unwrap();
    copy
}

/// `systemd-analyze verify`: the exit status and every line it prints (it only warns, exit 0,
/// about unknown keys and unknown system call groups, which would silently drop hardening).
fn verify(systemd_analyze: &Path, unit: &Path) -> Result<(), String> {
    let out = Command::new(systemd_analyze)
        .arg("verify")
        .arg(unit)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}: {said}", unit.display(), out.status))
    }
}

fn systemd_analyze() -> Option<PathBuf> {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        .then(|| PathBuf::from("systemd-analyze"));
    require_tool(
        found,
        "systemd-analyze",
        "apt-get install systemd (Debian), as .ci/run does",
    )
}

#[test]
fn systemd_units_verify_without_warnings() {
    let Some(tool) = systemd_analyze() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for unit in units() {
        let copy = installable_copy(&unit, dir.path());
        verify(&tool, &copy).unwrap();
    }
    // The check itself catches a misspelt key and a misspelt system call group.
    let unit = units().into_iter().next().unwrap();
    let copy = installable_copy(&unit, dir.path());
    let broken = read(&copy)
        .replace("ProtectSystem=", "ProtectSytem=")
        .replace("@system-service", "@system-servce");
    std::fs::write(&copy, broken).unwrap();
    let err = verify(&tool, &copy).unwrap_err();
    assert!(
        err.contains("ProtectSytem") && err.contains("@system-servce"),
        "{err}"
    );
}

#[test]
fn systemd_units_stay_below_an_exposure_of_2() {
    let Some(tool) = systemd_analyze() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for unit in units() {
        let copy = installable_copy(&unit, dir.path());
        // Exposure is 0.0 (locked down) to 10.0 (unprotected); the threshold is in tenths.
        let out = Command::new(&tool)
            .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
            .arg(&copy)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: exposure above 2.0:\n{said}{}",
            unit.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(said.contains("Overall exposure level"), "{said}");
    }
}

/// The Dockerfile's instructions with continuation lines joined, comments dropped.
fn dockerfile_instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(part) = trimmed.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            if !current.trim().is_empty() {
                out.push(current.trim().to_string());
            }
            current.clear();
        }
    }
    out
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_a_health_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = read(&deploy_dir().join("Dockerfile"));
    let instructions = dockerfile_instructions(&text);
    let froms: Vec<&String> = instructions
        .iter()
        .filter(|i| i.starts_with("FROM "))
        .collect();
    assert!(
        froms.len() >= 3,
        "build, runtime and mint stages: {froms:?}"
    );
    assert!(
        froms.last().unwrap().ends_with(" AS mint"),
        "the mint is the default (last) stage: {froms:?}"
    );

    // Every context path COPY'd exists, and every workspace member is copied (cargo refuses a
    // workspace with a missing member), as are the protoc wrapper and the cargo config.
    let copied: Vec<&str> = instructions
        .iter()
        .filter(|i| i.starts_with("COPY ") && !i.contains("--from="))
        .flat_map(|i| {
            let words: Vec<&str> = i.split_whitespace().collect();
            words[1..words.len() - 1].to_vec()
        })
        .collect();
    for src in &copied {
        assert!(
            root.join(src).exists(),
            "COPY {src}: no such path in the repository"
        );
    }
    let manifest = read(&root.join("Cargo.toml"));
    let members_line = manifest
        .lines()
        .find(|l| l.starts_with("members = "))
        .unwrap();
    for member in members_line.split('"').skip(1).step_by(2) {
        // A member inside a copied directory (tests/lnsim in tests) comes along with it.
        assert!(
            copied
                .iter()
                .any(|src| member == *src || member.starts_with(&format!("{src}/"))),
            "workspace member {member} is not copied"
        );
    }
    for needed in [".cargo", "tools", "Cargo.lock"] {
        assert!(copied.contains(&needed), "{needed} is not copied");
    }
    let ignore = read(&deploy_dir().join("Dockerfile.dockerignore"));
    for src in &copied {
        assert!(
            !ignore.lines().any(|l| l.trim() == *src),
            "{src} is copied but excluded by Dockerfile.dockerignore"
        );
    }

    // The mint stage: non-root user, health check on /health at the port it listens on.
    let mint_stage: Vec<&String> = instructions
        .iter()
        .skip_while(|i| !i.ends_with(" AS mint"))
        .collect();
    let user = mint_stage
        .iter()
        .find(|i| i.starts_with("USER "))
        .expect("the mint stage sets USER");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    let health = mint_stage
        .iter()
        .find(|i| i.starts_with("HEALTHCHECK "))
        .expect("the mint stage has a HEALTHCHECK");
    assert!(health.contains("http://127.0.0.1:3338/health"), "{health}");
    assert!(
        mint_stage
            .iter()
            .any(|i| i.contains("ALLOWANCE_MINT_LISTEN=0.0.0.0:3338")),
        "the mint listens where the health check and EXPOSE look"
    );
    assert!(mint_stage.iter().any(|i| i == &"EXPOSE 3338"));
    // The runtime never runs as root: USER comes before CMD in every stage that has a CMD.
    let mut user_set = false;
    for i in &instructions {
        if i.starts_with("FROM ") {
            user_set = false;
        } else if i.starts_with("USER ") {
            user_set = true;
        } else if i.starts_with("CMD ") {
            assert!(user_set, "CMD without a USER before it: {i}");
        }
    }
}

/// compose.yaml as JSON, when Python with PyYAML is there to parse it.
fn compose_as_json(path: &Path) -> Option<serde_json::Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "SKIPPED: parsing compose.yaml (python3 with PyYAML): {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn compose_runs_the_mint_on_postgres_with_a_config_that_parses() {
    let path = deploy_dir().join("compose.yaml");
    let text = read(&path);
    // Secrets come from the environment, never the file.
    assert!(
        text.contains("${POSTGRES_PASSWORD:?"),
        "the password is required from the env"
    );
    assert!(!text.to_lowercase().contains("password: mint"));
    // The config the mint service mounts.
    let config_path = deploy_dir().join("config/compose.toml");
    assert!(text.contains("./config/compose.toml:/etc/allowance-mint/config.toml:ro"));
    let config = allowance_mint::Config::from_toml(&read(&config_path), &config_path).unwrap();
    config.validate().unwrap();
    assert_eq!(
        config.database.engine,
        allowance_mint::config::DatabaseEngine::Postgres
    );
    assert_eq!(
        config.database.postgres.as_ref().unwrap().url.to_string(),
        "env:DATABASE_URL"
    );
    assert_eq!(config.listen.port(), 3338);

    let Some(compose) = compose_as_json(&path) else {
        return;
    };
    let services = &compose["services"];
    assert!(
        services["postgres"]["healthcheck"]["test"].is_array(),
        "{compose}"
    );
    let mint = &services["mint"];
    assert_eq!(mint["build"]["dockerfile"], "deploy/Dockerfile");
    assert_eq!(mint["build"]["target"], "mint");
    assert_eq!(
        mint["depends_on"]["postgres"]["condition"], "service_healthy",
        "the mint waits for a database that answers"
    );
    assert!(mint["environment"]["DATABASE_URL"]
        .as_str()
        .unwrap()
        .contains("host=postgres"));
    let ports = mint["ports"].as_array().unwrap();
    assert!(
        ports
            .iter()
            .all(|p| p.as_str().unwrap().starts_with("127.0.0.1:")),
        "published on loopback only: {ports:?}"
    );
    assert_eq!(mint["read_only"], true);
    assert_eq!(mint["cap_drop"][0], "ALL");
    for volume in ["postgres-data", "mint-data"] {
        assert!(compose["volumes"].get(volume).is_some(), "volume {volume}");
    }
}

#[test]
fn gateway_example_config_parses_and_validates() {
    let path = deploy_dir().join("gateway/config.toml");
    let config = merchant::gateway::GatewayConfig::from_toml(&read(&path), &path).unwrap();
    config.validate().unwrap();
    assert!(config.lock && !config.prices.is_empty());
    assert!(config.settle.enabled());
}
