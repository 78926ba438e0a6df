//! Values come from the fixture, in the C layout nvml-wrapper reads; bad arguments are refused.

use std::ffi::c_char;
use std::ptr;

use nvml_wrapper_sys::bindings::*;

use crate::harness::{
    ARGUMENT_VERSION_MISMATCH, CONF_COMPUTE_SETTINGS_V1, INSUFFICIENT_SIZE, INVALID_ARGUMENT,
    MEMORY_V2, NOT_FOUND, NOT_SUPPORTED, Nvml, SUCCESS, Scratch, fixture, fixture_json, text,
};

#[test]
fn strings_come_from_the_fixture() {
    let nvml = Nvml::started(&fixture("dgx-h100.json"));
    let expected = fixture_json("dgx-h100.json");
    assert_eq!(nvml.driver_version().unwrap(), "550.90.07");
    assert_eq!(nvml.cuda_driver_version(), Ok((12040, 12040)));
    for index in 0..8 {
        let device = nvml.handle(index).unwrap();
        let json = &expected["devices"][index as usize];
        assert_eq!(nvml.uuid(device).unwrap(), json["uuid"].as_str().unwrap());
        assert_eq!(
            nvml.serial(device).unwrap(),
            json["serial"].as_str().unwrap()
        );
        assert_eq!(
            nvml.board_part_number(device).unwrap(),
            "692-2G520-0200-000"
        );
        assert_eq!(nvml.name(device).unwrap(), "NVIDIA H100 80GB HBM3");
        assert_eq!(nvml.vbios_version(device).unwrap(), "96.00.74.00.0D");
        assert_eq!(nvml.index(device), Ok(index));
    }
}

#[test]
fn pci_info_packs_ids_and_both_bus_id_forms() {
    let nvml = Nvml::started(&fixture("gb200-node.json"));
    let pci = nvml.pci(nvml.handle(1).unwrap()).unwrap();
    assert_eq!(text(&pci.busId), "00000009:01:00.0");
    assert_eq!(text(&pci.busIdLegacy), "0009:01:00.0");
    assert_eq!((pci.domain, pci.bus, pci.device), (9, 1, 0));
    assert_eq!(pci.pciDeviceId >> 16, 0x2941, "device id in the high half");
    assert_eq!(
        pci.pciDeviceId & 0xFFFF,
        0x10DE,
        "vendor id in the low half"
    );

    drop(nvml);
    let nvml = Nvml::started(&fixture("dgx-h100.json"));
    let pci = nvml.pci(nvml.handle(0).unwrap()).unwrap();
    assert_eq!(text(&pci.busId), "00000000:1B:00.0");
    assert_eq!(
        (pci.pciDeviceId, pci.pciSubSystemId),
        (0x2330_10DE, 0x16C1_10DE)
    );
}

#[test]
fn architecture_capability_memory_and_clocks() {
    let nvml = Nvml::started(&fixture("dgx-h100.json"));
    let device = nvml.handle(0).unwrap();
    assert_eq!(nvml.architecture(device), Ok(NVML_DEVICE_ARCH_HOPPER));
    assert_eq!(nvml.compute_capability(device), Ok((9, 0)));
    let memory = nvml.memory(device).unwrap();
    assert_eq!(memory.version, MEMORY_V2);
    assert_eq!(
        (memory.total, memory.free, memory.used),
        (85_520_809_984, 85_520_809_984, 0)
    );
    assert_eq!(nvml.memory_v1(device).unwrap().total, 85_520_809_984);
    assert_eq!(
        nvml.max_clock(device, nvmlClockType_enum_NVML_CLOCK_SM),
        Ok(1980)
    );
    assert_eq!(
        nvml.max_clock(device, nvmlClockType_enum_NVML_CLOCK_GRAPHICS),
        Ok(1980)
    );
    assert_eq!(
        nvml.max_clock(device, nvmlClockType_enum_NVML_CLOCK_MEM),
        Ok(2619)
    );
    assert_eq!(
        nvml.max_clock(device, nvmlClockType_enum_NVML_CLOCK_VIDEO),
        Ok(1545)
    );
    assert_eq!(
        nvml.max_clock(device, nvmlClockType_enum_NVML_CLOCK_COUNT),
        Err(INVALID_ARGUMENT)
    );

    drop(nvml);
    let nvml = Nvml::started(&fixture("l40s-x4.json"));
    let device = nvml.handle(3).unwrap();
    assert_eq!(nvml.architecture(device), Ok(NVML_DEVICE_ARCH_ADA));
    assert_eq!(nvml.compute_capability(device), Ok((8, 9)));
}

#[test]
fn memory_v2_requires_the_version_nvml_wrapper_sets() {
    let nvml = Nvml::started(&fixture("dgx-h100.json"));
    let device = nvml.handle(0).unwrap();
    assert_eq!(MEMORY_V2, 0x0200_0028);
    assert_eq!(
        nvml.memory_with_version(device, 0).unwrap_err(),
        ARGUMENT_VERSION_MISMATCH
    );
    let v1 = 0x0100_0000 | 24;
    assert_eq!(
        nvml.memory_with_version(device, v1).unwrap_err(),
        ARGUMENT_VERSION_MISMATCH
    );
}

#[test]
fn mig_instances_have_their_own_handles() {
    let nvml = Nvml::started(&fixture("h100-mig.json"));
    assert_eq!(nvml.count(), Ok(1), "MIG instances are not devices");
    let device = nvml.handle(0).unwrap();
    assert_eq!(
        nvml.mig_mode(device),
        Ok((NVML_DEVICE_MIG_ENABLE, NVML_DEVICE_MIG_ENABLE))
    );
    assert_eq!(nvml.max_mig_devices(device), Ok(7));
    let handles: Vec<_> = (0..7)
        .map(|index| nvml.mig_handle(device, index).unwrap())
        .collect();
    for (index, mig) in handles.iter().enumerate() {
        assert_ne!(*mig, device);
        assert!(
            handles[index + 1..].iter().all(|other| other != mig),
            "distinct handles"
        );
        // A MIG instance is not a full device.
        assert_eq!(nvml.name(*mig), Err(NOT_SUPPORTED));
        assert_eq!(nvml.mig_handle(*mig, 0), Err(NOT_SUPPORTED));
    }
    assert_eq!(nvml.mig_handle(device, 7), Err(NOT_FOUND));
    assert_eq!(nvml.mig_handle(device, 1000), Err(NOT_FOUND));
}

#[test]
fn mig_disabled_has_no_instances_and_ada_has_no_mig() {
    let nvml = Nvml::started(&fixture("dgx-h100.json"));
    let device = nvml.handle(0).unwrap();
    assert_eq!(
        nvml.mig_mode(device),
        Ok((NVML_DEVICE_MIG_DISABLE, NVML_DEVICE_MIG_DISABLE))
    );
    assert_eq!(nvml.max_mig_devices(device), Ok(7));
    assert_eq!(nvml.mig_handle(device, 0), Err(NOT_FOUND));

    drop(nvml);
    let nvml = Nvml::started(&fixture("l40s-x4.json"));
    let device = nvml.handle(0).unwrap();
    assert_eq!(nvml.mig_mode(device), Err(NOT_SUPPORTED));
    assert_eq!(nvml.max_mig_devices(device), Err(NOT_SUPPORTED));
    assert_eq!(nvml.mig_handle(device, 0), Err(NOT_SUPPORTED));
}

#[test]
fn confidential_compute_follows_the_fixture() {
    let nvml = Nvml::started(&fixture("gb200-node.json"));
    let settings = nvml
        .conf_compute_settings(CONF_COMPUTE_SETTINGS_V1)
        .unwrap();
    assert_eq!(settings.ccFeature, NVML_CC_SYSTEM_FEATURE_ENABLED);
    assert_eq!(settings.environment, NVML_CC_SYSTEM_ENVIRONMENT_PROD);
    assert_eq!(settings.version, CONF_COMPUTE_SETTINGS_V1);
    assert_eq!(
        nvml.conf_compute_state().unwrap().ccFeature,
        NVML_CC_SYSTEM_FEATURE_ENABLED
    );
    assert_eq!(
        nvml.conf_compute_settings(1).unwrap_err(),
        ARGUMENT_VERSION_MISMATCH
    );

    drop(nvml);
    let nvml = Nvml::started(&fixture("dgx-h100.json"));
    let settings = nvml
        .conf_compute_settings(CONF_COMPUTE_SETTINGS_V1)
        .unwrap();
    assert_eq!(settings.ccFeature, NVML_CC_SYSTEM_FEATURE_DISABLED);
    assert_eq!(
        nvml.conf_compute_state().unwrap().ccFeature,
        NVML_CC_SYSTEM_FEATURE_DISABLED
    );

    drop(nvml);
    let nvml = Nvml::started(&fixture("a100x8.json"));
    let missing = nvml.conf_compute_settings(CONF_COMPUTE_SETTINGS_V1);
    assert_eq!(missing.unwrap_err(), NOT_SUPPORTED);
    assert_eq!(nvml.conf_compute_state().unwrap_err(), NOT_SUPPORTED);
}

#[test]
fn missing_optional_fields_are_not_supported() {
    let scratch = Scratch::new();
    let path = scratch.write("bare.json", r#"{"devices": [{}]}"#);
    let nvml = Nvml::started(&path);
    assert_eq!(nvml.driver_version(), Err(NOT_SUPPORTED));
    assert_eq!(nvml.cuda_driver_version(), Err(NOT_SUPPORTED));
    let device = nvml.handle(0).unwrap();
    assert_eq!(nvml.uuid(device), Err(NOT_SUPPORTED));
    assert_eq!(nvml.serial(device), Err(NOT_SUPPORTED));
    assert_eq!(nvml.board_part_number(device), Err(NOT_SUPPORTED));
    assert_eq!(nvml.name(device), Err(NOT_SUPPORTED));
    assert_eq!(nvml.vbios_version(device), Err(NOT_SUPPORTED));
    assert_eq!(nvml.pci(device).unwrap_err(), NOT_SUPPORTED);
    assert_eq!(nvml.architecture(device), Err(NOT_SUPPORTED));
    assert_eq!(nvml.compute_capability(device), Err(NOT_SUPPORTED));
    assert_eq!(nvml.memory(device).unwrap_err(), NOT_SUPPORTED);
    assert_eq!(
        nvml.max_clock(device, nvmlClockType_enum_NVML_CLOCK_SM),
        Err(NOT_SUPPORTED)
    );
    assert_eq!(nvml.mig_mode(device), Err(NOT_SUPPORTED));
    assert_eq!(nvml.index(device), Ok(0), "the index always exists");
}

#[test]
fn small_buffers_are_insufficient_size_and_exact_ones_fit() {
    let nvml = Nvml::started(&fixture("dgx-h100.json"));
    let device = nvml.handle(0).unwrap();
    let name = "NVIDIA H100 80GB HBM3";
    let exact = name.len() as u32 + 1;
    let symbol = &nvml.lib().nvmlDeviceGetName;
    assert_eq!(nvml.string(symbol, device, exact).unwrap(), name);
    assert_eq!(
        nvml.string(symbol, device, exact - 1),
        Err(INSUFFICIENT_SIZE)
    );
    assert_eq!(nvml.string(symbol, device, 0), Err(INSUFFICIENT_SIZE));
    let symbol = &nvml.lib().nvmlDeviceGetUUID;
    let uuid = nvml.string(symbol, device, 41).unwrap();
    assert_eq!(
        uuid.len(),
        40,
        "GPU- and 36 characters, with the NUL in 41 bytes"
    );
    assert_eq!(nvml.string(symbol, device, 40), Err(INSUFFICIENT_SIZE));
    let mut short = [0x55 as c_char; 4];
    // SAFETY: the buffer holds the 4 bytes passed.
    let code = unsafe { nvml.lib().nvmlSystemGetDriverVersion(short.as_mut_ptr(), 4) };
    assert_eq!(code, INSUFFICIENT_SIZE);
    assert!(short.iter().all(|&byte| byte == 0x55), "nothing written");
}

#[test]
fn null_pointers_and_foreign_handles_are_invalid_arguments() {
    let nvml = Nvml::started(&fixture("dgx-h100.json"));
    let lib = nvml.lib();
    let device = nvml.handle(0).unwrap();
    // SAFETY: null out-pointers are the point of the test; the library must not write them.
    unsafe {
        assert_eq!(lib.nvmlDeviceGetCount_v2(ptr::null_mut()), INVALID_ARGUMENT);
        assert_eq!(
            lib.nvmlDeviceGetHandleByIndex_v2(0, ptr::null_mut()),
            INVALID_ARGUMENT
        );
        assert_eq!(
            lib.nvmlDeviceGetUUID(device, ptr::null_mut(), 96),
            INVALID_ARGUMENT
        );
        assert_eq!(
            lib.nvmlDeviceGetPciInfo_v3(device, ptr::null_mut()),
            INVALID_ARGUMENT
        );
        assert_eq!(
            lib.nvmlDeviceGetMemoryInfo_v2(device, ptr::null_mut()),
            INVALID_ARGUMENT
        );
        let mut major = 0;
        let code = lib.nvmlDeviceGetCudaComputeCapability(device, &mut major, ptr::null_mut());
        assert_eq!(code, INVALID_ARGUMENT);
        assert_eq!(
            lib.nvmlSystemGetCudaDriverVersion_v2(ptr::null_mut()),
            INVALID_ARGUMENT
        );
        assert_eq!(
            lib.nvmlSystemGetConfComputeSettings(ptr::null_mut()),
            INVALID_ARGUMENT
        );
    }
    assert_eq!(
        nvml.handle(8),
        Err(INVALID_ARGUMENT),
        "index past the last device"
    );
    assert_eq!(nvml.name(ptr::null_mut()), Err(INVALID_ARGUMENT));
    let mut not_a_handle = 0_u64;
    let foreign: nvmlDevice_t = ptr::from_mut(&mut not_a_handle).cast();
    assert_eq!(nvml.name(foreign), Err(INVALID_ARGUMENT));
    assert_eq!(not_a_handle, 0, "never dereferenced");
}

#[test]
fn error_strings_are_nvidias() {
    let nvml = Nvml::load(None);
    assert_eq!(nvml.error_string(SUCCESS), "Success");
    assert_eq!(
        nvml.error_string(nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST),
        "GPU is lost"
    );
    assert_eq!(nvml.error_string(NOT_SUPPORTED), "Not Supported");
    assert_eq!(nvml.error_string(NOT_FOUND), "Not Found");
    assert_eq!(
        nvml.error_string(nvmlReturn_enum_NVML_ERROR_UNKNOWN),
        "Unknown Error"
    );
    assert_eq!(
        nvml.error_string(nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED),
        "Driver Not Loaded"
    );
    assert_eq!(nvml.error_string(4242), "Unknown Error");
}
