//! Macaroon: signature chain, caveats narrowing, v2 binary round trip, garbage never panics.

use super::*;
use proptest::prelude::*;

fn sample() -> Macaroon {
    let id = Identifier::new([1; 32], [2; 32]);
    let mut m = Macaroon::new(b"root key", id.encode(), "merchant");
    m.add_caveat("services=api:0");
    m.add_caveat("api_valid_until=1700000000");
    m
}

#[test]
fn signature_verifies_with_the_root_key_only() {
    let m = sample();
    assert!(m.verify_signature(b"root key"));
    assert!(!m.verify_signature(b"other key"));
}

#[test]
fn editing_or_dropping_a_caveat_breaks_the_signature() {
    let mut m = sample();
    m.caveats[1] = "api_valid_until=9999999999".into();
    assert!(!m.verify_signature(b"root key"));
    let mut m = sample();
    m.caveats.pop();
    assert!(!m.verify_signature(b"root key"));
    // Appending is allowed (it narrows) and still verifies.
    let mut m = sample();
    m.add_caveat("api_path=/x");
    assert!(m.verify_signature(b"root key"));
}

#[test]
fn binary_round_trip_and_identifier() {
    let m = sample();
    let back = Macaroon::from_base64(&m.to_base64()).unwrap();
    assert_eq!(back, m);
    assert!(back.verify_signature(b"root key"));
    let id = back.l402_identifier().unwrap();
    assert_eq!((id.payment_hash, id.token_id), ([1; 32], [2; 32]));
    assert_eq!(
        back.caveat_pairs().collect::<Vec<_>>(),
        vec![("services", "api:0"), ("api_valid_until", "1700000000")]
    );
}

#[test]
fn malformed_macaroons_are_refused() {
    assert_eq!(Macaroon::from_base64("!!"), Err(MacaroonError::NotBase64));
    assert!(matches!(
        Macaroon::decode(&[1, 2, 3]),
        Err(MacaroonError::Format(_))
    ));
    let mut bytes = sample().encode();
    bytes.push(0);
    assert!(matches!(
        Macaroon::decode(&bytes),
        Err(MacaroonError::Format(_))
    ));
    let short = Macaroon::new(b"k", vec![0; 10], "");
    assert_eq!(short.l402_identifier(), Err(MacaroonError::Identifier));
}

proptest! {
    #[test]
    fn round_trips(id in proptest::collection::vec(any::<u8>(), 0..300),
                   caveats in proptest::collection::vec("[ -~]{0,200}", 0..5),
                   loc in "[a-z]{0,20}") {
        let mut m = Macaroon::new(b"k", id, loc);
        for c in caveats { m.add_caveat(c); }
        let back = Macaroon::decode(&m.encode()).unwrap();
        prop_assert!(back.verify_signature(b"k"));
        prop_assert_eq!(back, m);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Macaroon::decode(&bytes);
        let mut v2 = vec![2u8];
        v2.extend_from_slice(&bytes);
        let _ = Macaroon::decode(&v2);
    }
}
