//! Fakes of `GpuSource` for tests of everything above NVML: `FakeGpuSource::healthy(8)`,
//! `::no_driver()`, `::device_lost_after(3)`, `::with_failing_device(8, 3)`.

use std::sync::Mutex;

use proto_evidence::EvidenceSource;

use crate::{Fault, GpuSource, RawDevice, RawInventory, SourceError};

/// A scripted GPU source. Its devices can be replaced while it is shared, to simulate devices
/// added, removed or failing.
#[derive(Debug)]
pub struct FakeGpuSource {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    devices: Vec<RawDevice>,
    unavailable: Option<String>,
    lose_device_after: Option<u32>,
    enumerations: u32,
}

impl FakeGpuSource {
    /// `count` healthy H100 SXM5 80GB devices.
    pub fn healthy(count: u32) -> Self {
        Self::from_devices((0..count).map(h100).collect())
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
            }),
        }
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
