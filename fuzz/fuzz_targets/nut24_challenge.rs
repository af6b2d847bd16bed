//! `X-Cashu` challenges (NUT-24 over NUT-18 `creqA` / NUT-26 `creqB`), as an agent decodes them
//! from a merchant it does not trust. Properties: decoding never panics, and whatever decodes
//! re-encodes to a `creqA` that decodes to the same challenge.
#![no_main]

use cashu_402::nut24::Challenge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(challenge) = Challenge::parse(header) else {
        return;
    };
    let _ = challenge.lock_pubkey();
    // A challenge that decoded but cannot be re-encoded would be one the agent accepts and a
    // merchant built on this crate could never send: still no panic, but worth knowing.
    let encoded = challenge
        .encode()
        .unwrap_or_else(|e| panic!("decoded challenge does not re-encode: {e}: {challenge:?}"));
    let again = Challenge::parse(&encoded)
        .unwrap_or_else(|e| panic!("re-encoded challenge does not decode: {e}: {encoded}"));
    assert_eq!(again, challenge, "creqA round trip changed the challenge");
});
