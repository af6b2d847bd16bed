//! Errors of the HTTP layer itself: malformed JSON, wrong content types, unknown routes and
//! methods, oversize bodies. Each is a Cashu error body with a 4xx status and our own code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};

use serde_json::{json, Value};

use crate::support::*;

use crate::client_errors::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_400_with_code_40000() {
    let f = Fixture::start(&limits_config()).await;
    let swap = f.url("/v1/swap");
    let valid_shape = r#"{"inputs": [], "outputs": []}"#;
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "JSON syntax error",
            http()
                .post(&swap)
                .header("content-type", "application/json")
                .body(r#"{"inputs": ["#),
        ),
        (
            "wrong shape: inputs is a string",
            http()
                .post(&swap)
                .json(&json!({"inputs": "x", "outputs": []})),
        ),
        (
            "wrong shape: missing fields",
            http().post(&swap).json(&json!({})),
        ),
        (
            "wrong shape: bad point in outputs",
            http().post(&swap).json(&json!({"inputs": [], "outputs": [
                {"amount": 1, "id": "009a1f293253e41e", "B_": "zz"}
            ]})),
        ),
        (
            "wrong content type",
            http()
                .post(&swap)
                .header("content-type", "text/plain")
                .body(valid_shape),
        ),
        ("no content type", http().post(&swap).body(valid_shape)),
        (
            "checkstate with a non-point Y",
            http()
                .post(f.url("/v1/checkstate"))
                .json(&json!({"Ys": ["zz"]})),
        ),
        (
            "mint quote with a negative amount",
            http()
                .post(f.url("/v1/mint/quote/bolt11"))
                .json(&json!({"amount": -5, "unit": "sat"})),
        ),
        (
            "mint quote with no amount field",
            http()
                .post(f.url("/v1/mint/quote/bolt11"))
                .json(&json!({"unit": "sat"})),
        ),
        (
            "melt quote for something that is no invoice",
            http()
                .post(f.url("/v1/melt/quote/bolt11"))
                .json(&json!({"request": "lnbc-not-an-invoice", "unit": "sat"})),
        ),
        (
            "melt with inputs of the wrong shape",
            http()
                .post(f.url("/v1/melt/bolt11"))
                .json(&json!({"quote": random_quote_id(), "inputs": 5})),
        ),
        (
            "mint with a quote id that is no quote id",
            http()
                .post(f.url("/v1/mint/bolt11"))
                .json(&json!({"quote": "!!not an id!!", "outputs": []})),
        ),
    ];
    for (what, request) in cases {
        let a = send(request).await;
        let detail = assert_error(what, &a, 400, MALFORMED_REQUEST);
        assert!(detail.len() < 400, "{what}: detail echoes too much");
    }
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_is_404_and_wrong_method_is_405() {
    let f = Fixture::start("").await;
    for path in ["/v1/nope", "/v2/swap", "/", "/v1/keys/extra/segments"] {
        let a = send(http().get(f.url(path))).await;
        assert_error(&format!("GET {path}"), &a, 404, NOT_FOUND);
    }
    let a = post(&f.url("/v1/nope"), json!({})).await;
    assert_error("POST /v1/nope", &a, 404, NOT_FOUND);

    let a = send(http().get(f.url("/v1/swap"))).await;
    assert_error("GET /v1/swap", &a, 405, METHOD_NOT_ALLOWED);
    let a = send(http().delete(f.url("/v1/keys"))).await;
    assert_error("DELETE /v1/keys", &a, 405, METHOD_NOT_ALLOWED);
    f.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413_with_code_41300() {
    let f = Fixture::start("[http]\nbody_limit_bytes = 1024\n").await;
    let big = json!({"inputs": [], "outputs": [], "pad": "x".repeat(8 * 1024)});

    // With a Content-Length the limit applies before the body is read.
    let a = post(&f.url("/v1/swap"), big.clone()).await;
    assert_error("8 KiB body with Content-Length", &a, 413, BODY_TOO_LARGE);
    let a = post(&f.url("/v1/mint/quote/bolt11"), big.clone()).await;
    assert_error("8 KiB mint quote", &a, 413, BODY_TOO_LARGE);

    // Chunked, with no Content-Length: the limit applies while reading.
    let body = serde_json::to_vec(&big).unwrap();
    let port = f.mint.port;
    let (status, raw) = tokio::task::spawn_blocking(move || chunked_post(port, "/v1/swap", &body))
        .await
        .unwrap();
    let a = Answer {
        status,
        content_type: "application/json".into(),
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
    };
    assert_error("8 KiB chunked body", &a, 413, BODY_TOO_LARGE);

    // A body under the limit still gets through to cdk.
    let a = post(&f.url("/v1/swap"), json!({"inputs": [], "outputs": []})).await;
    assert!(a.status < 500, "{}", a.raw);
    f.assert_alive().await;
}

/// POSTs `body` with `Transfer-Encoding: chunked` over a raw socket; returns status and body.
fn chunked_post(port: u16, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(512) {
        // The server may answer and close before it has read everything.
        if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .and_then(|_| s.write_all(chunk))
            .and_then(|_| s.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head.to_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}
