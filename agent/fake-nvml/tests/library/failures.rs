//! Injected failures: per function, per device, at handle lookup, and after N queries.

use serde_json::json;

use crate::harness::{
    GPU_IS_LOST, NO_PERMISSION, NOT_SUPPORTED, Nvml, SUCCESS, Scratch, UNKNOWN, fixture,
    fixture_json,
};

#[test]
fn one_lost_gpu_and_one_unreadable_serial() {
    let nvml = Nvml::started(&fixture("one-gpu-fails.json"));
    assert_eq!(nvml.count(), Ok(8), "a lost GPU is still counted");

    let lost = nvml.handle(3).expect("handle lookup still succeeds");
    assert_eq!(nvml.uuid(lost), Err(GPU_IS_LOST));
    assert_eq!(nvml.serial(lost), Err(GPU_IS_LOST));
    assert_eq!(nvml.name(lost), Err(GPU_IS_LOST));
    assert_eq!(nvml.index(lost), Err(GPU_IS_LOST));
    assert_eq!(nvml.pci(lost).unwrap_err(), GPU_IS_LOST);
    assert_eq!(nvml.memory(lost).unwrap_err(), GPU_IS_LOST);
    assert_eq!(nvml.mig_mode(lost), Err(GPU_IS_LOST));
    assert_eq!(nvml.mig_handle(lost, 0), Err(GPU_IS_LOST));

    let flaky = nvml.handle(5).unwrap();
    assert_eq!(nvml.serial(flaky), Err(UNKNOWN));
    assert!(nvml.uuid(flaky).unwrap().starts_with("GPU-"));
    assert_eq!(nvml.name(flaky).unwrap(), "NVIDIA H100 80GB HBM3");

    for healthy in [0, 1, 2, 4, 6, 7] {
        let device = nvml.handle(healthy).unwrap();
        assert!(nvml.serial(device).is_ok(), "device {healthy}");
    }
}

#[test]
fn a_fail_entry_fails_only_its_function() {
    let mut host = fixture_json("dgx-h100.json");
    host["devices"][0]["fail"] = json!({
        "nvmlDeviceGetUUID": "GPU_IS_LOST",
        "nvmlDeviceGetMemoryInfo_v2": "NVML_ERROR_NO_PERMISSION",
        "nvmlDeviceGetMigDeviceHandleByIndex": "NOT_SUPPORTED",
    });
    let scratch = Scratch::new();
    let nvml = Nvml::started(&scratch.write_json("fail.json", &host));
    let device = nvml.handle(0).unwrap();
    assert_eq!(nvml.uuid(device), Err(GPU_IS_LOST));
    assert_eq!(nvml.memory(device).unwrap_err(), NO_PERMISSION);
    assert_eq!(
        nvml.memory_v1(device).unwrap().total,
        85_520_809_984,
        "v1 is another function"
    );
    assert_eq!(nvml.mig_handle(device, 0), Err(NOT_SUPPORTED));
    assert!(nvml.serial(device).is_ok());
    assert!(
        nvml.uuid(nvml.handle(1).unwrap()).is_ok(),
        "other devices are unaffected"
    );
}

#[test]
fn handle_error_fails_the_lookup_of_that_index_only() {
    let mut host = fixture_json("dgx-h100.json");
    host["devices"][2]["handle_error"] = json!("GPU_IS_LOST");
    let scratch = Scratch::new();
    let nvml = Nvml::started(&scratch.write_json("handle.json", &host));
    assert_eq!(nvml.count(), Ok(8));
    assert_eq!(nvml.handle(2), Err(GPU_IS_LOST));
    assert!(nvml.handle(1).is_ok() && nvml.handle(3).is_ok());
}

#[test]
fn a_device_is_lost_after_n_successful_queries() {
    let mut host = fixture_json("dgx-h100.json");
    host["devices"][0]["lost_after_queries"] = json!(3);
    host["devices"][0]["fail"] = json!({"nvmlDeviceGetSerial": "UNKNOWN"});
    host["devices"][0]
        .as_object_mut()
        .unwrap()
        .remove("vbios_version");
    let scratch = Scratch::new();
    let nvml = Nvml::started(&scratch.write_json("lost.json", &host));
    let device = nvml.handle(0).unwrap();

    // Failures and unsupported queries do not count; the handle lookup is no query.
    assert_eq!(nvml.serial(device), Err(UNKNOWN));
    assert_eq!(nvml.vbios_version(device), Err(NOT_SUPPORTED));
    assert!(nvml.uuid(device).is_ok());
    assert!(nvml.name(device).is_ok());
    assert!(nvml.handle(0).is_ok());
    assert!(nvml.pci(device).is_ok());

    assert_eq!(nvml.uuid(device), Err(GPU_IS_LOST));
    assert_eq!(nvml.name(device), Err(GPU_IS_LOST));
    assert_eq!(nvml.index(device), Err(GPU_IS_LOST));
    assert!(nvml.handle(0).is_ok(), "the handle is still handed out");
    assert!(
        nvml.uuid(nvml.handle(1).unwrap()).is_ok(),
        "other devices are unaffected"
    );

    // Counted across the process: a new session of the same fixture finds it still lost, even
    // after the library was closed (nvml-wrapper closes it when `Nvml` is dropped).
    assert_eq!(nvml.shutdown(), SUCCESS);
    assert_eq!(nvml.init(), SUCCESS);
    assert_eq!(nvml.uuid(nvml.handle(0).unwrap()), Err(GPU_IS_LOST));
    let path = path_of(nvml);
    let nvml = Nvml::started(&path);
    assert_eq!(nvml.uuid(nvml.handle(0).unwrap()), Err(GPU_IS_LOST));
}

/// Closes the library and gives back the fixture it was opened with.
fn path_of(nvml: Nvml) -> std::path::PathBuf {
    let path = std::env::var_os(veu_fake_nvml::FIXTURE_VAR).unwrap().into();
    drop(nvml);
    path
}

#[test]
fn init_error_names_any_nvml_error() {
    let scratch = Scratch::new();
    let path = scratch.write("denied.json", r#"{"init_error": "NO_PERMISSION"}"#);
    let nvml = Nvml::load(Some(&path));
    assert_eq!(nvml.init(), NO_PERMISSION);
    assert_eq!(nvml.init_with_flags(0), NO_PERMISSION);
    assert_eq!(nvml.count(), Err(crate::harness::UNINITIALIZED));
}
