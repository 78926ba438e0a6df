//! An accelerator catalogue file (proto-accounting): parsed with every error reported; a valid
//! one identifies devices by PCI id and NVML name without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_accounting::{Catalogue, PciId};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(catalogue) = Catalogue::from_toml(text) else {
        return;
    };
    let _ = catalogue.digest();
    let h100 = PciId::parse("10de:2330").expect("a PCI id");
    let _ = catalogue.identify(Some(h100), "NVIDIA H100 80GB HBM3");
    let _ = catalogue.identify(None, "NVIDIA H100 80GB HBM3");
    let first = text.lines().next().unwrap_or_default();
    let _ = catalogue.identify(None, first);
    let _ = catalogue.by_id(first);
    let _ = catalogue.suggestions(first);
    for accelerator in catalogue.entries() {
        let _ = accelerator.units_within(u64::MAX);
        let _ = accelerator.units_covering(u64::MAX);
    }
});
