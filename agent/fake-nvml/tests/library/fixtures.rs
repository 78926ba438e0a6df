//! The committed fixtures: each initialises as its host would, with the catalogue's PCI ids.

use std::collections::BTreeSet;
use std::process::Command;

use nvml_wrapper_sys::bindings::*;

use crate::harness::{DRIVER_NOT_LOADED, GPU_IS_LOST, Nvml, fixture, fixtures_dir};

/// Every fixture, with its device count, or the code init fails with.
const HOSTS: [(&str, Result<u32, nvmlReturn_t>); 10] = [
    ("dgx-h100.json", Ok(8)),
    ("hgx-h200.json", Ok(8)),
    ("a100x8.json", Ok(8)),
    ("l40s-x4.json", Ok(4)),
    ("h100-mig.json", Ok(1)),
    ("one-gpu-fails.json", Ok(8)),
    ("gb200-node.json", Ok(4)),
    ("no-devices.json", Ok(0)),
    ("no-driver.json", Err(DRIVER_NOT_LOADED)),
    ("unknown-gpu.json", Ok(2)),
];

/// NVML name, packed PCI device id and architecture of each model the fixtures use.
const MODELS: [(&str, u32, u32); 6] = [
    (
        "NVIDIA H100 80GB HBM3",
        0x2330_10DE,
        NVML_DEVICE_ARCH_HOPPER,
    ),
    ("NVIDIA H200", 0x2335_10DE, NVML_DEVICE_ARCH_HOPPER),
    (
        "NVIDIA A100-SXM4-80GB",
        0x20B2_10DE,
        NVML_DEVICE_ARCH_AMPERE,
    ),
    ("NVIDIA L40S", 0x26B9_10DE, NVML_DEVICE_ARCH_ADA),
    ("NVIDIA GB200", 0x2941_10DE, NVML_DEVICE_ARCH_BLACKWELL),
    ("NVIDIA B400", 0x3F00_10DE, NVML_DEVICE_ARCH_BLACKWELL),
];

#[test]
fn every_fixture_initialises_with_its_device_count() {
    for (name, expected) in HOSTS {
        let nvml = Nvml::load(Some(&fixture(name)));
        let init = nvml.init();
        match expected {
            Ok(count) => {
                assert_eq!(init, 0, "{name}: init");
                assert_eq!(nvml.count(), Ok(count), "{name}: count");
                assert_eq!(
                    nvml.driver_version().map(|v| v.is_empty()),
                    Ok(false),
                    "{name}"
                );
            }
            Err(code) => assert_eq!(init, code, "{name}: init"),
        }
    }
}

#[test]
fn devices_have_nvml_names_catalogue_ids_and_unique_identities() {
    for (name, expected) in HOSTS {
        let Ok(count) = expected else { continue };
        let nvml = Nvml::started(&fixture(name));
        let (mut uuids, mut bus_ids) = (BTreeSet::new(), BTreeSet::new());
        for index in 0..count {
            let device = nvml.handle(index).unwrap();
            let uuid = match nvml.uuid(device) {
                Err(GPU_IS_LOST) => continue,
                other => other.unwrap(),
            };
            assert!(is_nvml_uuid(&uuid), "{name}[{index}]: {uuid}");
            let model = nvml.name(device).unwrap();
            let pci = nvml.pci(device).unwrap();
            let (_, device_id, architecture) = MODELS
                .iter()
                .find(|(known, _, _)| *known == model)
                .unwrap_or_else(|| panic!("{name}[{index}]: unexpected model {model}"));
            assert_eq!(pci.pciDeviceId, *device_id, "{name}[{index}]");
            assert_eq!(
                pci.pciSubSystemId & 0xFFFF,
                0x10DE,
                "{name}[{index}]: subsystem vendor"
            );
            assert_eq!(
                nvml.architecture(device),
                Ok(*architecture),
                "{name}[{index}]"
            );
            assert_eq!(nvml.index(device), Ok(index));
            // one-gpu-fails.json fails GPU 5's serial on purpose.
            if let Ok(serial) = nvml.serial(device) {
                assert_eq!(serial.len(), 13, "{name}[{index}]: {serial}");
            }
            assert!(uuids.insert(uuid), "{name}[{index}]: UUID repeated");
            assert!(
                bus_ids.insert(pci.busId),
                "{name}[{index}]: bus id repeated"
            );
        }
    }
}

#[test]
fn dgx_h100_is_the_catalogue_h100_sxm5_with_its_subsystem() {
    let nvml = Nvml::started(&fixture("dgx-h100.json"));
    for index in 0..8 {
        let pci = nvml.pci(nvml.handle(index).unwrap()).unwrap();
        assert_eq!(
            (pci.pciDeviceId, pci.pciSubSystemId),
            (0x2330_10DE, 0x16C1_10DE)
        );
    }
}

#[test]
fn the_committed_fixtures_are_the_scripts_output() {
    let _turn = crate::harness::turn();
    let script = fixtures_dir().join("make_fixtures.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg("--check")
        .output()
        .unwrap_or_else(|error| {
            panic!("python3 is required to check {}: {error}", script.display())
        });
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `GPU-` and 32 lowercase hex digits grouped 8-4-4-4-12.
fn is_nvml_uuid(text: &str) -> bool {
    let Some(hex) = text.strip_prefix("GPU-") else {
        return false;
    };
    let groups: Vec<_> = hex.split('-').collect();
    groups.iter().map(|group| group.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|group| {
            group
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        })
}
