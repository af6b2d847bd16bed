//! NUT-18 / NUT-26 test vectors (cashubtc/nuts tests/18-tests.md and 26.md), NUT-24 rules, and
//! property tests: encoding round-trips, and decoders return errors, never panic.

use super::*;
use proptest::prelude::*;

const MINT: &str = "https://mint.example.com";

fn mint() -> MintUrl {
    MintUrl::from_str(MINT).unwrap()
}

fn key() -> PublicKey {
    PublicKey::from_hex("02a82ec539a2bbd51039c480e8836316036ccb461b9a2e62b49b418c2897851b98")
        .unwrap()
}

// NUT-18 vectors.
const BASIC: &str = "creqApWF0gaNhdGVub3N0cmFheKlucHJvZmlsZTFxcXNnbTZxZmEzYzhkdHoyZnZ6aHZmcWVhY213bTBlNTBwZTNrNXRmbXZwamptbjB2ajdtMnRncHozbWh4dWU2OXVoaHlldHZ2OXVqdWVycGQ0Nmh4dG5mZHVxM3dhbW53dmF6N3RtanY0a3h6N2Z3OHFlbnh2ZXd3ZGN4emNtOTl1cXM2YW1ud3Zhejd0bXdkYWVqdW1yMGRzNGxqaDduYWeBgmFuYjE3YWloYjdhOTAxNzZhYQphdWNzYXRhbYF3aHR0cHM6Ly84MzMzLnNwYWNlOjMzMzg";
const COMPLETE: &str = "creqAqGF0gaNhdGRwb3N0YWF4G2h0dHBzOi8vYXBpLmV4YW1wbGUuY29tL3BheWFn92FpaDQ4NDBmNTFlYWEZA+hhdWNzYXRhbYF4GGh0dHBzOi8vbWludC5leGFtcGxlLmNvbWFkcFByb2R1Y3QgcHVyY2hhc2Vhc/VlbnV0MTCjYWtkUDJQS2FkeEIwM2JhZjBjM2FjMjIwMzY2YzJjMzk3YmY5MzA1NzljNDE2MzQzNTU4NGY1NzNiMTA5MTA5ODdjNTQ0YzU5ZTYxZjFhdIGCZ3B1cnBvc2Vnb2ZmbGluZQ==";
const HTTP_POST: &str = "creqApWF0gaNhdGRwb3N0YWF4H2h0dHBzOi8vYXBpLmV4YW1wbGUuY29tL3JlY2VpdmVhZ/dhaWhhMmMxMmY0NWFhGDJhdWNzYXRhbYF4GWh0dHBzOi8vY2FzaHUuZXhhbXBsZS5jb20=";
const MINIMAL: &str = "creqAo2FpaDdmNGEyYjM5YXVjc2F0YW2BeBhodHRwczovL21pbnQuZXhhbXBsZS5jb20=";
const LOCKED: &str = "creqApWFpaGM5ZTQ1ZDJhYWEZAfRhdWNzYXRhbYF4GGh0dHBzOi8vbWludC5leGFtcGxlLmNvbWVudXQxMKNha2RQMlBLYWR4QjAyYzNiNWJiMjdlMzYxNDU3YzkyZDkzZDc4ZGQ3M2QzZDUzNzMyMTEwYjJjZmU4YjUwZmJjMGFiYzYxNWU5YzMzMWF0gYJndGltZW91dGQzNjAw";
// NUT-24's example: {"a":21,"u":"sat","m":["https://mint.example.com"]}, unpadded.
const NUT24_PLAIN: &str = "creqAo2FhFWF1Y3NhdGFtgXgYaHR0cHM6Ly9taW50LmV4YW1wbGUuY29t";
const NUT24_LOCKED: &str = "creqApGFhFWF1Y3NhdGFtgXgYaHR0cHM6Ly9taW50LmV4YW1wbGUuY29tZW51dDEwomFrZFAyUEthZHhCMDJhODJlYzUzOWEyYmJkNTEwMzljNDgwZTg4MzYzMTYwMzZjY2I0NjFiOWEyZTYyYjQ5YjQxOGMyODk3ODUxYjk4";
// NUT-26's example.
const CREQB: &str = "CREQB1QYQQWER9D4HNZV3NQGQQSQQQQQQQQQQRAQPSQQGQQSQQZQG9QQVXSAR5WPEN5TE0D45KUAPWV4UXZMTSD3JJUCM0D5RQQRJRDANXVET9YPCXZ7TDV4H8GXHR3TQ";

#[test]
fn nut24_example_challenges_decode() {
    let c = Challenge::parse(NUT24_PLAIN).unwrap();
    assert_eq!(c.amount, Amount::from(21));
    assert_eq!(c.unit, CurrencyUnit::Sat);
    assert_eq!(c.mints, vec![mint()]);
    assert!(c.lock.is_none());

    let c = Challenge::parse(NUT24_LOCKED).unwrap();
    assert_eq!(c.lock_pubkey(), Some(key()));
}

#[test]
fn nut18_vectors_decode_with_padding_and_cbor_undefined() {
    let c = Challenge::parse(BASIC).unwrap();
    assert_eq!(
        (c.amount, c.request_id.as_deref()),
        (Amount::from(10), Some("b7a90176"))
    );

    // The HTTP-transport vector encodes a missing transport tag list as CBOR undefined (0xf7),
    // is padded, and uses the standard base64 alphabet ('/').
    let c = Challenge::parse(HTTP_POST).unwrap();
    assert_eq!(
        (c.amount, c.request_id.as_deref()),
        (Amount::from(50), Some("a2c12f45"))
    );

    // The complete vector decodes (CBOR undefined, padding), but its P2PK `data` is not a point
    // on the curve: no payer can lock to it, so it is refused as a challenge, with the reason.
    let raw = PaymentRequest::from_str(COMPLETE).unwrap();
    assert_eq!(raw.amount, Some(Amount::from(1000)));
    assert_eq!(raw.description.as_deref(), Some("Product purchase"));
    assert!(matches!(
        Challenge::parse(COMPLETE),
        Err(ChallengeError::UnsupportedLock(_))
    ));

    let c = Challenge::parse(LOCKED).unwrap();
    assert_eq!(c.amount, Amount::from(500));
    assert!(c.lock_pubkey().is_some());

    // A valid NUT-18 request, but not a valid NUT-24 challenge: it names no amount.
    assert_eq!(
        Challenge::parse(MINIMAL),
        Err(ChallengeError::MissingAmount)
    );
}

#[test]
fn padded_and_unpadded_are_the_same() {
    let unpadded = HTTP_POST.trim_end_matches('=');
    assert_ne!(unpadded, HTTP_POST);
    assert_eq!(
        Challenge::parse(unpadded).unwrap(),
        Challenge::parse(HTTP_POST).unwrap()
    );
}

#[test]
fn creqb_decodes_in_either_case() {
    let upper = PaymentRequest::from_str(CREQB).unwrap();
    let lower = PaymentRequest::from_str(&CREQB.to_lowercase()).unwrap();
    assert_eq!(upper, lower);
    // Ours always carries an amount, unit and mint; round-trip one through creqB.
    let ours = Challenge::new(Amount::from(5), CurrencyUnit::Sat, mint()).locked_to(key());
    let creqb = ours
        .to_payment_request()
        .unwrap()
        .to_bech32_string()
        .unwrap();
    assert!(creqb.to_lowercase().starts_with("creqb1"));
    assert_eq!(Challenge::parse(&creqb).unwrap(), ours);
    assert_eq!(Challenge::parse(&creqb.to_lowercase()).unwrap(), ours);
}

#[test]
fn nut24_rules_are_enforced() {
    let no_unit = PaymentRequest::builder().amount(5).add_mint(mint()).build();
    assert_eq!(
        Challenge::try_from(no_unit),
        Err(ChallengeError::MissingUnit)
    );
    let no_mint = PaymentRequest::builder()
        .amount(5)
        .unit(CurrencyUnit::Sat)
        .build();
    assert_eq!(Challenge::try_from(no_mint), Err(ChallengeError::NoMints));
    let zero = PaymentRequest::builder()
        .amount(0)
        .unit(CurrencyUnit::Sat)
        .add_mint(mint())
        .build();
    assert_eq!(Challenge::try_from(zero), Err(ChallengeError::ZeroAmount));
    assert!(matches!(
        Challenge::parse("creqAnotbase64!!"),
        Err(ChallengeError::Decode(_))
    ));
    assert!(matches!(
        Challenge::parse("hello"),
        Err(ChallengeError::Decode(_))
    ));
    let huge = format!("creqA{}", "A".repeat(MAX_HEADER_LEN));
    assert_eq!(Challenge::parse(&huge), Err(ChallengeError::TooLong));
}

#[test]
fn credentials_accept_v3_and_v4_and_refuse_junk() {
    // A V4 token from cashubtc/nuts tests/00-tests.md.
    let v4 = "cashuBpGF0gaJhaUgArSaMTR9YJmFwgaNhYQFhc3hAOWE2ZGJiODQ3YmQyMzJiYTc2ZGIwZGYxOTcyMTZiMjlkM2I4Y2MxNDU1M2NkMjc4MjdmYzFjYzk0MmZlZGI0ZWFjWCEDhhhUP_trhpXfStS6vN6So0qWvc2X3O4NfM-Y1HISZ5JhZGlUaGFuayB5b3VhbXVodHRwOi8vbG9jYWxob3N0OjMzMzhhdWNzYXQ";
    let t = parse_credential(v4).unwrap();
    assert_eq!(t.value().unwrap(), Amount::from(1));
    let v3 = t.to_v3_string();
    assert!(v3.starts_with("cashuA"));
    assert_eq!(
        parse_credential(&v3).unwrap().value().unwrap(),
        Amount::from(1)
    );
    assert_eq!(parse_credential("  "), Err(CredentialError::Empty));
    assert!(matches!(
        parse_credential("cashuBxyz"),
        Err(CredentialError::Decode(_))
    ));
    assert!(matches!(
        parse_credential("creqA..."),
        Err(CredentialError::Decode(_))
    ));
    let huge = format!("cashuB{}", "A".repeat(MAX_HEADER_LEN));
    assert_eq!(parse_credential(&huge), Err(CredentialError::TooLong));
}

fn arb_challenge() -> impl Strategy<Value = Challenge> {
    (
        1u64..=u64::from(u32::MAX),
        prop_oneof![
            Just(CurrencyUnit::Sat),
            Just(CurrencyUnit::Msat),
            Just(CurrencyUnit::Usd)
        ],
        prop::collection::vec("[a-z]{1,12}", 1..4),
        prop::option::of("[a-zA-Z0-9]{1,16}"),
        prop::option::of(".{0,40}"),
        any::<bool>(),
    )
        .prop_map(|(amount, unit, hosts, id, description, locked)| {
            let mints = hosts
                .iter()
                .map(|h| MintUrl::from_str(&format!("https://{h}.example")).unwrap())
                .collect();
            Challenge {
                amount: Amount::from(amount),
                unit,
                mints,
                request_id: id,
                description,
                lock: locked.then(|| SpendingConditions::new_p2pk(key(), None)),
            }
        })
}

proptest! {
    #[test]
    fn challenges_round_trip_through_creqa_and_creqb(c in arb_challenge()) {
        let creqa = c.encode().unwrap();
        prop_assert_eq!(&Challenge::parse(&creqa).unwrap(), &c);
        prop_assert_eq!(&Challenge::parse(creqa.trim_end_matches('=')).unwrap(), &c);
        let creqb = c.to_payment_request().unwrap().to_bech32_string().unwrap();
        prop_assert_eq!(&Challenge::parse(&creqb).unwrap(), &c);
    }

    #[test]
    fn challenge_decoder_never_panics(s in ".{0,300}") {
        let _ = Challenge::parse(&s);
        let _ = Challenge::parse(&format!("creqA{s}"));
        let _ = Challenge::parse(&format!("creqb1{s}"));
    }

    #[test]
    fn challenge_decoder_never_panics_on_random_cbor(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let encoded = bitcoin_base64(&bytes);
        let _ = Challenge::parse(&format!("creqA{encoded}"));
        let _ = parse_credential(&format!("cashuB{encoded}"));
        let _ = parse_credential(&format!("cashuA{encoded}"));
    }

    #[test]
    fn credential_decoder_never_panics(s in ".{0,300}") {
        let _ = parse_credential(&s);
        let _ = parse_credential(&format!("cashuB{s}"));
        let _ = parse_credential(&format!("cashuA{s}"));
    }
}

/// base64url without padding, written out here so the test needs no extra dependency.
fn bitcoin_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

// Found by the `nut24_challenge` fuzz target: `m` holding `\x18https://://mint.example.com...`
// decoded (cdk's `MintUrl` made it `https://`), but the re-encoded challenge did not decode.
#[test]
fn challenge_naming_a_mint_that_is_not_a_url_is_refused() {
    let crash = "creqApWFpaGM5ZTQ1ZDBhYWEZAfRhdWNzYXRhbYF3GGh0dHBzOi8vOi8vbWludC5leGFtcGxlLmNvbWVudwZmJjMGFiYzdGltZGQzNjAw";
    assert!(
        matches!(Challenge::parse(crash), Err(ChallengeError::BadMint(_))),
        "{:?}",
        Challenge::parse(crash)
    );
    for bad in [
        "https://://mint.example.com",
        "ftp://mint.example.com",
        "https://mi nt.example.com",
    ] {
        let Ok(mint) = MintUrl::from_str(bad) else {
            continue;
        };
        assert!(!is_http_mint_url(&mint), "{bad} -> {mint}");
        let mut challenge = Challenge::new(Amount::from(5), CurrencyUnit::Sat, mint);
        challenge.request_id = Some("x".into());
        let encoded = challenge.encode().unwrap();
        // `https://` does not even decode again; the others decode and are refused.
        let parsed = Challenge::parse(&encoded);
        assert!(
            matches!(
                parsed,
                Err(ChallengeError::BadMint(_) | ChallengeError::Decode(_))
            ),
            "{bad}: {parsed:?}"
        );
    }
    let ftp = Challenge::new(
        Amount::from(5),
        CurrencyUnit::Sat,
        MintUrl::from_str("ftp://mint.example.com").unwrap(),
    );
    assert!(matches!(
        Challenge::parse(&ftp.encode().unwrap()),
        Err(ChallengeError::BadMint(_))
    ));
    for good in [
        "https://mint.example.com",
        "http://127.0.0.1:3338",
        "https://example.com/cashu/v1",
    ] {
        assert!(
            is_http_mint_url(&MintUrl::from_str(good).unwrap()),
            "{good}"
        );
    }
}

#[test]
fn token_naming_a_mint_that_is_not_a_url_is_refused() {
    let good = parse_credential(
        "cashuBpGF0gaJhaUgArSaMTR9YJmFwgaNhYQFhc3hAOWE2ZGJiODQ3YmQyMzJiYTc2ZGIwZGYxOTcyMTZiMjlkM2I4Y2MxNDU1M2NkMjc4MjdmYzFjYzk0MmZlZGI0ZWFjWCEDhhhUP_trhpXfStS6vN6So0qWvc2X3O4NfM-Y1HISZ5JhZGlUaGFuayB5b3VhbXVodHRwOi8vbG9jYWxob3N0OjMzMzhhdWNzYXQ",
    )
    .unwrap();
    let Token::TokenV4(mut v4) = good else {
        panic!("a V4 token")
    };
    v4.mint_url = MintUrl::from_str("ftp://mint.example.com").unwrap();
    let encoded = Token::TokenV4(v4.clone()).to_string();
    assert!(
        matches!(parse_credential(&encoded), Err(CredentialError::BadMint(_))),
        "{:?}",
        parse_credential(&encoded)
    );
    v4.mint_url = MintUrl::from_str("https://://mint.example.com").unwrap();
    assert!(parse_credential(&Token::TokenV4(v4).to_string()).is_err());
}
