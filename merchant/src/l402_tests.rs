//! Caveat checks: every caveat must hold, unknown ones fail closed, required ones must exist.

use super::*;
use crate::paywall::Price;

fn offer(amount: u64) -> Offer {
    Offer {
        price: Price::sat(amount),
        mints: vec!["http://127.0.0.1:3338".parse().unwrap()],
        lock: None,
        require_dleq: false,
    }
}

fn mac(caveats: &[&str]) -> Macaroon {
    let mut m = Macaroon::new(b"k", Identifier::new([1; 32], [2; 32]).encode(), "paywall");
    for c in caveats {
        m.add_caveat(*c);
    }
    m
}

const GOOD: [&str; 4] = [
    "services=paywall:0",
    "paywall_valid_until=2000",
    "paywall_path_prefix=/api/",
    "paywall_paid=5 sat",
];

fn check(m: &Macaroon, amount: u64, path: &str) -> Result<(), PaywallError> {
    check_caveats(m, &L402Options::default(), &offer(amount), path, 1000)
}

#[test]
fn a_good_macaroon_passes_within_its_scope_and_price() {
    let m = mac(&GOOD);
    assert_eq!(check(&m, 5, "/api/x"), Ok(()));
    assert_eq!(check(&m, 3, "/api/y/z"), Ok(()), "a cheaper route is fine");
}

#[test]
fn each_caveat_is_enforced() {
    let m = mac(&GOOD);
    assert!(matches!(
        check(&m, 6, "/api/x"),
        Err(PaywallError::L402Invalid(_))
    ));
    assert!(matches!(
        check(&m, 5, "/other"),
        Err(PaywallError::L402Invalid(_))
    ));
    let expired = check_caveats(&m, &L402Options::default(), &offer(5), "/api/x", 2000);
    assert!(matches!(expired, Err(PaywallError::L402Invalid(_))));
    let other_service = L402Options {
        service: "other".into(),
        ..L402Options::default()
    };
    assert!(check_caveats(&m, &other_service, &offer(5), "/api/x", 1000).is_err());
}

#[test]
fn unknown_or_missing_caveats_fail_closed() {
    let mut with_unknown = GOOD.to_vec();
    with_unknown.push("paywall_capabilities=admin");
    assert!(check(&mac(&with_unknown), 5, "/api/x").is_err());
    for skip in [0, 1, 3] {
        let some: Vec<&str> = GOOD
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, c)| *c)
            .collect();
        assert!(
            check(&mac(&some), 5, "/api/x").is_err(),
            "without {}",
            GOOD[skip]
        );
    }
}

#[test]
fn path_scope_is_the_directory() {
    assert_eq!(path_scope("/api/weather"), "/api/");
    assert_eq!(path_scope("/weather"), "/");
    assert_eq!(path_scope(""), "/");
}

#[test]
fn the_root_key_file_is_created_once_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let a = load_or_create_root_key(dir.path()).unwrap();
    let b = load_or_create_root_key(dir.path()).unwrap();
    assert_eq!(a, b);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join(ROOT_KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::write(dir.path().join(ROOT_KEY_FILE), "nope").unwrap();
    assert!(load_or_create_root_key(dir.path()).is_err());
}
