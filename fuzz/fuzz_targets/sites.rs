//! The collector's site registry file (collector-core): parsed with every error reported; each
//! site a valid registry holds is found again by its id.
#![no_main]

use collector_core::SiteRegistry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(registry) = SiteRegistry::from_toml(text) else {
        return;
    };
    for site in registry.iter() {
        assert!(registry.get(&site.id).is_some());
    }
});
