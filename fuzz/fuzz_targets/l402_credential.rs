//! `Authorization: L402 <macaroon>[,...]:<hex preimage>` credentials, as a paywall reads them
//! from any client, and the macaroons inside. Properties: parsing never panics; a parsed
//! credential encodes to a header that parses to the same credential; a macaroon that decodes
//! re-encodes to one that decodes to the same macaroon.
#![no_main]

use cashu_402::l402::L402Credential;
use cashu_402::macaroon::Macaroon;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The raw bytes are also a binary macaroon.
    if let Ok(mac) = Macaroon::decode(data) {
        let _ = mac.l402_identifier();
        let _ = mac.caveat_pairs().count();
        let _ = mac.verify_signature(b"fuzz root key");
        let again = Macaroon::from_base64(&mac.to_base64())
            .unwrap_or_else(|e| panic!("re-encoded macaroon does not decode: {e}"));
        assert_eq!(again.encode(), mac.encode(), "macaroon round trip");
    }
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(credential) = L402Credential::parse(header) else {
        return;
    };
    for m in &credential.macaroons {
        let _ = Macaroon::from_base64(m).map(|mac| mac.l402_identifier());
    }
    let encoded = credential.encode();
    let again = L402Credential::parse(&encoded)
        .unwrap_or_else(|e| panic!("re-encoded credential does not parse: {e}: {encoded}"));
    assert_eq!(again, credential, "L402 credential round trip: {encoded}");
});
