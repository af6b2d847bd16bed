//! `WWW-Authenticate: L402 ...` challenges (and `LSAT`, `macaroon=`), as an agent reads them from
//! a server it does not trust. Properties: parsing (any number of challenges per header) and
//! decoding the BOLT11 invoice never panic; a parsed challenge whose values need no escaping
//! encodes to a header that parses to the same challenge.
#![no_main]

use cashu_402::l402::L402Challenge;
use cashu_402::macaroon::Macaroon;
use libfuzzer_sys::fuzz_target;

/// What the encoder writes inside a quoted string without escaping.
fn plain(s: &str) -> bool {
    !s.chars().any(|c| c == '"' || c == '\\' || c.is_control())
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    for challenge in L402Challenge::parse_all([header]).into_iter().flatten() {
        if let Ok(info) = challenge.invoice_info() {
            let _ = info.amount_sat();
        }
        if let Ok(mac) = Macaroon::from_base64(&challenge.token) {
            let _ = mac.l402_identifier();
        }
        if plain(&challenge.token)
            && plain(&challenge.invoice)
            && challenge.version.as_deref().is_none_or(plain)
        {
            let encoded = challenge.encode();
            let again = L402Challenge::parse(&encoded)
                .unwrap_or_else(|e| panic!("re-encoded challenge does not parse: {e}: {encoded}"));
            assert_eq!(again, challenge, "L402 challenge round trip: {encoded}");
        }
    }
});
