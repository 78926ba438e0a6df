//! What a GPU source reports: one entry per physical device, with the queries that failed.

use proto_evidence::{EvidenceSource, GpuEvidence};

/// One failed query: the evidence model's record, carried unchanged into the attestation.
pub use proto_evidence::DeviceFault as Fault;

/// One physical accelerator as the source saw it. Fields whose query failed are empty and the
/// failure is listed in `faults`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawDevice {
    /// Enumeration index.
    pub index: u32,
    /// `GPU-…` UUID.
    pub uuid: String,
    /// Board serial number.
    pub serial: String,
    /// Board part number.
    pub board_part_number: String,
    /// Product name.
    pub name: String,
    /// PCI bus id.
    pub pci_bus_id: String,
    /// NVML's `(device << 16) | vendor`.
    pub pci_device_id: u32,
    /// NVML's `(subsystem device << 16) | subsystem vendor`.
    pub pci_subsystem_id: u32,
    /// Architecture name (`Hopper`).
    pub architecture: String,
    /// CUDA compute capability, `major.minor`.
    pub compute_capability: String,
    /// Total memory in bytes.
    pub memory_total_bytes: u64,
    /// Maximum SM clock in MHz.
    pub max_sm_clock_mhz: u32,
    /// MIG mode currently enabled.
    pub mig_enabled: bool,
    /// Active MIG instances (metadata: the device is still one device).
    pub mig_instances: u32,
    /// VBIOS version.
    pub vbios_version: String,
    /// Confidential-compute mode, where reported.
    pub confidential_compute: Option<bool>,
    /// Queries that failed.
    pub faults: Vec<Fault>,
}

/// Everything one enumeration saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawInventory {
    /// NVML's driver version ("" when the query failed).
    pub driver_version: String,
    /// Every physical device.
    pub devices: Vec<RawDevice>,
    /// Real NVML or a fake library driven by a fixture.
    pub source: EvidenceSource,
}

/// The source could not enumerate at all (no driver, no library).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// NVML cannot be used on this host.
    #[error("NVML not available: {0}")]
    Unavailable(String),
    /// The enumeration did not finish in time.
    #[error("NVML did not answer within {0} ms")]
    Timeout(u64),
}

/// Anything that can enumerate the host's accelerators. Implementations block; callers run
/// them off the async executor with a deadline.
pub trait GpuSource: Send + Sync {
    /// One full enumeration. A failing device is a fault entry, never an error here.
    fn enumerate(&self) -> Result<RawInventory, SourceError>;

    /// The attestation report the device at `index` signs over `nonce`, with its attestation
    /// certificate chain, or the fault that prevented it. Never an error: hardware evidence
    /// is per-device data, like any other fault. It may take seconds (the GPU signs).
    fn gpu_evidence(&self, index: u32, nonce: [u8; 32]) -> GpuEvidence;
}
