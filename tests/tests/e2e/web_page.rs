//! The web page for humans, in a real headless Chromium driven over WebDriver (chromedriver):
//! sign in with the admin token, create a metered allowance, watch the page notice the payment
//! by itself (the fake backend pays), see the credential, revoke, and see the state change;
//! then a prepaid one, whose token appears the same way. Skipped (with a message) where
//! Chromium or chromedriver is missing; `.ci/run` installs both.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn browser(profile: &std::path::Path) -> Option<(Driver, Client)> {
    if !std::path::Path::new(CHROMIUM).exists() || !std::path::Path::new(CHROMEDRIVER).exists() {
        eprintln!("SKIP web page test: {CHROMIUM} or {CHROMEDRIVER} missing (apt-get install chromium chromium-driver)");
        return None;
    }
    let port = free_port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    eventually("chromedriver", || async {
        reqwest::get(format!("{url}/status")).await.ok().map(|_| ())
    })
    .await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage",
                     format!("--user-data-dir={}", profile.display())],
        }),
    );
    // chromedriver speaks plain HTTP on loopback: no TLS needed.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&url)
        .await
        .unwrap();
    Some((driver, client))
}

/// Waits until `selector`'s text (or value, for inputs) satisfies `ok`.
async fn wait_text(c: &Client, selector: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        if let Ok(el) = c.find(Locator::Css(selector)).await {
            let value = el.prop("value").await.ok().flatten().unwrap_or_default();
            let text = if value.is_empty() {
                el.text().await.unwrap_or_default()
            } else {
                value
            };
            if ok(&text) {
                return text;
            }
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {selector}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for an element to be on the page.
async fn appear(c: &Client, selector: &str) {
    c.wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector} never appeared: {e}"));
}

async fn set(c: &Client, selector: &str, value: &str) {
    // Waited for, not looked up once: a loaded machine renders the form late. And looked up
    // again when the page replaced the element between finding and typing (stale reference).
    let start = Instant::now();
    loop {
        let el = c
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("{selector} never appeared: {e}"));
        let typed = match el.clear().await {
            Ok(()) => el.send_keys(value).await,
            Err(e) => Err(e),
        };
        match typed {
            Ok(()) => return,
            Err(e) if e.is_stale_element_reference() && start.elapsed() < DEADLINE => continue,
            Err(e) => panic!("cannot type into {selector}: {e}"),
        }
    }
}

#[tokio::test]
async fn a_human_creates_pays_copies_and_revokes_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_driver, c)) = browser(&dir.path().join("profile")).await else {
        return;
    };
    let mint = MintProcess::start(dir.path(), "");
    // `localhost`, where browsers accept the Secure session cookie over plain HTTP.
    let base = mint.admin_url.replace("127.0.0.1", "localhost");
    let started = Instant::now();

    c.goto(&base).await.unwrap();
    appear(&c, "#login-token").await;
    set(&c, "#login-token", "not the token").await;
    c.find(Locator::Css("#login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // A wrong token stays on the login form.
    appear(&c, "#login-token").await;

    set(&c, "#login-token", &mint.admin_token()).await;
    c.find(Locator::Css("#login-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    appear(&c, "#create-form").await;
    let cookie = c.get_named_cookie("allowance_admin").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    assert_ne!(
        cookie.value(),
        mint.admin_token(),
        "the cookie is not the token"
    );

    // A metered allowance: invoice as QR, the page notices the payment, shows the credential.
    c.find(Locator::Css("#kind-metered"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    set(&c, "#amount", "700").await;
    set(&c, "#memo", "research agent").await;
    set(&c, "#per-draw", "50").await;
    set(&c, "#per-day", "300").await;
    c.find(Locator::Css("#create"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#invoice", |t| t.starts_with("lnbc")).await;
    let qr = c.find(Locator::Css("#qr")).await.unwrap();
    let src = qr.attr("src").await.unwrap().unwrap();
    assert!(src.starts_with("/admin/v1/qr.svg?data="), "{src}");
    // The image loads after its src is set: poll (a loaded machine made a single look flaky).
    let loading = std::time::Instant::now();
    loop {
        let loaded: bool = c
            .execute(
                "const i = document.getElementById('qr'); return i.complete && i.naturalWidth > 0;",
                vec![],
            )
            .await
            .unwrap()
            .as_bool()
            .unwrap();
        if loaded {
            break;
        }
        assert!(
            loading.elapsed() < DEADLINE,
            "the QR image is served by the mint"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    wait_text(&c, "#paid-status", |t| t == "Paid.").await;
    let credential = wait_text(&c, "#secret", |t| t.starts_with("callowA")).await;
    c.find(Locator::Css("#copy"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&c, "#copied", |t| t == "Copied.").await;

    let parsed: cashu_402::allowance::Credential = credential.parse().unwrap();
    let id = parsed.allowance.clone();
    let row = format!("tr[data-id='{id}']");
    wait_text(&c, &format!("{row} .state"), |t| t == "active").await;
    wait_text(&c, &format!("{row} .balance"), |t| t == "700").await;
    let chart = c
        .find(Locator::Css(&format!("{row} svg.chart")))
        .await
        .unwrap();
    assert_eq!(
        chart.find_all(Locator::Css("rect")).await.unwrap().len(),
        14
    );

    c.find(Locator::Css(&format!("{row} button.revoke")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.accept_alert().await.unwrap();
    wait_text(&c, &format!("{row} .state"), |t| t == "revoked").await;
    let (_, v) = mint
        .admin(
            reqwest::Method::GET,
            &format!("/admin/v1/allowances/{id}"),
            None,
        )
        .await;
    assert_eq!(v["state"], "revoked");

    // A prepaid one: the token appears by itself once the invoice is paid.
    c.find(Locator::Css("#kind-prepaid"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    set(&c, "#amount", "210").await;
    c.find(Locator::Css("#create"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let token = wait_text(&c, "#secret", |t| t.starts_with("cashuB")).await;
    let t: cdk::nuts::Token = token.parse().unwrap();
    assert_eq!(u64::from(t.value().unwrap()), 210);

    // Signing out ends the session.
    c.find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    appear(&c, "#login-token").await;
    c.close().await.unwrap();
    eprintln!("web page test took {:?}", started.elapsed());
}
