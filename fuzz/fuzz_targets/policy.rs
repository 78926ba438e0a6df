//! A policy file (proto-accounting): parsed with every error reported, and a valid one
//! evaluates a small fixed distribution and its remediation without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_accounting::{Catalogue, CountryCode, Distribution, Policy, evaluate, remediation};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::from_toml(text) else {
        return;
    };
    let _ = policy.digest();
    let mut distribution = Distribution::new();
    for (code, tpp) in [("US", 126_720), ("MY", 15_840), ("DE", 1), ("CN", 0)] {
        distribution
            .add(CountryCode::parse(code).expect("a country"), tpp)
            .expect("no overflow");
    }
    let evaluation = evaluate(&policy, &distribution);
    let _ = evaluation.verdict();
    let catalogue = Catalogue::builtin().expect("the built-in catalogue");
    if let Some(unit) = catalogue.entries().first() {
        let _ = remediation(&policy, &evaluation, unit);
    }
});
