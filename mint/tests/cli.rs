//! The `allowance-mint` binary as an operator meets it: subcommands and refusals of bad config.
//! (Serving and the Cashu API are exercised end to end in the workspace's `tests/` crate.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn mint() -> Command {
    Command::new(env!("CARGO_BIN_EXE_allowance-mint"))
}

#[test]
fn config_example_prints_a_file_that_the_binary_accepts() {
    let out = mint().args(["config", "example"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("[lightning]"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mint.toml");
    std::fs::write(&file, &text).unwrap();
    let out = mint()
        .args(["config", "check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("listen = \"127.0.0.1:3338\""));
}

#[test]
fn env_overrides_file_and_flag_overrides_env() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mint.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1111\"\n").unwrap();
    let check = |extra: &[&str], env: Option<&str>| {
        let mut cmd = mint();
        cmd.args(["config", "check", "--config"])
            .arg(&file)
            .args(extra);
        cmd.env_remove("ALLOWANCE_MINT_LISTEN");
        if let Some(v) = env {
            cmd.env("ALLOWANCE_MINT_LISTEN", v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(check(&[], None).contains("127.0.0.1:1111"));
    assert!(check(&[], Some("127.0.0.1:2222")).contains("127.0.0.1:2222"));
    assert!(
        check(&["--listen", "127.0.0.1:3333"], Some("127.0.0.1:2222")).contains("127.0.0.1:3333")
    );
}

#[test]
fn garbage_config_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mint.toml");
    for (text, needle) in [
        ("[limits]\nmint_maxx = 1\n", "mint_maxx"),
        ("listen = 5\n", "listen"),
        ("[lightning]\nbackend = \"lnd\"\n", "lightning.lnd"),
        ("seed = \"abandon abandon\"\n", "env:NAME"),
        ("this is not toml", "not valid"),
    ] {
        std::fs::write(&file, text).unwrap();
        let out = mint()
            .args(["--data-dir"])
            .arg(dir.path().join("d"))
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{text:?}: {err}");
        assert!(
            !dir.path().join("d").exists(),
            "nothing is created for a refused config"
        );
    }
}

#[test]
fn keyset_rotate_makes_a_new_active_keyset() {
    let dir = tempfile::tempdir().unwrap();
    let list = || {
        let out = mint()
            .args(["keyset", "list", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let before = list();
    assert_eq!(
        before.matches("active").count() - before.matches("inactive").count(),
        1
    );
    let out = mint()
        .args(["keyset", "rotate", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = list();
    assert_eq!(after.lines().count(), before.lines().count() + 1, "{after}");
    assert_eq!(after.matches("\tactive").count(), 1, "{after}");
    assert_eq!(after.matches("inactive").count(), 1, "{after}");
}

#[test]
fn every_deploy_example_config_parses() {
    use allowance_mint::lightning::Backend;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config");
    let mut backends = std::collections::BTreeSet::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let config = allowance_mint::Config::from_toml(&text, &path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let backend = config.lightning.backend;
        match backend {
            // Nothing outside the file to check: the whole config validates.
            Backend::Fake | Backend::LdkNode => config
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            // Their TLS certificate, macaroon or RPC socket exist only on a real node: the rest
            // of the file validates, and the backend's check fails on exactly those files.
            Backend::Lnd | Backend::Cln => {
                let mut rest = config.clone();
                rest.lightning.backend = Backend::Fake;
                rest.validate()
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let err = config.validate().unwrap_err().to_string();
                let expected = if backend == Backend::Lnd {
                    "lightning.lnd.cert_file"
                } else {
                    "lightning.cln.rpc_path"
                };
                assert!(err.contains(expected), "{}: {err}", path.display());
            }
        }
        // Secrets are references, never inline.
        assert!(
            !text.contains("abandon") && !text.contains("password="),
            "{}",
            path.display()
        );
        backends.insert(backend.name());
        seen += 1;
    }
    assert!(
        seen >= 5,
        "expected an example per backend and PostgreSQL in {}",
        dir.display()
    );
    for backend in [Backend::Fake, Backend::Lnd, Backend::Cln, Backend::LdkNode] {
        assert!(
            backends.contains(backend.name()),
            "no example config for the {} backend in {}",
            backend.name(),
            dir.display()
        );
    }
}

#[test]
fn a_second_process_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut serving = mint()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it is serving (it prints its address once bound and built).
    let mut stdout = std::io::BufReader::new(serving.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("listening on") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() > 0,
            "no address"
        );
    }
    let out = mint()
        .args(["keyset", "rotate", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let _ = serving.kill();
    let _ = serving.wait();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another allowance-mint process"),
        "{err}"
    );
    // Once the first is gone (even killed), the directory is free again.
    let out = mint()
        .args(["keyset", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
