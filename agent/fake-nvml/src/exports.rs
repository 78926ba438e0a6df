//! The exported NVML functions, with the C signatures of `nvml-wrapper-sys` 0.10.
//!
//! Each function checks, in NVML's order: initialised (`UNINITIALIZED`), arguments (null
//! pointers are `INVALID_ARGUMENT`, unknown struct versions `ARGUMENT_VERSION_MISMATCH`), the
//! handle, the device's injected failures, then answers from the fixture (`NOT_SUPPORTED` where
//! the fixture leaves the value out).
//!
//! Safety contract of every `unsafe` function here, which is NVML's: each pointer argument is
//! null or valid for writes of its type (string buffers: of `length` bytes) for the duration of
//! the call, and versioned structs have their `version` set. Handles are never dereferenced.

use std::ffi::{CStr, c_char, c_int, c_uint};
use std::panic::{self, AssertUnwindSafe};

use nvml_wrapper_sys::bindings::*;

use crate::code::{
    self, ARGUMENT_VERSION_MISMATCH, INSUFFICIENT_SIZE, INVALID_ARGUMENT, NOT_FOUND, NOT_SUPPORTED,
    SUCCESS, UNKNOWN,
};
use crate::fixture::{Device, Query};
use crate::handle::Handle;
use crate::param::{InOut, Out, OutStr, ReportInOut};
use crate::state::{self, State};

/// `NVML_STRUCT_VERSION(Memory, 2)`, which `nvmlDeviceGetMemoryInfo_v2` callers set.
const MEMORY_V2_VERSION: c_uint = struct_version(size_of::<nvmlMemory_v2_t>(), 2);

/// `NVML_STRUCT_VERSION(SystemConfComputeSettings, 1)`.
const CONF_COMPUTE_SETTINGS_VERSION: c_uint =
    struct_version(size_of::<nvmlSystemConfComputeSettings_v1_t>(), 1);

#[unsafe(no_mangle)]
pub extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    call(State::init)
}

/// Flags (`NVML_INIT_FLAG_NO_GPUS`, `NO_ATTACH`) change nothing: a fixture without devices
/// initialises either way.
#[unsafe(no_mangle)]
pub extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> nvmlReturn_t {
    call(State::init)
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    call(State::shutdown)
}

/// Works initialised or not, as in NVML; the string is static.
#[unsafe(no_mangle)]
pub extern "C" fn nvmlErrorString(result: nvmlReturn_t) -> *const c_char {
    code::message(result).as_ptr()
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    call(|state| {
        let fixture = state.fixture()?;
        // SAFETY: the module's contract: `version` is null or valid for `length` bytes.
        let out = unsafe { OutStr::new(version, length) }?;
        out.set(fixture.driver_version.as_deref().ok_or(NOT_SUPPORTED)?)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion(version: *mut c_int) -> nvmlReturn_t {
    // SAFETY: the module's contract, passed on unchanged.
    unsafe { cuda_driver_version(version) }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion_v2(version: *mut c_int) -> nvmlReturn_t {
    // SAFETY: the module's contract, passed on unchanged.
    unsafe { cuda_driver_version(version) }
}

/// Re-reads the fixture first if its file changed, so devices come and go between calls.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(device_count: *mut c_uint) -> nvmlReturn_t {
    call(|state| {
        state.fixture()?;
        // SAFETY: the module's contract: `device_count` is null or valid for one write.
        let out = unsafe { Out::new(device_count) }?;
        state.refresh()?;
        let count = state.fixture()?.devices.len();
        out.set(c_uint::try_from(count).map_err(|_| UNKNOWN)?);
        Ok(())
    })
}

/// Not a query: `fail_all` and `lost_after_queries` leave it working; `handle_error` does not.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    call(|state| {
        let fixture = state.fixture()?;
        // SAFETY: the module's contract: `device` is null or valid for one write.
        let out = unsafe { Out::new(device) }?;
        let index = usize::try_from(index).map_err(|_| INVALID_ARGUMENT)?;
        let found = fixture.devices.get(index).ok_or(INVALID_ARGUMENT)?;
        if let Some(code) = found.handle_error {
            return Err(code);
        }
        out.set(Handle::device(index).ok_or(UNKNOWN)?);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetIndex(
    device: nvmlDevice_t,
    index: *mut c_uint,
) -> nvmlReturn_t {
    call(|state| {
        state.fixture()?;
        // SAFETY: the module's contract: `index` is null or valid for one write.
        let out = unsafe { Out::new(index) }?;
        state.query(device, Query::Index, |index, _| {
            out.set(c_uint::try_from(index).map_err(|_| UNKNOWN)?);
            Ok(())
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUUID(
    device: nvmlDevice_t,
    uuid: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: the module's contract, passed on unchanged.
    unsafe {
        device_string(device, Query::Uuid, uuid, length, |found| {
            found.uuid.as_deref()
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetSerial(
    device: nvmlDevice_t,
    serial: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: the module's contract, passed on unchanged.
    unsafe {
        device_string(device, Query::Serial, serial, length, |found| {
            found.serial.as_deref()
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetBoardPartNumber(
    device: nvmlDevice_t,
    part_number: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: the module's contract, passed on unchanged.
    unsafe {
        device_string(
            device,
            Query::BoardPartNumber,
            part_number,
            length,
            |found| found.board_part_number.as_deref(),
        )
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetName(
    device: nvmlDevice_t,
    name: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: the module's contract, passed on unchanged.
    unsafe {
        device_string(device, Query::Name, name, length, |found| {
            found.name.as_deref()
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetVbiosVersion(
    device: nvmlDevice_t,
    version: *mut c_char,
    length: c_uint,
) -> nvmlReturn_t {
    // SAFETY: the module's contract, passed on unchanged.
    unsafe {
        device_string(device, Query::VbiosVersion, version, length, |found| {
            found.vbios_version.as_deref()
        })
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetPciInfo_v3(
    device: nvmlDevice_t,
    pci: *mut nvmlPciInfo_t,
) -> nvmlReturn_t {
    call(|state| {
        state.fixture()?;
        // SAFETY: the module's contract: `pci` is null or valid for one write.
        let out = unsafe { Out::new(pci) }?;
        state.query(device, Query::PciInfo, |_, found| {
            let pci = found.pci.as_ref().ok_or(NOT_SUPPORTED)?;
            let mut info = nvmlPciInfo_t {
                busIdLegacy: [0; NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE as usize],
                domain: pci.domain,
                bus: pci.bus,
                device: pci.device,
                pciDeviceId: pci.device_id,
                pciSubSystemId: pci.subsystem_id,
                busId: [0; NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE as usize],
            };
            // NVML_DEVICE_PCI_BUS_ID_LEGACY_FMT: a 4-digit domain and function 0.
            let legacy = format!("{:04X}:{:02X}:{:02X}.0", pci.domain, pci.bus, pci.device);
            fill(&mut info.busIdLegacy, legacy.as_bytes());
            fill(&mut info.busId, pci.bus_id.as_bytes());
            out.set(info);
            Ok(())
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetArchitecture(
    device: nvmlDevice_t,
    architecture: *mut nvmlDeviceArchitecture_t,
) -> nvmlReturn_t {
    call(|state| {
        state.fixture()?;
        // SAFETY: the module's contract: `architecture` is null or valid for one write.
        let out = unsafe { Out::new(architecture) }?;
        state.query(device, Query::Architecture, |_, found| {
            out.set(found.architecture.ok_or(NOT_SUPPORTED)?);
            Ok(())
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCudaComputeCapability(
    device: nvmlDevice_t,
    major: *mut c_int,
    minor: *mut c_int,
) -> nvmlReturn_t {
    call(|state| {
        state.fixture()?;
        // SAFETY: the module's contract: `major` and `minor` are null or valid for one write.
        let (major, minor) = unsafe { (Out::new(major)?, Out::new(minor)?) };
        state.query(device, Query::CudaComputeCapability, |_, found| {
            let (found_major, found_minor) = found.compute_capability.ok_or(NOT_SUPPORTED)?;
            major.set(found_major);
            minor.set(found_minor);
            Ok(())
        })
    })
}

/// The v1 struct: total, free and used. The fixture's GPUs are idle: all memory is free.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo(
    device: nvmlDevice_t,
    memory: *mut nvmlMemory_t,
) -> nvmlReturn_t {
    call(|state| {
        state.fixture()?;
        // SAFETY: the module's contract: `memory` is null or valid for one write.
        let out = unsafe { Out::new(memory) }?;
        state.query(device, Query::MemoryInfo, |_, found| {
            let total = found.memory_total_bytes.ok_or(NOT_SUPPORTED)?;
            out.set(nvmlMemory_t {
                total,
                free: total,
                used: 0,
            });
            Ok(())
        })
    })
}

/// The v2 struct adds `reserved`; the caller must have set `version` to `nvmlMemory_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device: nvmlDevice_t,
    memory: *mut nvmlMemory_v2_t,
) -> nvmlReturn_t {
    call(|state| {
        state.fixture()?;
        // SAFETY: the module's contract: `memory` is null or writable with `version` set.
        let in_out = unsafe { InOut::new(memory) }?;
        let version = in_out.version();
        if version != MEMORY_V2_VERSION {
            return Err(ARGUMENT_VERSION_MISMATCH);
        }
        state.query(device, Query::MemoryInfoV2, |_, found| {
            let total = found.memory_total_bytes.ok_or(NOT_SUPPORTED)?;
            in_out.set(nvmlMemory_v2_t {
                version,
                total,
                reserved: 0,
                free: total,
                used: 0,
            });
            Ok(())
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMaxClockInfo(
    device: nvmlDevice_t,
    type_: nvmlClockType_t,
    clock: *mut c_uint,
) -> nvmlReturn_t {
    call(|state| {
        state.fixture()?;
        // SAFETY: the module's contract: `clock` is null or valid for one write.
        let out = unsafe { Out::new(clock) }?;
        let slot = usize::try_from(type_).map_err(|_| INVALID_ARGUMENT)?;
        state.query(device, Query::MaxClockInfo, |_, found| {
            let mhz = found.max_clocks_mhz.get(slot).ok_or(INVALID_ARGUMENT)?;
            out.set(mhz.ok_or(NOT_SUPPORTED)?);
            Ok(())
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigMode(
    device: nvmlDevice_t,
    current_mode: *mut c_uint,
    pending_mode: *mut c_uint,
) -> nvmlReturn_t {
    call(|state| {
        state.fixture()?;
        // SAFETY: the module's contract: both pointers are null or valid for one write.
        let (current, pending) = unsafe { (Out::new(current_mode)?, Out::new(pending_mode)?) };
        state.query(device, Query::MigMode, |_, found| {
            let mig = found.mig.ok_or(NOT_SUPPORTED)?;
            current.set(mig_mode(mig.current));
            pending.set(mig_mode(mig.pending));
            Ok(())
        })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMaxMigDeviceCount(
    device: nvmlDevice_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    call(|state| {
        state.fixture()?;
        // SAFETY: the module's contract: `count` is null or valid for one write.
        let out = unsafe { Out::new(count) }?;
        state.query(device, Query::MaxMigDeviceCount, |_, found| {
            out.set(found.mig.ok_or(NOT_SUPPORTED)?.max_instances);
            Ok(())
        })
    })
}

/// A handle for each active MIG instance (`index < instances`), `NOT_FOUND` for an empty slot.
/// The handle is not a full device: physical-device queries on it are `NOT_SUPPORTED`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigDeviceHandleByIndex(
    device: nvmlDevice_t,
    index: c_uint,
    mig_device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    call(|state| {
        state.fixture()?;
        // SAFETY: the module's contract: `mig_device` is null or valid for one write.
        let out = unsafe { Out::new(mig_device) }?;
        state.query(device, Query::MigDeviceHandleByIndex, |parent, found| {
            let mig = found.mig.ok_or(NOT_SUPPORTED)?;
            if index >= mig.instances {
                return Err(NOT_FOUND);
            }
            let instance = usize::try_from(index).map_err(|_| UNKNOWN)?;
            out.set(Handle::mig(parent, instance).ok_or(UNKNOWN)?);
            Ok(())
        })
    })
}

/// System-wide; `NOT_SUPPORTED` when the fixture does not say.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetConfComputeState(
    state: *mut nvmlConfComputeSystemState_t,
) -> nvmlReturn_t {
    call(|locked| {
        let fixture = locked.fixture()?;
        // SAFETY: the module's contract: `state` is null or valid for one write.
        let out = unsafe { Out::new(state) }?;
        let enabled = fixture.confidential_compute.ok_or(NOT_SUPPORTED)?;
        out.set(nvmlConfComputeSystemState_t {
            environment: conf_compute_environment(enabled),
            ccFeature: conf_compute_feature(enabled),
            devToolsMode: NVML_CC_SYSTEM_DEVTOOLS_MODE_OFF,
        });
        Ok(())
    })
}

/// System-wide; the caller must have set `version` to `nvmlSystemConfComputeSettings_v1`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetConfComputeSettings(
    settings: *mut nvmlSystemConfComputeSettings_t,
) -> nvmlReturn_t {
    call(|state| {
        let fixture = state.fixture()?;
        // SAFETY: the module's contract: `settings` is null or writable with `version` set.
        let in_out = unsafe { InOut::new(settings) }?;
        let version = in_out.version();
        if version != CONF_COMPUTE_SETTINGS_VERSION {
            return Err(ARGUMENT_VERSION_MISMATCH);
        }
        let enabled = fixture.confidential_compute.ok_or(NOT_SUPPORTED)?;
        in_out.set(nvmlSystemConfComputeSettings_t {
            version,
            environment: conf_compute_environment(enabled),
            ccFeature: conf_compute_feature(enabled),
            devToolsMode: NVML_CC_SYSTEM_DEVTOOLS_MODE_OFF,
            multiGpuMode: NVML_CC_SYSTEM_MULTIGPU_NONE,
        });
        Ok(())
    })
}

/// The report over the nonce the caller set in `report`, signed by the device's test key
/// (`gpu_evidence` in the fixture). As NVML: `NOT_SUPPORTED` unless the host's confidential
/// computing is on and the device can sign.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetConfComputeGpuAttestationReport(
    device: nvmlDevice_t,
    report: *mut nvmlConfComputeGpuAttestationReport_t,
) -> nvmlReturn_t {
    call(|state| {
        let fixture = state.fixture()?;
        let cc_on = fixture.confidential_compute == Some(true);
        let driver = fixture.driver_version.clone();
        // SAFETY: the module's contract: `report` is null or writable with `nonce` set.
        let in_out = unsafe { ReportInOut::new(report) }?;
        let nonce = in_out.nonce();
        state.query(
            device,
            Query::ConfComputeGpuAttestationReport,
            |_, found| {
                let attester = found.gpu_evidence.as_ref().filter(|_| cc_on);
                let signed = attester.ok_or(NOT_SUPPORTED)?.report(
                    &nonce,
                    driver.as_deref().and_then(|text| text.to_str().ok()),
                    found
                        .vbios_version
                        .as_deref()
                        .and_then(|text| text.to_str().ok()),
                )?;
                let mut answer = nvmlConfComputeGpuAttestationReport_t {
                    isCecAttestationReportPresent: 0,
                    attestationReportSize: 0,
                    cecAttestationReportSize: 0,
                    nonce,
                    attestationReport: [0; NVML_CC_GPU_ATTESTATION_REPORT_SIZE as usize],
                    cecAttestationReport: [0; NVML_CC_GPU_CEC_ATTESTATION_REPORT_SIZE as usize],
                };
                let slot = answer
                    .attestationReport
                    .get_mut(..signed.len())
                    .ok_or(INSUFFICIENT_SIZE)?;
                slot.copy_from_slice(&signed);
                answer.attestationReportSize =
                    c_uint::try_from(signed.len()).map_err(|_| UNKNOWN)?;
                in_out.set(&answer);
                Ok(())
            },
        )
    })
}

/// The device's attestation certificate chain from the fixture; the identity chain
/// (`certChain`) is left empty, as the agent does not read it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetConfComputeGpuCertificate(
    device: nvmlDevice_t,
    certificate: *mut nvmlConfComputeGpuCertificate_t,
) -> nvmlReturn_t {
    call(|state| {
        let cc_on = state.fixture()?.confidential_compute == Some(true);
        // SAFETY: the module's contract: `certificate` is null or valid for one write.
        let out = unsafe { Out::new(certificate) }?;
        state.query(device, Query::ConfComputeGpuCertificate, |_, found| {
            let attester = found.gpu_evidence.as_ref().filter(|_| cc_on);
            let chain = attester.ok_or(NOT_SUPPORTED)?.chain();
            let mut answer = nvmlConfComputeGpuCertificate_t {
                certChainSize: 0,
                attestationCertChainSize: c_uint::try_from(chain.len()).map_err(|_| UNKNOWN)?,
                certChain: [0; NVML_GPU_CERT_CHAIN_SIZE as usize],
                attestationCertChain: [0; NVML_GPU_ATTESTATION_CERT_CHAIN_SIZE as usize],
            };
            answer
                .attestationCertChain
                .get_mut(..chain.len())
                .ok_or(INSUFFICIENT_SIZE)?
                .copy_from_slice(chain);
            out.set(answer);
            Ok(())
        })
    })
}

/// Runs one call with the state locked, and never lets a panic unwind into C: a bug becomes
/// `NVML_ERROR_UNKNOWN`.
fn call(body: impl FnOnce(&mut State) -> Result<(), nvmlReturn_t>) -> nvmlReturn_t {
    match panic::catch_unwind(AssertUnwindSafe(|| state::with(body))) {
        Ok(Ok(())) => SUCCESS,
        Ok(Err(code)) => code,
        Err(_) => UNKNOWN,
    }
}

/// Both names of the CUDA driver version query: NVML answers them alike.
///
/// # Safety
///
/// `version` is null or valid for one write.
unsafe fn cuda_driver_version(version: *mut c_int) -> nvmlReturn_t {
    call(|state| {
        let fixture = state.fixture()?;
        // SAFETY: this function's contract.
        let out = unsafe { Out::new(version) }?;
        out.set(fixture.cuda_driver_version.ok_or(NOT_SUPPORTED)?);
        Ok(())
    })
}

/// A per-device string query.
///
/// # Safety
///
/// `buffer` is null or valid for writes of `length` bytes.
unsafe fn device_string(
    device: nvmlDevice_t,
    query: Query,
    buffer: *mut c_char,
    length: c_uint,
    field: fn(&Device) -> Option<&CStr>,
) -> nvmlReturn_t {
    call(|state| {
        state.fixture()?;
        // SAFETY: this function's contract.
        let out = unsafe { OutStr::new(buffer, length) }?;
        state.query(device, query, |_, found| {
            out.set(field(found).ok_or(NOT_SUPPORTED)?)
        })
    })
}

/// Copies `text` into a zeroed C array, keeping the last byte for the terminator.
fn fill(target: &mut [c_char], text: &[u8]) {
    let room = target.len().saturating_sub(1);
    for (slot, byte) in target.iter_mut().zip(text.iter().take(room)) {
        *slot = c_char::from_ne_bytes([*byte]);
    }
}

fn mig_mode(enabled: bool) -> c_uint {
    if enabled {
        NVML_DEVICE_MIG_ENABLE
    } else {
        NVML_DEVICE_MIG_DISABLE
    }
}

fn conf_compute_feature(enabled: bool) -> c_uint {
    if enabled {
        NVML_CC_SYSTEM_FEATURE_ENABLED
    } else {
        NVML_CC_SYSTEM_FEATURE_DISABLED
    }
}

fn conf_compute_environment(enabled: bool) -> c_uint {
    if enabled {
        NVML_CC_SYSTEM_ENVIRONMENT_PROD
    } else {
        NVML_CC_SYSTEM_ENVIRONMENT_UNAVAILABLE
    }
}

/// `NVML_STRUCT_VERSION`: the struct's size, with the version number in the top byte.
const fn struct_version(size: usize, version: u32) -> c_uint {
    size as u32 | version << 24
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles only if `ours` has exactly the type the bindings load `symbol` as.
    fn same<T>(_symbol: &Result<T, impl Sized>, _ours: T) {}

    /// Never called: type-checking it is the test.
    #[allow(dead_code, reason = "type-checked, not run")]
    fn signatures(lib: &NvmlLib) {
        same(&lib.nvmlInit_v2, nvmlInit_v2);
        same(&lib.nvmlInitWithFlags, nvmlInitWithFlags);
        same(&lib.nvmlShutdown, nvmlShutdown);
        same(&lib.nvmlErrorString, nvmlErrorString);
        same(&lib.nvmlSystemGetDriverVersion, nvmlSystemGetDriverVersion);
        same(
            &lib.nvmlSystemGetCudaDriverVersion,
            nvmlSystemGetCudaDriverVersion,
        );
        same(
            &lib.nvmlSystemGetCudaDriverVersion_v2,
            nvmlSystemGetCudaDriverVersion_v2,
        );
        same(&lib.nvmlDeviceGetCount_v2, nvmlDeviceGetCount_v2);
        same(
            &lib.nvmlDeviceGetHandleByIndex_v2,
            nvmlDeviceGetHandleByIndex_v2,
        );
        same(&lib.nvmlDeviceGetIndex, nvmlDeviceGetIndex);
        same(&lib.nvmlDeviceGetUUID, nvmlDeviceGetUUID);
        same(&lib.nvmlDeviceGetSerial, nvmlDeviceGetSerial);
        same(
            &lib.nvmlDeviceGetBoardPartNumber,
            nvmlDeviceGetBoardPartNumber,
        );
        same(&lib.nvmlDeviceGetName, nvmlDeviceGetName);
        same(&lib.nvmlDeviceGetVbiosVersion, nvmlDeviceGetVbiosVersion);
        same(&lib.nvmlDeviceGetPciInfo_v3, nvmlDeviceGetPciInfo_v3);
        same(&lib.nvmlDeviceGetArchitecture, nvmlDeviceGetArchitecture);
        same(
            &lib.nvmlDeviceGetCudaComputeCapability,
            nvmlDeviceGetCudaComputeCapability,
        );
        same(&lib.nvmlDeviceGetMemoryInfo, nvmlDeviceGetMemoryInfo);
        same(&lib.nvmlDeviceGetMemoryInfo_v2, nvmlDeviceGetMemoryInfo_v2);
        same(&lib.nvmlDeviceGetMaxClockInfo, nvmlDeviceGetMaxClockInfo);
        same(&lib.nvmlDeviceGetMigMode, nvmlDeviceGetMigMode);
        same(
            &lib.nvmlDeviceGetMaxMigDeviceCount,
            nvmlDeviceGetMaxMigDeviceCount,
        );
        same(
            &lib.nvmlDeviceGetMigDeviceHandleByIndex,
            nvmlDeviceGetMigDeviceHandleByIndex,
        );
        same(
            &lib.nvmlSystemGetConfComputeState,
            nvmlSystemGetConfComputeState,
        );
        same(
            &lib.nvmlSystemGetConfComputeSettings,
            nvmlSystemGetConfComputeSettings,
        );
        same(
            &lib.nvmlDeviceGetConfComputeGpuAttestationReport,
            nvmlDeviceGetConfComputeGpuAttestationReport,
        );
        same(
            &lib.nvmlDeviceGetConfComputeGpuCertificate,
            nvmlDeviceGetConfComputeGpuCertificate,
        );
    }

    #[test]
    fn struct_versions_match_nvml_h() {
        // nvml.h: nvmlMemory_v2 = NVML_STRUCT_VERSION(Memory, 2) on a 40-byte struct.
        assert_eq!(MEMORY_V2_VERSION, 0x0200_0028);
        assert_eq!(CONF_COMPUTE_SETTINGS_VERSION, 0x0100_0014);
    }

    #[test]
    fn fill_truncates_and_terminates() {
        let mut target = [1 as c_char; 4];
        target[3] = 0;
        fill(&mut target, b"abcdef");
        assert_eq!(target.map(|byte| byte.to_ne_bytes()[0]), *b"abc\0");
    }
}
