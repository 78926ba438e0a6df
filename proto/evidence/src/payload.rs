//! The attestation payload: one signed statement of what NVML showed on a host.

use crate::{ChainDigest, GpuEvidence, HostId, KeyId, SiteId};

/// The payload layout this build writes and reads.
pub const PAYLOAD_FORMAT: u32 = 1;

/// Where an inventory came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvidenceSource {
    /// The real NVML library of a GPU host.
    Nvml,
    /// A fake NVML library driven by a fixture; never counts under a production policy.
    Simulated,
}

/// One attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationPayload {
    /// The signing key's id; must equal the envelope's.
    pub key_id: KeyId,
    /// The enrolled host.
    pub host_id: HostId,
    /// The enrolled site.
    pub site_id: SiteId,
    /// 1 for a key's first attestation, then +1 for each.
    pub sequence: u64,
    /// The previous attestation's chain digest; `ChainDigest::GENESIS` for sequence 1.
    pub previous_digest: ChainDigest,
    /// Milliseconds since the Unix epoch, UTC.
    pub issued_at_unix_ms: i64,
    /// The latest collector nonce the agent had; empty before the first challenge.
    pub collector_nonce: Vec<u8>,
    /// Every physical device, failing ones included.
    pub devices: Vec<DeviceRecord>,
    /// Sums over `devices`.
    pub totals: Totals,
    /// `sha256:<hex>` of the catalogue used to price devices.
    pub catalogue_digest: String,
    /// `sha256:<hex>` of the policy used to price unknown devices.
    pub policy_digest: String,
    /// The agent's version.
    pub agent_version: String,
    /// Real NVML or simulated.
    pub source: EvidenceSource,
    /// NVML's driver version.
    pub driver_version: String,
}

/// One physical accelerator as NVML showed it. MIG instances are metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceRecord {
    /// NVML index.
    pub index: u32,
    /// `GPU-…` UUID.
    pub uuid: String,
    /// Board serial number.
    pub serial: String,
    /// Board part number.
    pub board_part_number: String,
    /// NVML product name.
    pub name: String,
    /// PCI bus id, `00000000:18:00.0`.
    pub pci_bus_id: String,
    /// NVML's `(device << 16) | vendor`.
    pub pci_device_id: u32,
    /// NVML's `(subsystem device << 16) | subsystem vendor`.
    pub pci_subsystem_id: u32,
    /// Architecture name (`Hopper`).
    pub architecture: String,
    /// Catalogue id it resolved to; empty when unknown.
    pub catalogue_id: String,
    /// TPP counted for it.
    pub tpp: u64,
    /// True when the catalogue did not know it and the policy priced it.
    pub unknown: bool,
    /// MIG mode.
    pub mig_enabled: bool,
    /// MIG instances (metadata; never extra devices).
    pub mig_instances: u32,
    /// Queries that failed.
    pub faults: Vec<DeviceFault>,
    /// CUDA compute capability, `major.minor`.
    pub compute_capability: String,
    /// Total memory in bytes.
    pub memory_total_bytes: u64,
    /// Maximum SM clock in MHz.
    pub max_sm_clock_mhz: u32,
    /// VBIOS version.
    pub vbios_version: String,
    /// Confidential-compute mode, where the device reports it.
    pub confidential_compute: Option<bool>,
    /// The device's signed attestation report for this attestation's challenge, or why there
    /// is none; `NotCollected` unless the attestation answers a new collector nonce.
    pub gpu_evidence: GpuEvidence,
}

/// One failed query on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFault {
    /// The NVML function that failed, e.g. `nvmlDeviceGetSerial`.
    pub query: String,
    /// Its error.
    pub message: String,
}

impl DeviceFault {
    /// A fault for `query` with `message`.
    pub fn new(query: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            message: message.into(),
        }
    }
}

/// Sums over an attestation's devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Physical devices.
    pub devices: u32,
    /// Devices the catalogue did not know.
    pub unknown_devices: u32,
    /// Devices with at least one fault.
    pub faulty_devices: u32,
    /// Counted TPP.
    pub tpp: u64,
}

impl Totals {
    /// Totals of `devices`, or `None` when a count or the TPP sum overflows.
    pub fn of(devices: &[DeviceRecord]) -> Option<Self> {
        let count = |filter: fn(&DeviceRecord) -> bool| {
            u32::try_from(devices.iter().filter(|d| filter(d)).count()).ok()
        };
        Some(Self {
            devices: count(|_| true)?,
            unknown_devices: count(|d| d.unknown)?,
            faulty_devices: count(|d| !d.faults.is_empty())?,
            tpp: devices
                .iter()
                .try_fold(0u64, |sum, device| sum.checked_add(device.tpp))?,
        })
    }
}
