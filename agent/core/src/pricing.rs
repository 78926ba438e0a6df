//! Pricing an inventory: each device's catalogue entry and TPP, and the totals. A device the
//! catalogue does not know is reported as unknown and priced by the policy, never as zero.

use proto_accounting::catalogue::MatchedBy;
use proto_accounting::{Catalogue, PciId, Policy};
use proto_evidence::{DeviceRecord, GpuEvidence, Totals};

use crate::RawInventory;

/// One device with its price.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedDevice {
    /// The device as it goes into the attestation.
    pub record: DeviceRecord,
    /// How the catalogue recognised it; `None` when unknown.
    pub matched_by: Option<MatchedBy>,
    /// H100 equivalents, for display.
    pub h100e: f64,
    /// Whether the policy counts it as AI compute.
    pub counted: bool,
}

/// A priced inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedInventory {
    /// Every device, in enumeration order.
    pub devices: Vec<PricedDevice>,
    /// Sums for the attestation.
    pub totals: Totals,
    /// Total counted H100 equivalents, for display.
    pub h100e: f64,
}

impl PricedInventory {
    /// The device records that go into an attestation.
    pub fn records(&self) -> Vec<DeviceRecord> {
        self.devices.iter().map(|d| d.record.clone()).collect()
    }
}

/// Prices every device of `inventory`. Under a policy that rejects unknown devices they are
/// still reported (at the highest TPP in the catalogue, flagged unknown): the collector
/// refuses the evidence, the agent never hides what it saw.
pub fn price(inventory: &RawInventory, catalogue: &Catalogue, policy: &Policy) -> PricedInventory {
    let highest = catalogue.entries().iter().map(|a| a.tpp).max().unwrap_or(0);
    let devices: Vec<PricedDevice> = inventory
        .devices
        .iter()
        .map(|raw| {
            let pci = (raw.pci_device_id != 0)
                .then(|| PciId::from_nvml(raw.pci_device_id, raw.pci_subsystem_id));
            let identified = catalogue.identify(pci, &raw.name);
            let (catalogue_id, tpp, counted) = match identified {
                Some(found) => (
                    found.accelerator.id.clone(),
                    found.accelerator.tpp,
                    policy.counts(found.accelerator),
                ),
                None => {
                    let architecture =
                        (!raw.architecture.is_empty()).then_some(raw.architecture.as_str());
                    let tpp = policy
                        .unknown_device_tpp(catalogue, architecture)
                        .unwrap_or(highest);
                    (String::new(), tpp, true)
                }
            };
            // A device the policy does not count stays in the inventory at 0 counted TPP.
            let counted_tpp = if counted { tpp } else { 0 };
            PricedDevice {
                record: DeviceRecord {
                    index: raw.index,
                    uuid: raw.uuid.clone(),
                    serial: raw.serial.clone(),
                    board_part_number: raw.board_part_number.clone(),
                    name: raw.name.clone(),
                    pci_bus_id: raw.pci_bus_id.clone(),
                    pci_device_id: raw.pci_device_id,
                    pci_subsystem_id: raw.pci_subsystem_id,
                    architecture: raw.architecture.clone(),
                    catalogue_id,
                    tpp: counted_tpp,
                    unknown: identified.is_none(),
                    mig_enabled: raw.mig_enabled,
                    mig_instances: raw.mig_instances,
                    faults: raw.faults.clone(),
                    compute_capability: raw.compute_capability.clone(),
                    memory_total_bytes: raw.memory_total_bytes,
                    max_sm_clock_mhz: raw.max_sm_clock_mhz,
                    vbios_version: raw.vbios_version.clone(),
                    confidential_compute: raw.confidential_compute,
                    // Collected apart from the inventory, only when a challenge asks for it.
                    gpu_evidence: GpuEvidence::NotCollected,
                },
                matched_by: identified.map(|found| found.matched_by),
                h100e: policy.h100e(counted_tpp),
                counted,
            }
        })
        .collect();
    let records: Vec<DeviceRecord> = devices.iter().map(|d| d.record.clone()).collect();
    // Invariant: at most a few thousand devices of at most ~10^5 TPP each; the sums fit.
    let totals = Totals::of(&records).unwrap_or_default();
    PricedInventory {
        h100e: policy.h100e(totals.tpp),
        devices,
        totals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeGpuSource;
    use crate::GpuSource;

    fn rules() -> (Catalogue, Policy) {
        (
            Catalogue::builtin().unwrap(),
            Policy::uveu_2025_us().unwrap(),
        )
    }

    #[test]
    fn eight_h100_sxm_are_126720_tpp() {
        let (catalogue, policy) = rules();
        let inventory = FakeGpuSource::healthy(8).enumerate().unwrap();
        let priced = price(&inventory, &catalogue, &policy);
        assert_eq!(priced.totals.devices, 8);
        assert_eq!(priced.totals.tpp, 126_720);
        assert!((priced.h100e - 8.0).abs() < 1e-12);
        assert!(
            priced
                .devices
                .iter()
                .all(|d| d.matched_by == Some(MatchedBy::Pci))
        );
        assert!(
            priced
                .devices
                .iter()
                .all(|d| d.record.catalogue_id == "H100-SXM5-80GB")
        );
    }

    #[test]
    fn mig_instances_do_not_multiply_a_device() {
        let (catalogue, policy) = rules();
        let mut inventory = FakeGpuSource::healthy(1).enumerate().unwrap();
        inventory.devices[0].mig_enabled = true;
        inventory.devices[0].mig_instances = 7;
        let priced = price(&inventory, &catalogue, &policy);
        assert_eq!((priced.totals.devices, priced.totals.tpp), (1, 15840));
    }

    #[test]
    fn unknown_devices_are_priced_by_the_policy_never_zero() {
        let (catalogue, policy) = rules();
        let mut inventory = FakeGpuSource::healthy(2).enumerate().unwrap();
        inventory.devices[1].pci_device_id = 0x3f00_10de;
        inventory.devices[1].name = "NVIDIA B400".into();
        inventory.devices[1].architecture = "Blackwell".into();
        let priced = price(&inventory, &catalogue, &policy);
        let unknown = &priced.devices[1];
        assert!(unknown.record.unknown);
        assert_eq!(unknown.matched_by, None);
        let blackwell_max = catalogue
            .entries()
            .iter()
            .filter(|a| a.architecture == "Blackwell")
            .map(|a| a.tpp)
            .max()
            .unwrap();
        assert_eq!(unknown.record.tpp, blackwell_max);
        assert_eq!(priced.totals.unknown_devices, 1);
    }

    #[test]
    fn a_name_match_is_used_when_the_pci_id_is_missing() {
        let (catalogue, policy) = rules();
        let mut inventory = FakeGpuSource::healthy(1).enumerate().unwrap();
        inventory.devices[0].pci_device_id = 0;
        let priced = price(&inventory, &catalogue, &policy);
        assert_eq!(priced.devices[0].matched_by, Some(MatchedBy::Name));
        assert_eq!(priced.totals.tpp, 15840);
    }

    #[test]
    fn failing_devices_stay_in_the_inventory_with_their_faults() {
        let (catalogue, policy) = rules();
        let inventory = FakeGpuSource::with_failing_device(8, 3)
            .enumerate()
            .unwrap();
        let priced = price(&inventory, &catalogue, &policy);
        assert_eq!(priced.totals.devices, 8);
        assert_eq!(priced.totals.faulty_devices, 1);
        assert!(!priced.devices[3].record.faults.is_empty());
    }
}
