//! `X-Cashu` credentials (`cashuA` V3 / `cashuB` V4 tokens), as a merchant decodes them from any
//! client on the internet. Properties: decoding never panics; a decoded token re-encodes to a
//! string that decodes to the same token, with the same value, unit and mint.
#![no_main]

use std::str::FromStr;

use cashu_402::nut24::parse_credential;
use cashu_402::Token;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(token) = parse_credential(header) else {
        return;
    };
    // What the merchant's verifier asks of every token: none of it may panic.
    let value = token.value();
    let unit = token.unit();
    let mint = token.mint_url();
    let _ = token.memo();
    let _ = token.spending_conditions();
    let _ = token.p2pk_pubkeys();
    let _ = token.token_secrets();
    let encoded = token.to_string();
    let again = Token::from_str(&encoded)
        .unwrap_or_else(|e| panic!("re-encoded token does not decode: {e}: {encoded}"));
    assert_eq!(again, token, "token round trip changed the token");
    assert_eq!(again.value().ok(), value.ok());
    assert_eq!(again.unit(), unit);
    assert_eq!(again.mint_url().ok(), mint.ok());
});
