//! A whole 402 answer as the agent wallet sees it: every header (`X-Cashu`, `WWW-Authenticate`,
//! `PAYMENT-REQUIRED`, ...) and the body, gathered into offers. The input is `Name: value` lines,
//! then an empty line, then the body. Properties: gathering, choosing by any preference and
//! describing what was refused never panic; a chosen offer is one of the offers.
#![no_main]

use cashu_402::offers::{Offers, SchemeKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let headers: Vec<(&str, &str)> = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .collect();
    let body = (!body.is_empty()).then_some(body.as_bytes());
    let offers = Offers::collect(headers, body);
    let _ = offers.describe_unsupported();
    let _ = offers.is_empty();
    let all = [SchemeKind::Cashu, SchemeKind::L402, SchemeKind::X402Cashu];
    for preference in [
        &all[..],
        &all[1..],
        &[SchemeKind::X402Cashu, SchemeKind::Cashu][..],
        &[][..],
    ] {
        if let Some(chosen) = offers.choose(preference) {
            assert!(
                offers.offers.contains(chosen),
                "chosen offer is not an offer"
            );
            assert!(preference.contains(&chosen.kind()));
        }
    }
});
