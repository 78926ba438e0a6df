//! Fakes of `GpuSource` for tests of everything above NVML: `FakeGpuSource::healthy(8)`,
//! `::confidential(8)`, `::no_driver()`, `::device_lost_after(3)`, `::with_failing_device(8, 3)`;
//! `set_evidence` scripts a device's hardware evidence (a fault, a hang, a panic).

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

use proto_evidence::{EvidenceSource, GpuEvidence, GpuEvidenceFault};

use crate::{Fault, GpuSource, RawDevice, RawInventory, SourceError};

/// A scripted GPU source. Its devices can be replaced while it is shared, to simulate devices
/// added, removed or failing.
#[derive(Debug)]
pub struct FakeGpuSource {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug)]
struct State {
    devices: Vec<RawDevice>,
    unavailable: Option<String>,
    lose_device_after: Option<u32>,
    enumerations: u32,
    evidence: HashMap<u32, FakeEvidence>,
    requests: Vec<(u32, [u8; 32])>,
    hanging: bool,
    released: bool,
}

/// How a fake device answers a request for hardware evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeEvidence {
    /// The default: with confidential computing on, `FakeGpuSource::report_for(nonce)` and
    /// `FakeGpuSource::CHAIN`; otherwise `ConfidentialComputeOff`.
    ByMode,
    /// This fault.
    Fault(GpuEvidenceFault, String),
    /// Blocks the calling thread until `release` (a GPU that never answers).
    Hang,
    /// Panics (a bug below the port).
    Panic,
}

impl FakeGpuSource {
    /// `count` healthy H100 SXM5 80GB devices.
    pub fn healthy(count: u32) -> Self {
        Self::from_devices((0..count).map(h100).collect())
    }

    /// `count` healthy H100s in confidential-computing mode: each signs a fake report.
    pub fn confidential(count: u32) -> Self {
        Self::from_devices(
            (0..count)
                .map(|index| RawDevice {
                    confidential_compute: Some(true),
                    ..h100(index)
                })
                .collect(),
        )
    }

    /// A host whose driver is not loaded: every enumeration fails.
    pub fn no_driver() -> Self {
        let source = Self::from_devices(Vec::new());
        source.lock().unavailable = Some("Driver Not Loaded".into());
        source
    }

    /// Eight healthy devices for `enumerations` enumerations, then device 0 falls off the bus.
    pub fn device_lost_after(enumerations: u32) -> Self {
        let source = Self::healthy(8);
        source.lock().lose_device_after = Some(enumerations);
        source
    }

    /// `count` devices where device `failing` answers no query at all.
    pub fn with_failing_device(count: u32, failing: u32) -> Self {
        let devices = (0..count)
            .map(|index| {
                if index == failing {
                    lost(index)
                } else {
                    h100(index)
                }
            })
            .collect();
        Self::from_devices(devices)
    }

    /// Exactly these devices.
    pub fn from_devices(devices: Vec<RawDevice>) -> Self {
        Self {
            state: Mutex::new(State {
                devices,
                unavailable: None,
                lose_device_after: None,
                enumerations: 0,
                evidence: HashMap::new(),
                requests: Vec::new(),
                hanging: false,
                released: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// The certificate chain every fake report comes with.
    pub const CHAIN: &'static [u8] = b"fake attestation certificate chain";

    /// The fake report a device in confidential-computing mode signs over `nonce`: a fixed
    /// prefix, then the nonce, so tests can see which nonce was signed.
    pub fn report_for(nonce: [u8; 32]) -> Vec<u8> {
        [b"fake attestation report over ".as_slice(), &nonce].concat()
    }

    /// How the device at `index` answers evidence requests from now on.
    pub fn set_evidence(&self, index: u32, evidence: FakeEvidence) {
        self.lock().evidence.insert(index, evidence);
    }

    /// Every evidence request so far: device index and nonce, in order.
    pub fn evidence_requests(&self) -> Vec<(u32, [u8; 32])> {
        self.lock().requests.clone()
    }

    /// Blocks until a `Hang` device has been asked for evidence.
    pub fn wait_until_hanging(&self) {
        let mut state = self.lock();
        while !state.hanging {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Lets every hanging device return (with a `Timeout` fault nobody waits for any more).
    pub fn release(&self) {
        self.lock().released = true;
        self.changed.notify_all();
    }

    /// Replaces the devices (a device added, removed or swapped).
    pub fn set_devices(&self, devices: Vec<RawDevice>) {
        self.lock().devices = devices;
    }

    /// How many enumerations were made.
    pub fn enumerations(&self) -> u32 {
        self.lock().enumerations
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock can only come from a failing test; keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl GpuSource for FakeGpuSource {
    fn enumerate(&self) -> Result<RawInventory, SourceError> {
        let mut state = self.lock();
        state.enumerations += 1;
        if let Some(reason) = &state.unavailable {
            return Err(SourceError::Unavailable(reason.clone()));
        }
        if state
            .lose_device_after
            .is_some_and(|after| state.enumerations > after)
            && let Some(first) = state.devices.first_mut()
        {
            *first = lost(first.index);
        }
        Ok(RawInventory {
            driver_version: "550.90.07".into(),
            devices: state.devices.clone(),
            source: EvidenceSource::Simulated,
        })
    }

    fn gpu_evidence(&self, index: u32, nonce: [u8; 32]) -> GpuEvidence {
        let mut state = self.lock();
        state.requests.push((index, nonce));
        let behaviour = state
            .evidence
            .get(&index)
            .cloned()
            .unwrap_or(FakeEvidence::ByMode);
        match behaviour {
            FakeEvidence::ByMode => {
                let device = state.devices.iter().find(|d| d.index == index);
                match device.map(|d| d.confidential_compute) {
                    None => GpuEvidence::unavailable(
                        GpuEvidenceFault::NvmlError,
                        "Invalid Argument: no device at this index",
                    ),
                    Some(Some(true)) => {
                        GpuEvidence::from_source(Self::report_for(nonce), Self::CHAIN.to_vec())
                    }
                    Some(_) => GpuEvidence::unavailable(
                        GpuEvidenceFault::ConfidentialComputeOff,
                        "confidential computing is off on this GPU",
                    ),
                }
            }
            FakeEvidence::Fault(fault, message) => GpuEvidence::unavailable(fault, message),
            FakeEvidence::Hang => {
                state.hanging = true;
                self.changed.notify_all();
                while !state.released {
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                GpuEvidence::unavailable(GpuEvidenceFault::Timeout, "released")
            }
            FakeEvidence::Panic => {
                drop(state);
                #[allow(clippy::panic)] // The fake's purpose: a panic below the port.
                {
                    panic!("fake NVML panicked for device {index}")
                }
            }
        }
    }
}

/// A healthy H100 SXM5 80GB at `index`.
pub fn h100(index: u32) -> RawDevice {
    RawDevice {
        index,
        uuid: format!("GPU-f00dcafe-0000-4000-8000-{index:012x}"),
        serial: format!("16532200{index:05}"),
        board_part_number: "692-2G520-0200-000".into(),
        name: "NVIDIA H100 80GB HBM3".into(),
        pci_bus_id: format!("00000000:{:02X}:00.0", 0x18 + index * 0x10),
        pci_device_id: 0x2330_10de,
        pci_subsystem_id: 0x16c1_10de,
        architecture: "Hopper".into(),
        compute_capability: "9.0".into(),
        memory_total_bytes: 85_520_809_984,
        max_sm_clock_mhz: 1980,
        mig_enabled: false,
        mig_instances: 0,
        vbios_version: "96.00.74.00.0D".into(),
        confidential_compute: Some(false),
        faults: Vec::new(),
    }
}

/// A device at `index` that answers no query: GPU lost.
pub fn lost(index: u32) -> RawDevice {
    RawDevice {
        index,
        faults: vec![Fault::new("nvmlDeviceGetUUID", "GPU is lost")],
        ..RawDevice::default()
    }
}
