//! The agent's allowance credential (`callowA...`), pasted by a human into the agent wallet.
//! Properties: decoding never panics; a decoded credential re-encodes to a string that decodes to
//! the same credential; the `Debug` form never shows the secret key.
#![no_main]

use std::str::FromStr;

use cashu_402::allowance::{is_allowance_id, Credential};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(credential) = Credential::from_str(text) else {
        return;
    };
    assert!(is_allowance_id(&credential.allowance));
    let encoded = credential.to_string();
    let again = Credential::from_str(&encoded)
        .unwrap_or_else(|e| panic!("re-encoded credential does not decode: {e}: {encoded}"));
    assert!(again == credential, "credential round trip changed it");
    // A mint URL may itself spell the key's hex (found by this target): that is no leak.
    if let Some(key) = credential
        .secret_key
        .as_ref()
        .filter(|k| !credential.mint.to_string().contains(&k.to_secret_hex()))
    {
        let debug = format!("{credential:?}");
        assert!(
            !debug.contains(&key.to_secret_hex()),
            "Debug leaks the agent key"
        );
    }
});
