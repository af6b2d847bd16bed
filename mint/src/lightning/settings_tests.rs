//! Each backend's config section, parsed and validated, with the errors an operator would meet.

use std::path::Path;

use crate::config::Config;

fn parse(text: &str) -> Config {
    Config::from_toml(text, Path::new("test.toml")).unwrap()
}

fn validation_error(text: &str) -> String {
    parse(text).validate().unwrap_err().to_string()
}

#[test]
fn fake_is_the_default_backend() {
    let c = parse("");
    assert_eq!(c.lightning.backend, super::Backend::Fake);
    c.validate().unwrap();
}

#[test]
fn unknown_backends_and_keys_are_refused() {
    let err = Config::from_toml("[lightning]\nbackend = \"lnbits\"", Path::new("t"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("lnbits"), "{err}");
    let err = Config::from_toml(
        "[lightning.lnd]\naddress = \"https://x:1\"\ncert = \"x\"",
        Path::new("t"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("cert"), "{err}");
}

#[test]
fn lnd_section_is_required_and_its_files_checked() {
    let err = validation_error("[lightning]\nbackend = \"lnd\"");
    assert!(
        err.contains("lightning.lnd") && err.contains("macaroon_file"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.cert");
    let mac = dir.path().join("admin.macaroon");
    let cfg = |addr: &str| {
        format!(
            "[lightning]\nbackend = \"lnd\"\n[lightning.lnd]\naddress = \"{addr}\"\ncert_file = \"{}\"\nmacaroon_file = \"{}\"",
            cert.display(),
            mac.display()
        )
    };
    let err = validation_error(&cfg("https://127.0.0.1:10009"));
    assert!(
        err.contains("cert_file") && err.contains("cannot be read"),
        "{err}"
    );

    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----").unwrap();
    let err = validation_error(&cfg("https://127.0.0.1:10009"));
    assert!(err.contains("macaroon_file"), "{err}");

    std::fs::write(&mac, "").unwrap();
    let err = validation_error(&cfg("https://127.0.0.1:10009"));
    assert!(err.contains("macaroon") && err.contains("empty"), "{err}");

    std::fs::write(&mac, [2u8, 1, 3]).unwrap();
    parse(&cfg("https://127.0.0.1:10009")).validate().unwrap();
    let err = validation_error(&cfg("127.0.0.1:10009"));
    assert!(err.contains("lightning.lnd.address"), "{err}");
}

#[test]
fn cln_needs_a_unix_socket() {
    let err = validation_error("[lightning]\nbackend = \"cln\"");
    assert!(
        err.contains("lightning.cln") && err.contains("rpc_path"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("lightning-rpc");
    let cfg = format!(
        "[lightning]\nbackend = \"cln\"\n[lightning.cln]\nrpc_path = \"{}\"",
        sock.display()
    );
    let err = validation_error(&cfg);
    assert!(err.contains("not there"), "{err}");

    std::fs::write(&sock, "plain file").unwrap();
    let err = validation_error(&cfg);
    assert!(err.contains("not a unix socket"), "{err}");

    std::fs::remove_file(&sock).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    parse(&cfg).validate().unwrap();
}

#[test]
fn ldk_node_settings_are_checked() {
    let base =
        "[lightning]\nbackend = \"ldk-node\"\n[lightning.ldk_node]\nmnemonic = \"env:LDK_WORDS\"\n";
    let err = validation_error("[lightning]\nbackend = \"ldk-node\"");
    assert!(err.contains("lightning.ldk_node"), "{err}");

    let err = validation_error(&format!(
        "{base}network = \"mainnet\"\nchain_source = \"esplora\""
    ));
    assert!(err.contains("lightning.ldk_node.network"), "{err}");

    let err = validation_error(&format!(
        "{base}network = \"signet\"\nchain_source = \"esplora\""
    ));
    assert!(err.contains("esplora_url"), "{err}");

    let err = validation_error(&format!(
        "{base}network = \"signet\"\nchain_source = \"bitcoind\""
    ));
    assert!(err.contains("bitcoind_rpc"), "{err}");

    let err = validation_error(&format!(
        "{base}network = \"signet\"\nchain_source = \"esplora\"\nesplora_url = \"https://esplora.example\"\nlisten = [\"nope\"]"
    ));
    assert!(err.contains("lightning.ldk_node.listen"), "{err}");

    parse(&format!(
        "{base}network = \"signet\"\nchain_source = \"esplora\"\nesplora_url = \"https://esplora.example/api\""
    ))
    .validate()
    .unwrap();
    parse(&format!(
        "{base}network = \"regtest\"\nchain_source = \"bitcoind\"\nbitcoind_rpc_host = \"127.0.0.1\"\nbitcoind_rpc_port = 18443\nbitcoind_rpc_user = \"u\"\nbitcoind_rpc_password = \"env:BTC_RPC_PW\""
    ))
    .validate()
    .unwrap();
    // A password written inline is refused at parse time.
    assert!(Config::from_toml(
        &format!("{base}network = \"regtest\"\nchain_source = \"bitcoind\"\nbitcoind_rpc_password = \"hunter2\""),
        Path::new("t")
    )
    .is_err());
}

#[test]
fn fee_percent_must_be_a_fraction() {
    let err = validation_error("[lightning]\nfee_percent = 2.0");
    assert!(err.contains("lightning.fee_percent"), "{err}");
}

#[tokio::test]
async fn a_backend_missing_from_the_build_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rpc");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let c = parse(&format!(
        "[lightning]\nbackend = \"cln\"\n[lightning.cln]\nrpc_path = \"{}\"",
        sock.display()
    ));
    let db = std::sync::Arc::new(
        cdk_sqlite::MintSqliteDatabase::new(dir.path().join("m.sqlite"))
            .await
            .unwrap(),
    );
    let result = super::build(&c.lightning, dir.path(), db).await;
    if cfg!(feature = "cln") {
        // Compiled in: the backend is constructed against the socket (it connects lazily).
        assert!(result.is_ok(), "{:?}", result.err());
    } else {
        let err = result.err().unwrap().to_string();
        assert!(err.contains("--features cln"), "{err}");
    }
}
