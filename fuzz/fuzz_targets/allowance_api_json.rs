//! The JSON bodies of the allowance API: draw authorisations (which an agent sends with every
//! draw, so anyone holding a mint URL can send them) and the admin requests. Properties: decoding
//! never panics; what decodes serialises and decodes to the same value; checking a draw's nonce
//! and signature never panics and never accepts a signature by another key.
#![no_main]

use cashu_402::allowance::{
    AllowancePolicy, AllowanceView, CreateMetered, CreatePrepaid, DrawAuth, TopUp, Withdraw,
};
use cdk::nuts::SecretKey;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    data: &[u8],
) -> Option<T> {
    let value: T = serde_json::from_slice(data).ok()?;
    let json =
        serde_json::to_vec(&value).unwrap_or_else(|e| panic!("{value:?} does not serialise: {e}"));
    let again: T = serde_json::from_slice(&json)
        .unwrap_or_else(|e| panic!("serialised {value:?} does not decode: {e}"));
    assert_eq!(again, value, "JSON round trip changed the value");
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    if let Some(auth) = round_trip::<DrawAuth>(data) {
        // A fixed key nobody signed with: every signature must fail against it.
        let key = SecretKey::from_slice(&[7u8; 32]).unwrap_or_else(|e| panic!("fixed key: {e}"));
        let other = key.public_key();
        for (amount, unit) in [(1u64, "sat"), (u64::MAX, ""), (0, "msat")] {
            assert!(
                auth.verify(amount, unit, &other).is_err(),
                "a fuzzed signature verified against an unrelated key"
            );
        }
    }
    if let Some(policy) = round_trip::<AllowancePolicy>(data) {
        let _ = policy.validate();
    }
    let _ = round_trip::<CreateMetered>(data);
    let _ = round_trip::<CreatePrepaid>(data);
    let _ = round_trip::<TopUp>(data);
    let _ = round_trip::<Withdraw>(data);
    let _ = round_trip::<AllowanceView>(data);
});
