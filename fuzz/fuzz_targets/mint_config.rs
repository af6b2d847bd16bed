//! The mint's TOML configuration and its validation (including the Lightning backend sections).
//! Properties: parsing and validating never panic; a parsed config serialises to TOML that parses
//! to the same config, and validates the same way.
#![no_main]

use std::path::Path;

use allowance_mint::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text, Path::new("fuzz.toml")) else {
        return;
    };
    let verdict = config.validate().map_err(|e| e.to_string());
    let _ = config.public_url();
    let _ = config.sqlite_path();
    // NaN is not equal to itself; validation refuses it, so compare only what could be served.
    if verdict.is_err() && config.lightning.fee_percent.is_nan() {
        return;
    }
    let written = toml::to_string(&config)
        .unwrap_or_else(|e| panic!("parsed config does not serialise: {e}: {config:?}"));
    let again = Config::from_toml(&written, Path::new("fuzz-again.toml"))
        .unwrap_or_else(|e| panic!("serialised config does not parse: {e}\n{written}"));
    assert_eq!(
        again, config,
        "TOML round trip changed the config:\n{written}"
    );
    assert_eq!(again.validate().map_err(|e| e.to_string()), verdict);
});
