//! What a simulated host reports: an HGX H100 board of 8 GPUs, priced the way the collector
//! prices it, with GPU identities derived from a seed so that a second fleet can reuse them on
//! purpose (the collector must then report GPU conflicts).

use proto_accounting::{Catalogue, PciId, Policy};
use proto_evidence::DeviceRecord;

/// The policy a load generator must run against: it accepts simulated evidence.
pub const SIMULATED_POLICY_TOML: &str =
    include_str!("../../../deploy/policies/uveu-2025-us-simulated.toml");

/// GPUs per simulated host.
pub const GPUS_PER_HOST: usize = 8;

/// NVML's packed PCI ids of an H100 SXM5 80GB: `(device << 16) | vendor`.
const PCI_DEVICE_ID: u32 = 0x2330_10de;
/// NVML's packed subsystem id of the HGX H100 board.
const PCI_SUBSYSTEM_ID: u32 = 0x16c1_10de;
/// NVML's name of the H100 SXM5 80GB.
const NAME: &str = "NVIDIA H100 80GB HBM3";
/// The bus ids of the 8 GPUs of a real HGX H100 baseboard.
const BUS_IDS: [&str; GPUS_PER_HOST] = ["18", "2A", "3A", "5D", "9A", "AB", "BA", "DB"];

/// The board's devices could not be priced.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The built-in catalogue or the simulated policy did not load.
    #[error("cannot load the built-in {what}: {message}")]
    Rules {
        /// Which.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// The catalogue does not know the H100 SXM5 any more.
    #[error("the built-in catalogue does not identify {NAME} (pci 10de:2330)")]
    Unknown,
}

/// A host's 8-GPU board, priced once and cloned into every attestation.
#[derive(Debug, Clone)]
pub struct Board {
    /// The devices, identities included.
    pub devices: Vec<DeviceRecord>,
    /// `sha256:<hex>` of the catalogue they were priced with.
    pub catalogue_digest: String,
    /// `sha256:<hex>` of the policy they were priced under.
    pub policy_digest: String,
}

/// Prices the H100 board once; `board` then only stamps identities onto a copy.
#[derive(Debug, Clone)]
pub struct BoardTemplate {
    device: DeviceRecord,
    catalogue_digest: String,
    policy_digest: String,
}

impl BoardTemplate {
    /// The H100 board priced with the built-in catalogue under the simulated-evidence policy,
    /// exactly as the collector's admission will check it.
    pub fn h100() -> Result<Self, InventoryError> {
        let catalogue = Catalogue::builtin().map_err(|e| InventoryError::Rules {
            what: "catalogue",
            message: e.to_string(),
        })?;
        let policy =
            Policy::from_toml(SIMULATED_POLICY_TOML).map_err(|e| InventoryError::Rules {
                what: "simulated-evidence policy",
                message: e.to_string(),
            })?;
        let found = catalogue
            .identify(
                Some(PciId::from_nvml(PCI_DEVICE_ID, PCI_SUBSYSTEM_ID)),
                NAME,
            )
            .ok_or(InventoryError::Unknown)?;
        let accelerator = found.accelerator;
        let tpp = if policy.counts(accelerator) {
            accelerator.tpp
        } else {
            0
        };
        let device = DeviceRecord {
            index: 0,
            uuid: String::new(),
            serial: String::new(),
            board_part_number: "692-2G520-0200-000".into(),
            name: NAME.into(),
            pci_bus_id: String::new(),
            pci_device_id: PCI_DEVICE_ID,
            pci_subsystem_id: PCI_SUBSYSTEM_ID,
            architecture: accelerator.architecture.clone(),
            catalogue_id: accelerator.id.clone(),
            tpp,
            unknown: false,
            mig_enabled: false,
            mig_instances: 0,
            faults: Vec::new(),
            compute_capability: "9.0".into(),
            memory_total_bytes: 85_520_809_984,
            max_sm_clock_mhz: 1_980,
            vbios_version: "96.00.99.00.01".into(),
            confidential_compute: Some(false),
            ..DeviceRecord::default()
        };
        Ok(Self {
            device,
            catalogue_digest: catalogue.digest().to_string(),
            policy_digest: policy.digest().to_string(),
        })
    }

    /// The board of host `host` of the fleet with GPU identities from `gpu_seed`. Two fleets
    /// with the same seed report the same UUIDs and serials host for host.
    pub fn board(&self, gpu_seed: u64, host: usize) -> Board {
        let devices = BUS_IDS
            .iter()
            .zip(0u32..)
            .map(|(bus, index)| {
                let id = identity_bytes(gpu_seed, host, index);
                let hex = veu_daemon_kit::hex(&id);
                let serial = u64::from_be_bytes([
                    id[16], id[17], id[18], id[19], id[20], id[21], id[22], id[23],
                ]) % 10_000_000_000;
                DeviceRecord {
                    index,
                    uuid: format!(
                        "GPU-{}-{}-{}-{}-{}",
                        &hex[0..8],
                        &hex[8..12],
                        &hex[12..16],
                        &hex[16..20],
                        &hex[20..32]
                    ),
                    serial: format!("165{serial:010}"),
                    pci_bus_id: format!("00000000:{bus}:00.0"),
                    ..self.device.clone()
                }
            })
            .collect();
        Board {
            devices,
            catalogue_digest: self.catalogue_digest.clone(),
            policy_digest: self.policy_digest.clone(),
        }
    }
}

/// 32 bytes that name one GPU of the fleet: SHA-256 of the seed, host and device index.
fn identity_bytes(gpu_seed: u64, host: usize, device: u32) -> [u8; 32] {
    let mut input = Vec::with_capacity(32);
    input.extend_from_slice(b"veu-loadgen/gpu\0");
    input.extend_from_slice(&gpu_seed.to_be_bytes());
    input.extend_from_slice(&(host as u64).to_be_bytes());
    input.extend_from_slice(&device.to_be_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(digest.as_ref());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_is_eight_distinct_h100s_priced_by_the_catalogue() {
        let template = BoardTemplate::h100().unwrap();
        let board = template.board(7, 3);
        assert_eq!(board.devices.len(), GPUS_PER_HOST);
        let totals = proto_evidence::Totals::of(&board.devices).unwrap();
        assert_eq!((totals.devices, totals.tpp), (8, 8 * 15_840));
        assert!(
            board
                .devices
                .iter()
                .all(|d| d.catalogue_id == "H100-SXM5-80GB")
        );
        let uuids: std::collections::BTreeSet<_> =
            board.devices.iter().map(|d| d.uuid.clone()).collect();
        assert_eq!(uuids.len(), 8);
        assert!(board.devices[0].uuid.starts_with("GPU-") && board.devices[0].uuid.len() == 40);
    }

    #[test]
    fn identities_repeat_only_for_the_same_seed_and_host() {
        let template = BoardTemplate::h100().unwrap();
        let uuid = |seed, host| template.board(seed, host).devices[0].uuid.clone();
        assert_eq!(uuid(1, 0), uuid(1, 0));
        assert_ne!(uuid(1, 0), uuid(1, 1));
        assert_ne!(uuid(1, 0), uuid(2, 0));
    }
}
