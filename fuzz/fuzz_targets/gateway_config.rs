//! The merchant's `paywall-gateway` TOML configuration and its validation. Properties: parsing
//! and validating never panic; a parsed config serialises to TOML that parses to the same config
//! and validates the same way; the path check the price table relies on never panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use merchant::gateway::pricing::canonical_path;
use merchant::gateway::GatewayConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Any text is also a request path the gateway may see.
    let _ = canonical_path(text);
    let Ok(config) = GatewayConfig::from_toml(text, Path::new("fuzz.toml")) else {
        return;
    };
    let verdict = config.validate().map_err(|e| e.to_string());
    for rule in &config.prices {
        let _ = canonical_path(&rule.path_prefix);
    }
    let written = toml::to_string(&config)
        .unwrap_or_else(|e| panic!("parsed config does not serialise: {e}: {config:?}"));
    let again = GatewayConfig::from_toml(&written, Path::new("fuzz-again.toml"))
        .unwrap_or_else(|e| panic!("serialised config does not parse: {e}\n{written}"));
    assert_eq!(
        again, config,
        "TOML round trip changed the config:\n{written}"
    );
    assert_eq!(again.validate().map_err(|e| e.to_string()), verdict);
});
