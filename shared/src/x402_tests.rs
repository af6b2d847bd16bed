//! x402 codecs: the spec's v1 body, v2 header, our `cashu` entry, credentials, garbage.

use super::*;
use cdk::nuts::PublicKey;
use proptest::prelude::*;

fn mint() -> MintUrl {
    MintUrl::from_str("https://mint.example.com").unwrap()
}

fn key() -> PublicKey {
    PublicKey::from_hex("02a82ec539a2bbd51039c480e8836316036ccb461b9a2e62b49b418c2897851b98")
        .unwrap()
}

// coinbase/x402 specs/transports-v1/http.md, shortened.
const V1_BODY: &str = r#"{"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [{"scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "10000", "asset": "0x036C", "payTo": "0x2096", "resource": "https://api.example.com/premium-data", "description": "d", "mimeType": "application/json", "outputSchema": null, "maxTimeoutSeconds": 60, "extra": {"name": "USDC", "version": "2"}}]}"#;

#[test]
fn v1_body_of_the_spec_parses_and_exact_is_unsupported() {
    let pr = PaymentRequired::from_body(V1_BODY.as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(pr.version(), Ok(X402Version::V1));
    let entry = &pr.accepts[0];
    assert_eq!(entry.amount_str(), Some("10000"));
    assert_eq!(
        entry.cashu(),
        Err(X402Error::UnsupportedScheme {
            scheme: "exact".into(),
            network: "base-sepolia".into()
        })
    );
    assert_eq!(PaymentRequired::from_body(b"{\"detail\": 1}"), Ok(None));
    assert!(PaymentRequired::from_body(b"not json").is_err());
}

#[test]
fn cashu_entry_round_trips_in_both_versions() {
    let challenge = Challenge::new(Amount::from(21), CurrencyUnit::Sat, mint()).locked_to(key());
    for version in [X402Version::V1, X402Version::V2] {
        let entry = PaymentRequirements::for_cashu(&challenge, version, Some("/x"), 60).unwrap();
        assert_eq!(entry.pay_to, key().to_hex());
        let pr = PaymentRequired {
            x402_version: version.number(),
            error: None,
            resource: None,
            accepts: vec![entry],
            extensions: None,
        };
        let back = PaymentRequired::from_header(&pr.to_header()).unwrap();
        assert_eq!(back, pr);
        let decoded = back.accepts[0].cashu().unwrap();
        assert_eq!(decoded.challenge, challenge);
        assert_eq!(decoded.max_timeout_seconds, 60);
    }
}

#[test]
fn cashu_entry_shape_is_the_documented_one() {
    let challenge = Challenge::new(Amount::from(5), CurrencyUnit::Sat, mint());
    let entry = PaymentRequirements::for_cashu(&challenge, X402Version::V2, None, 30).unwrap();
    let json = serde_json::to_value(&entry).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "scheme": "cashu", "network": "cashu", "amount": "5", "asset": "sat", "payTo": "",
            "maxTimeoutSeconds": 30,
            "extra": {"mints": ["https://mint.example.com"], "unit": "sat"}
        })
    );
}

#[test]
fn bad_cashu_entries_say_why() {
    let challenge = Challenge::new(Amount::from(5), CurrencyUnit::Sat, mint());
    let good = PaymentRequirements::for_cashu(&challenge, X402Version::V2, None, 30).unwrap();
    let mut e = good.clone();
    e.amount = Some("five".into());
    assert!(matches!(e.cashu(), Err(X402Error::BadCashuEntry(_))));
    let mut e = good.clone();
    e.extra = None;
    assert!(matches!(e.cashu(), Err(X402Error::BadCashuEntry(_))));
    let mut e = good.clone();
    e.extra = Some(serde_json::json!({"mints": [], "unit": "sat"}));
    assert!(matches!(e.cashu(), Err(X402Error::Challenge(_))));
    let mut e = good;
    e.amount = Some("0".into());
    assert!(matches!(e.cashu(), Err(X402Error::Challenge(_))));
}

#[test]
fn unsupported_versions_are_refused() {
    let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"x402Version":3,"accepts":[]}"#);
    assert_eq!(
        PaymentRequired::from_header(&b64),
        Err(X402Error::UnsupportedVersion(3))
    );
    assert_eq!(
        PaymentRequired::from_header("%%%"),
        Err(X402Error::NotBase64)
    );
}

fn token() -> Token {
    use cdk::nuts::{Id, Proof};
    use cdk::secret::Secret;
    let proof = Proof::new(
        Amount::from(2),
        Id::from_str("009a1f293253e41e").unwrap(),
        Secret::generate(),
        key(),
    );
    Token::new(mint(), vec![proof], None, CurrencyUnit::Sat)
}

#[test]
fn cashu_payload_round_trips_in_both_versions() {
    let token = token();
    let challenge = Challenge::new(Amount::from(2), CurrencyUnit::Sat, mint());
    for version in [X402Version::V1, X402Version::V2] {
        let entry = PaymentRequirements::for_cashu(&challenge, version, None, 60).unwrap();
        let p = PaymentPayload::cashu(version, &entry, &token);
        let back = PaymentPayload::from_header(&p.to_header()).unwrap();
        assert_eq!(back.version(), Ok(version));
        assert_eq!(back.cashu_token().unwrap().to_string(), token.to_string());
    }
}

#[test]
fn payloads_of_other_schemes_or_without_token_are_refused() {
    let v1 = r#"{"x402Version":1,"scheme":"exact","network":"base","payload":{"signature":"0x"}}"#;
    let p =
        PaymentPayload::from_header(&base64::engine::general_purpose::STANDARD.encode(v1)).unwrap();
    assert!(matches!(
        p.cashu_token(),
        Err(X402Error::UnsupportedScheme { .. })
    ));
    let v1 = r#"{"x402Version":1,"scheme":"cashu","network":"cashu","payload":{}}"#;
    let p =
        PaymentPayload::from_header(&base64::engine::general_purpose::STANDARD.encode(v1)).unwrap();
    assert!(matches!(p.cashu_token(), Err(X402Error::BadToken(_))));
    let v1 =
        r#"{"x402Version":1,"scheme":"cashu","network":"cashu","payload":{"token":"cashuBxx"}}"#;
    let p =
        PaymentPayload::from_header(&base64::engine::general_purpose::STANDARD.encode(v1)).unwrap();
    assert!(matches!(p.cashu_token(), Err(X402Error::BadToken(_))));
}

proptest! {
    #[test]
    fn cashu_entry_round_trips(amount in 1u64..1_000_000, timeout in 0u64..10_000, v2 in any::<bool>()) {
        let version = if v2 { X402Version::V2 } else { X402Version::V1 };
        let challenge = Challenge::new(Amount::from(amount), CurrencyUnit::Sat, mint());
        let entry = PaymentRequirements::for_cashu(&challenge, version, None, timeout).unwrap();
        prop_assert_eq!(entry.cashu().unwrap().challenge, challenge);
    }

    #[test]
    fn garbage_never_panics(s in ".{0,300}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = PaymentRequired::from_header(&s);
        let _ = PaymentPayload::from_header(&s);
        let _ = PaymentRequired::from_body(&bytes);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let _ = PaymentRequired::from_header(&b64);
        if let Ok(p) = PaymentPayload::from_header(&b64) { let _ = p.cashu_token(); }
    }

    #[test]
    fn json_garbage_never_panics(amount in ".{0,20}", mints in proptest::collection::vec(".{0,30}", 0..3), unit in ".{0,8}") {
        let entry = serde_json::json!({"scheme": "cashu", "network": "cashu", "amount": amount,
            "extra": {"mints": mints, "unit": unit}});
        let pr = serde_json::json!({"x402Version": 2, "accepts": [entry]});
        let b64 = base64::engine::general_purpose::STANDARD.encode(pr.to_string());
        if let Ok(pr) = PaymentRequired::from_header(&b64) { let _ = pr.accepts[0].cashu(); }
    }
}
