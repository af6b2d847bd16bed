//! Gathering all offers of one 402, and the choice rule.

use super::*;
use crate::l402::tests::invoice;
use crate::x402::{PaymentRequirements, X402Version};
use cdk::mint_url::MintUrl;
use cdk::nuts::CurrencyUnit;
use cdk::Amount;
use std::str::FromStr;

const MAC: &str = "AgEEbHNhdAJCAAAgr4jmR+RP9rfZQmaF8E+d3YP3+8RMcpD9WlpwR8qwzUs=";

fn challenge() -> Challenge {
    Challenge::new(
        Amount::from(21),
        CurrencyUnit::Sat,
        MintUrl::from_str("https://mint.example.com").unwrap(),
    )
}

fn x402_header(version: X402Version, extra_entry: Option<serde_json::Value>) -> String {
    let mut accepts = vec![serde_json::to_value(
        PaymentRequirements::for_cashu(&challenge(), version, None, 60).unwrap(),
    )
    .unwrap()];
    accepts.extend(extra_entry);
    let pr = serde_json::json!({"x402Version": version.number(), "accepts": accepts});
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(pr.to_string())
}

#[test]
fn all_three_schemes_in_one_402_are_collected_and_cashu_is_chosen_first() {
    let l402 = L402Challenge::new(MAC, invoice(21_000, [1; 32])).encode();
    let cashu = challenge().encode().unwrap();
    let exact = serde_json::json!({"scheme": "exact", "network": "eip155:8453", "amount": "1"});
    let x402 = x402_header(X402Version::V2, Some(exact));
    let headers = [
        ("www-authenticate", l402.as_str()),
        ("X-Cashu", cashu.as_str()),
        ("payment-required", x402.as_str()),
        ("Content-Type", "application/json"),
    ];
    let offers = Offers::collect(headers, Some(b"{\"x402Version\":1,\"accepts\":[]}"));
    let kinds: Vec<_> = offers.offers.iter().map(Offer::kind).collect();
    assert_eq!(
        kinds,
        vec![SchemeKind::Cashu, SchemeKind::X402Cashu, SchemeKind::L402]
    );
    assert_eq!(offers.unsupported.len(), 1);
    assert!(offers
        .describe_unsupported()
        .contains("exact on eip155:8453"));

    assert_eq!(
        offers.choose(&SchemeKind::DEFAULT_ORDER).map(Offer::kind),
        Some(SchemeKind::Cashu)
    );
    assert_eq!(
        offers
            .choose(&[SchemeKind::L402, SchemeKind::Cashu])
            .map(Offer::kind),
        Some(SchemeKind::L402)
    );
    assert_eq!(
        offers.choose(&[SchemeKind::X402Cashu]).map(Offer::kind),
        Some(SchemeKind::X402Cashu)
    );
}

#[test]
fn v1_body_is_read_without_a_v2_header() {
    let entry =
        PaymentRequirements::for_cashu(&challenge(), X402Version::V1, Some("/x"), 60).unwrap();
    let body = serde_json::json!({"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [entry]});
    let offers = Offers::collect([], Some(body.to_string().as_bytes()));
    match offers.choose(&SchemeKind::DEFAULT_ORDER) {
        Some(Offer::X402Cashu {
            version,
            requirements,
            ..
        }) => {
            assert_eq!(*version, X402Version::V1);
            assert_eq!(requirements.challenge, challenge());
        }
        other => panic!("expected x402 cashu, got {other:?}"),
    }
}

#[test]
fn a_plain_402_offers_nothing_and_broken_offers_are_reported() {
    let offers = Offers::collect([("Content-Type", "text/plain")], Some(b"pay me"));
    assert!(offers.is_empty() && offers.unsupported.is_empty());
    let offers = Offers::collect(
        [
            ("X-Cashu", "creqAgarbage"),
            ("WWW-Authenticate", "L402 invoice=\"x\""),
        ],
        Some(b"{\"x402Version\": 9}"),
    );
    assert!(offers.is_empty());
    assert_eq!(offers.unsupported.len(), 3, "{offers:?}");
}

#[test]
fn scheme_names_parse() {
    for (s, k) in [
        ("cashu", SchemeKind::Cashu),
        ("L402", SchemeKind::L402),
        ("lsat", SchemeKind::L402),
        ("x402-cashu", SchemeKind::X402Cashu),
    ] {
        assert_eq!(SchemeKind::from_str(s), Ok(k));
        assert_eq!(SchemeKind::from_str(k.as_str()), Ok(k));
    }
    assert!(SchemeKind::from_str("paypal").is_err());
}
