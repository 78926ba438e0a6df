//! `NvmlSource`: the host's accelerators through NVML (nvml-wrapper), for every physical device,
//! with each failed query recorded as a fault instead of aborting the inventory.
//!
//! Invariant: the only crate that links nvml-wrapper. Calls block; callers run `enumerate` and
//! `gpu_evidence` off the async executor with a deadline.

use std::path::{Path, PathBuf};

use agent_core::{Fault, GpuSource, RawDevice, RawInventory, SourceError};
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::Clock;
use nvml_wrapper::error::NvmlError;
use proto_evidence::{EvidenceSource, GpuEvidence, GpuEvidenceFault};

mod evidence;

/// The library NVIDIA's driver installs; the dynamic loader finds it.
pub const SYSTEM_LIBRARY: &str = "libnvidia-ml.so.1";

/// Environment variable that drives the fake library.
pub const FAKE_FIXTURE_VAR: &str = "VEU_FAKE_NVML_FIXTURE";

/// NVML, initialised once and shared.
#[derive(Debug)]
pub struct NvmlSource {
    nvml: Nvml,
    source: EvidenceSource,
    library: PathBuf,
}

impl NvmlSource {
    /// Loads and initialises NVML from `library` (default: the system library).
    pub fn open(library: Option<&Path>) -> Result<Self, SourceError> {
        let library = library.map_or_else(|| PathBuf::from(SYSTEM_LIBRARY), Path::to_path_buf);
        let nvml = Nvml::builder()
            .lib_path(library.as_os_str())
            .init()
            .map_err(|error| SourceError::Unavailable(describe_init_error(&library, &error)))?;
        let source = if is_fake() {
            EvidenceSource::Simulated
        } else {
            EvidenceSource::Nvml
        };
        Ok(Self {
            nvml,
            source,
            library,
        })
    }

    /// The library path NVML was loaded from.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// Whether the evidence is real or simulated.
    pub fn evidence_source(&self) -> EvidenceSource {
        self.source
    }

    fn device(&self, index: u32) -> RawDevice {
        let mut raw = RawDevice {
            index,
            ..RawDevice::default()
        };
        let device = match self.nvml.device_by_index(index) {
            Ok(device) => device,
            Err(error) => {
                raw.faults.push(Fault::new(
                    "nvmlDeviceGetHandleByIndex_v2",
                    error.to_string(),
                ));
                return raw;
            }
        };
        let mut faults = Faults::default();
        raw.uuid = faults
            .read("nvmlDeviceGetUUID", device.uuid())
            .unwrap_or_default();
        raw.serial = faults
            .read("nvmlDeviceGetSerial", device.serial())
            .unwrap_or_default();
        raw.board_part_number = faults
            .read("nvmlDeviceGetBoardPartNumber", device.board_part_number())
            .unwrap_or_default();
        raw.name = faults
            .read("nvmlDeviceGetName", device.name())
            .unwrap_or_default();
        if let Some(pci) = faults.read("nvmlDeviceGetPciInfo_v3", device.pci_info()) {
            raw.pci_bus_id = pci.bus_id;
            raw.pci_device_id = pci.pci_device_id;
            raw.pci_subsystem_id = pci.pci_sub_system_id.unwrap_or(0);
        }
        raw.architecture = faults
            .read("nvmlDeviceGetArchitecture", device.architecture())
            .map(|arch| format!("{arch:?}"))
            .filter(|name| name != "Unknown")
            .unwrap_or_default();
        raw.compute_capability = faults
            .read(
                "nvmlDeviceGetCudaComputeCapability",
                device.cuda_compute_capability(),
            )
            .map(|cc| format!("{}.{}", cc.major, cc.minor))
            .unwrap_or_default();
        raw.memory_total_bytes = faults
            .read("nvmlDeviceGetMemoryInfo_v2", device.memory_info())
            .map_or(0, |memory| memory.total);
        raw.max_sm_clock_mhz = faults
            .read(
                "nvmlDeviceGetMaxClockInfo",
                device.max_clock_info(Clock::SM),
            )
            .unwrap_or(0);
        raw.vbios_version = faults
            .read("nvmlDeviceGetVbiosVersion", device.vbios_version())
            .unwrap_or_default();
        raw.confidential_compute =
            faults.read("nvmlSystemGetConfComputeSettings", device.is_cc_enabled());
        if let Some(mode) = faults.read("nvmlDeviceGetMigMode", device.mig_mode()) {
            raw.mig_enabled = mode.current == 1;
        }
        if raw.mig_enabled {
            // Count the active instances: slots up to the maximum that hold a MIG device.
            let slots = faults
                .read("nvmlDeviceGetMaxMigDeviceCount", device.mig_device_count())
                .unwrap_or(0);
            raw.mig_instances = (0..slots)
                .filter(|slot| device.mig_device_by_index(*slot).is_ok())
                .count() as u32;
        }
        raw.faults = faults.0;
        raw
    }
}

/// The faults of one device, collected query by query.
#[derive(Default)]
struct Faults(Vec<Fault>);

impl Faults {
    /// The value of a query, or `None` with the failure recorded. A capability the device lacks
    /// (no serial on a consumer board, no MIG) is not a fault; any other error is.
    fn read<T>(&mut self, query: &str, result: Result<T, NvmlError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(NvmlError::NotSupported) => None,
            Err(error) => {
                self.0.push(Fault::new(query, error.to_string()));
                None
            }
        }
    }
}

impl GpuSource for NvmlSource {
    fn enumerate(&self) -> Result<RawInventory, SourceError> {
        let count = self
            .nvml
            .device_count()
            .map_err(|error| SourceError::Unavailable(format!("nvmlDeviceGetCount_v2: {error}")))?;
        let driver_version = self.nvml.sys_driver_version().unwrap_or_default();
        Ok(RawInventory {
            driver_version,
            devices: (0..count).map(|index| self.device(index)).collect(),
            source: self.source,
        })
    }

    fn gpu_evidence(&self, index: u32, nonce: [u8; 32]) -> GpuEvidence {
        match self.nvml.device_by_index(index) {
            Ok(device) => evidence::collect(&device, nonce),
            Err(error) => GpuEvidence::unavailable(
                GpuEvidenceFault::NvmlError,
                format!("nvmlDeviceGetHandleByIndex_v2: {error}"),
            ),
        }
    }
}

fn describe_init_error(library: &Path, error: &NvmlError) -> String {
    match error {
        NvmlError::LibloadingError(inner) => format!(
            "cannot load {}: {inner} (install the NVIDIA driver, or give the library with --nvml-lib)",
            library.display()
        ),
        NvmlError::DriverNotLoaded => {
            format!(
                "{}: the NVIDIA kernel driver is not loaded",
                library.display()
            )
        }
        other => format!("{}: {other}", library.display()),
    }
}

/// True when the fake NVML library is in use: it cannot start without its fixture variable, so
/// the variable being set marks the evidence as simulated (never counted in production).
fn is_fake() -> bool {
    std::env::var_os(FAKE_FIXTURE_VAR).is_some()
}
