//! A fleet CSV (`veuctl plan`): parsed against the built-in catalogue and a shipped policy, every
//! bad line reported; a valid fleet is evaluated, with its remediation, without panicking (no
//! overflow however large the counts).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use proto_accounting::{Catalogue, Fleet, Policy, evaluate, remediation};

fn rules() -> &'static (Catalogue, Policy) {
    static RULES: OnceLock<(Catalogue, Policy)> = OnceLock::new();
    RULES.get_or_init(|| {
        (
            Catalogue::builtin().expect("the built-in catalogue"),
            Policy::from_toml(include_str!("../../deploy/policies/uveu-2026-us.toml"))
                .expect("a shipped policy"),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let (catalogue, policy) = rules();
    let Ok(fleet) = Fleet::parse_with(data, catalogue, policy, 20, &mut |_| {}) else {
        return;
    };
    let evaluation = evaluate(policy, fleet.distribution());
    if let Some(unit) = catalogue.entries().first() {
        let _ = remediation(policy, &evaluation, unit);
    }
});
