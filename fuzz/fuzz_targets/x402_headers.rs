//! x402-style headers and bodies: `PAYMENT-REQUIRED` (v2) and the v1 JSON body from a server,
//! `PAYMENT-SIGNATURE` / `X-PAYMENT` from a client. Properties: decoding never panics, nor do
//! reading the Cashu requirements and the Cashu token; what decodes re-encodes to a header that
//! decodes to the same value.
#![no_main]

use cashu_402::x402::{PaymentPayload, PaymentRequired};
use libfuzzer_sys::fuzz_target;

fn check_required(pr: &PaymentRequired) {
    for accepted in &pr.accepts {
        let _ = accepted.amount_str();
        if accepted.is_cashu() {
            let _ = accepted.cashu();
        }
    }
    let header = pr.to_header();
    let again = PaymentRequired::from_header(&header)
        .unwrap_or_else(|e| panic!("re-encoded PAYMENT-REQUIRED does not decode: {e}"));
    assert_eq!(&again, pr, "PAYMENT-REQUIRED round trip");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(pr)) = PaymentRequired::from_body(data) {
        check_required(&pr);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(pr) = PaymentRequired::from_header(text) {
        check_required(&pr);
    }
    if let Ok(payload) = PaymentPayload::from_header(text) {
        let _ = payload.scheme_network();
        let _ = payload.cashu_token();
        let header = payload.to_header();
        let again = PaymentPayload::from_header(&header)
            .unwrap_or_else(|e| panic!("re-encoded payment header does not decode: {e}"));
        assert_eq!(again, payload, "payment header round trip");
    }
});
