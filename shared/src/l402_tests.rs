//! L402 challenge and credential codecs: the spec's forms, legacy forms, several challenges per
//! header, and property tests (round trips; garbage never panics).

use super::*;
use cdk::lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
use cdk::secp256k1::{Secp256k1, SecretKey};
use proptest::prelude::*;

/// A signed regtest invoice for `amount_msat` whose payment hash is `sha256(preimage)`.
pub(crate) fn invoice(amount_msat: u64, preimage: [u8; 32]) -> String {
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[0x42; 32]).unwrap();
    InvoiceBuilder::new(Currency::Regtest)
        .description("test".into())
        .payment_hash(sha256::Hash::hash(&preimage))
        .payment_secret(PaymentSecret([7; 32]))
        .current_timestamp()
        .min_final_cltv_expiry_delta(144)
        .amount_milli_satoshis(amount_msat)
        .build_signed(|m| secp.sign_ecdsa_recoverable(m, &key))
        .unwrap()
        .to_string()
}

const MAC: &str = "AgEEbHNhdAJCAAAgr4jmR+RP9rfZQmaF8E+d3YP3+8RMcpD9WlpwR8qwzUs=";

#[test]
fn spec_challenge_parses_and_round_trips() {
    let inv = invoice(21_000, [1; 32]);
    let header = format!("L402 version=\"0\", token=\"{MAC}\", invoice=\"{inv}\"");
    let c = L402Challenge::parse(&header).unwrap();
    assert_eq!(c, L402Challenge::new(MAC, inv.clone()));
    assert_eq!(L402Challenge::parse(&c.encode()).unwrap(), c);
    let info = c.invoice_info().unwrap();
    assert_eq!(info.amount_msat, Some(21_000));
    assert_eq!(info.amount_sat(), Some(21));
    assert_eq!(
        info.payment_hash,
        sha256::Hash::hash(&[1; 32]).to_byte_array()
    );
}

#[test]
fn legacy_forms_are_accepted() {
    let inv = invoice(1_500, [2; 32]);
    for header in [
        format!("LSAT macaroon=\"{MAC}\", invoice=\"{inv}\""),
        format!("L402 macaroon=\"{MAC}\", invoice=\"{inv}\""),
        format!("lsat token={MAC}, invoice={inv}"),
        format!("L402 token=\"{MAC}\", invoice=\"{inv}\", future=\"x\", version=\"0\""),
    ] {
        let c = L402Challenge::parse(&header).unwrap();
        assert_eq!(
            (c.token.as_str(), c.invoice.as_str()),
            (MAC, inv.as_str()),
            "{header}"
        );
    }
    // An amountless-rounding check: 1500 msat is 2 sat to pay.
    assert_eq!(decode_invoice(&inv).unwrap().amount_sat(), Some(2));
}

#[test]
fn several_challenges_in_one_value_and_several_headers() {
    let inv = invoice(1_000, [3; 32]);
    let one = format!(
        "Basic realm=\"x\", LSAT macaroon=\"{MAC}\", invoice=\"{inv}\", L402 macaroon=\"{MAC}\", invoice=\"{inv}\", Bearer abc=="
    );
    let all = L402Challenge::parse_all([one.as_str()]);
    // Aperture's LSAT + L402 pair is one challenge.
    assert_eq!(
        all,
        vec![Ok(L402Challenge {
            token: MAC.into(),
            invoice: inv.clone(),
            version: None
        })]
    );
    let other = invoice(2_000, [4; 32]);
    let second = format!("L402 token=\"{MAC}\", invoice=\"{other}\"");
    let all = L402Challenge::parse_all(["Negotiate", one.as_str(), second.as_str()]);
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].as_ref().unwrap().invoice, other);
}

#[test]
fn malformed_challenges_say_why() {
    assert_eq!(
        L402Challenge::parse("L402 invoice=\"lnbc1\""),
        Err(L402Error::MissingToken)
    );
    assert_eq!(
        L402Challenge::parse(&format!("L402 token=\"{MAC}\"")),
        Err(L402Error::MissingInvoice)
    );
    assert_eq!(
        L402Challenge::parse("Basic realm=\"x\""),
        Err(L402Error::NotL402)
    );
    let bad = L402Challenge::new(MAC, "lnbcnotaninvoice");
    assert!(matches!(bad.invoice_info(), Err(L402Error::Invoice(_))));
}

#[test]
fn credential_round_trips_and_accepts_lsat_and_several_macaroons() {
    let cred = L402Credential::new(MAC, Preimage::Known([0xab; 32]));
    let header = cred.encode();
    assert_eq!(header, format!("L402 {MAC}:{}", "ab".repeat(32)));
    assert_eq!(L402Credential::parse(&header).unwrap(), cred);

    let lsat = format!("LSAT {MAC},{MAC}:{}", "AB".repeat(32));
    let parsed = L402Credential::parse(&lsat).unwrap();
    assert_eq!(parsed.macaroons.len(), 2);
    assert_eq!(parsed.preimage, Preimage::Known([0xab; 32]));

    // The spec's own example (a short, invalid preimage) is refused with the reason.
    assert_eq!(
        L402Credential::parse("L402 AGIAJEemVQUTEyNCR0exk7ek90Cg==:1234abcd1234abcd1234abcd"),
        Err(L402Error::BadPreimage)
    );
}

#[test]
fn settled_by_mint_credential_is_an_empty_preimage() {
    let cred = L402Credential::new(MAC, Preimage::SettledByMint);
    assert_eq!(cred.encode(), format!("L402 {MAC}:"));
    assert_eq!(L402Credential::parse(&cred.encode()).unwrap(), cred);
    assert!(!Preimage::SettledByMint.matches(&[0; 32]));
}

#[test]
fn preimage_matches_its_hash_only() {
    let hash = sha256::Hash::hash(&[9; 32]).to_byte_array();
    assert!(Preimage::Known([9; 32]).matches(&hash));
    assert!(!Preimage::Known([8; 32]).matches(&hash));
}

#[test]
fn bad_credentials_say_why() {
    assert_eq!(L402Credential::parse("Bearer x"), Err(L402Error::NotL402));
    assert_eq!(
        L402Credential::parse("L402 abc"),
        Err(L402Error::MissingColon)
    );
    assert_eq!(
        L402Credential::parse(&format!("L402 :{}", "00".repeat(32))),
        Err(L402Error::MissingMacaroon)
    );
    assert_eq!(
        L402Credential::parse(&format!("L402 a b:{}", "00".repeat(32))),
        Err(L402Error::MissingColon)
    );
    assert_eq!(
        L402Credential::parse(&format!("L402 {MAC}:zz{}", "00".repeat(31))),
        Err(L402Error::BadPreimage)
    );
    assert_eq!(
        L402Credential::parse(&"L402 a".repeat(20_000)),
        Err(L402Error::TooLong)
    );
}

proptest! {
    #[test]
    fn credential_round_trips(preimage in any::<[u8; 32]>(), mac in proptest::collection::vec(any::<u8>(), 1..200)) {
        let mac = base64::engine::general_purpose::STANDARD.encode(mac);
        let cred = L402Credential::new(mac, Preimage::Known(preimage));
        prop_assert_eq!(L402Credential::parse(&cred.encode()).unwrap(), cred);
    }

    #[test]
    fn challenge_round_trips(token in "[A-Za-z0-9+/]{1,80}={0,2}", invoice in "ln[a-z0-9]{10,80}") {
        let c = L402Challenge::new(token, invoice);
        prop_assert_eq!(L402Challenge::parse(&c.encode()).unwrap(), c);
    }

    #[test]
    fn garbage_never_panics(s in ".{0,300}") {
        let _ = L402Challenge::parse_all([s.as_str()]);
        let _ = L402Credential::parse(&s);
        let _ = decode_invoice(&s);
        let _ = L402Credential::parse(&format!("L402 {s}"));
        let _ = L402Challenge::parse(&format!("L402 {s}"));
    }

    #[test]
    fn header_like_garbage_never_panics(s in "[A-Za-z0-9=,\" \\\\]{0,200}") {
        let _ = L402Challenge::parse_all([s.as_str()]);
        let _ = crate::www_auth::parse(&s);
    }
}
