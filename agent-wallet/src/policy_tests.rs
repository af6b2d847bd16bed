use super::*;

#[test]
fn exact_host_pattern_matches_case_insensitively_and_ignores_trailing_dot() {
    assert!(host_matches(
        "api.example.com",
        "api.example.com",
        Some(443)
    ));
    assert!(host_matches("API.Example.com", "api.example.com.", None));
    assert!(!host_matches("api.example.com", "example.com", None));
    assert!(!host_matches("api.example.com", "xapi.example.com", None));
}

#[test]
fn wildcard_subdomain_pattern_matches_subdomains_only() {
    assert!(host_matches("*.example.com", "api.example.com", None));
    assert!(host_matches("*.example.com", "a.b.example.com", None));
    assert!(!host_matches("*.example.com", "example.com", None));
    assert!(!host_matches("*.example.com", "badexample.com", None));
    assert!(!host_matches("*.example.com", "example.com.evil.org", None));
}

#[test]
fn star_matches_any_host() {
    assert!(host_matches("*", "anything.invalid", Some(1)));
}

#[test]
fn pattern_with_port_requires_that_port() {
    assert!(host_matches("localhost:8080", "localhost", Some(8080)));
    assert!(!host_matches("localhost:8080", "localhost", Some(8081)));
    assert!(!host_matches("localhost:8080", "localhost", None));
    assert!(host_matches("localhost", "localhost", Some(8081)));
    assert!(host_matches("[::1]:80", "[::1]", Some(80)));
}

#[test]
fn check_host_refuses_unlisted_hosts() {
    let mut p = Policy::default();
    p.set("allowed_hosts", "api.example.com, *.paid.dev")
        .unwrap();
    assert!(p.check_host("api.example.com", Some(443)).is_ok());
    assert!(p.check_host("x.paid.dev", Some(443)).is_ok());
    assert_eq!(
        p.check_host("evil.com", Some(443)),
        Err(PolicyViolation::HostNotAllowed {
            host: "evil.com".into()
        })
    );
    p.set("allowed_hosts", "").unwrap();
    assert!(p.check_host("api.example.com", None).is_err());
}

#[test]
fn per_request_cap_and_max_cost() {
    let p = Policy {
        max_per_request: Some(10),
        ..Policy::default()
    };
    assert!(p.check_cost("h", 10, None, Spent::default()).is_ok());
    assert_eq!(
        p.check_cost("h", 11, None, Spent::default()),
        Err(PolicyViolation::PerRequest { cost: 11, max: 10 })
    );
    assert_eq!(
        p.check_cost("h", 5, Some(4), Spent::default()),
        Err(PolicyViolation::MaxCost { cost: 5, max: 4 })
    );
}

#[test]
fn per_host_per_day_cap_counts_what_was_spent() {
    let p = Policy {
        max_per_host_per_day: Some(100),
        ..Policy::default()
    };
    let spent = Spent {
        host_last_day: 95,
        total: 1_000,
    };
    assert!(p.check_cost("h", 5, None, spent).is_ok());
    assert_eq!(
        p.check_cost("h", 6, None, spent),
        Err(PolicyViolation::PerHostPerDay {
            host: "h".into(),
            cost: 6,
            spent: 95,
            max: 100
        })
    );
}

#[test]
fn total_cap_counts_everything() {
    let p = Policy {
        max_total: Some(50),
        ..Policy::default()
    };
    let spent = Spent {
        host_last_day: 0,
        total: 45,
    };
    assert!(p.check_cost("h", 5, None, spent).is_ok());
    assert!(matches!(
        p.check_cost("h", 6, None, spent),
        Err(PolicyViolation::Total { .. })
    ));
    assert!(p.check_total(6, 45).is_err());
}

#[test]
fn unlimited_caps_never_refuse() {
    let p = Policy {
        max_per_request: None,
        max_per_host_per_day: None,
        max_total: None,
        ..Policy::default()
    };
    let spent = Spent {
        host_last_day: u64::MAX,
        total: u64::MAX,
    };
    assert!(p.check_cost("h", u64::MAX, None, spent).is_ok());
}

#[test]
fn mint_allow_list_normalizes_urls() {
    let mint = MintUrl::from_str("http://127.0.0.1:3338").unwrap();
    let mut p = Policy::default();
    assert!(p.allows_mint(&mint));
    p.set("allowed_mints", "http://127.0.0.1:3338/").unwrap();
    assert!(p.allows_mint(&mint));
    p.set("allowed_mints", "https://other.example").unwrap();
    assert!(!p.allows_mint(&mint));
}

#[test]
fn set_parses_limits_and_rejects_bad_values() {
    let mut p = Policy::default();
    p.set("max_total", "500").unwrap();
    assert_eq!(p.max_total, Some(500));
    p.set("max_total", "unlimited").unwrap();
    assert_eq!(p.max_total, None);
    assert!(matches!(
        p.set("max_total", "lots"),
        Err(PolicySetError::BadLimit { .. })
    ));
    assert!(matches!(
        p.set("max_everything", "1"),
        Err(PolicySetError::UnknownKey(_))
    ));
    assert!(p.set("allowed_hosts", "a.*.com").is_err());
    assert!(p.set("allowed_hosts", "host:notaport").is_err());
    assert!(p.set("allowed_mints", "not a url").is_err());
}

#[test]
fn policy_round_trips_through_toml_with_unlimited() {
    let p = Policy {
        max_total: None,
        max_per_request: Some(7),
        ..Policy::default()
    };
    let text = toml::to_string(&p).unwrap();
    assert!(text.contains("max_total = \"unlimited\""), "{text}");
    let back: Policy = toml::from_str(&text).unwrap();
    assert_eq!(back, p);
    assert!(toml::from_str::<Policy>("max_total = \"lots\"").is_err());
    assert!(toml::from_str::<Policy>("surprise = 1").is_err());
}

#[test]
fn scheme_preference_is_set_from_text_and_toml() {
    let mut p = Policy::default();
    assert_eq!(p.schemes, SchemeKind::DEFAULT_ORDER.to_vec());
    p.set("schemes", "l402, cashu").unwrap();
    assert_eq!(p.schemes, vec![SchemeKind::L402, SchemeKind::Cashu]);
    let err = p.set("schemes", "cashu,paypal").unwrap_err();
    assert!(err.to_string().contains("paypal"), "{err}");
    assert_eq!(
        p.schemes,
        vec![SchemeKind::L402, SchemeKind::Cashu],
        "unchanged"
    );
    p.set("schemes", "").unwrap();
    assert!(p.schemes.is_empty(), "nothing is paid");

    let p: Policy = toml::from_str("schemes = [\"x402-cashu\", \"cashu\"]").unwrap();
    assert_eq!(p.schemes, vec![SchemeKind::X402Cashu, SchemeKind::Cashu]);
    let text = toml::to_string(&p).unwrap();
    assert!(
        text.contains("schemes = [\"x402-cashu\", \"cashu\"]"),
        "{text}"
    );
    assert!(toml::from_str::<Policy>("schemes = [\"bitcoin\"]").is_err());
}
