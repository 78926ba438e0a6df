//! The JSON fixture that describes a host: `RawFixture` as written, `Fixture` once checked.
//!
//! Every string is checked against the buffer NVML documents for it, every error name, hex id and
//! architecture is resolved here, so the exported functions only copy values out.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt::Display;
use std::path::Path;

use nvml_wrapper_sys::bindings::*;
use serde::Deserialize;

use crate::attester::{Attester, RawAttester};
use crate::code;

/// Most devices a fixture may hold: MIG handles keep the parent's index in 8 bits.
const MAX_DEVICES: usize = 0x100;

/// Most MIG instances a device may hold: MIG handles keep the instance in 8 bits.
const MAX_MIG_INSTANCES: u32 = 0x100;

/// A checked fixture: what the exported functions answer from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fixture {
    pub(crate) driver_version: Option<CString>,
    pub(crate) cuda_driver_version: Option<i32>,
    /// The code `nvmlInit_v2` fails with, to simulate a host without a usable driver.
    pub(crate) init_error: Option<nvmlReturn_t>,
    /// Confidential-compute mode; `None` when the host cannot report it.
    pub(crate) confidential_compute: Option<bool>,
    pub(crate) devices: Vec<Device>,
}

/// One physical GPU. `None` makes the matching query return `NVML_ERROR_NOT_SUPPORTED`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Device {
    pub(crate) uuid: Option<CString>,
    pub(crate) serial: Option<CString>,
    pub(crate) board_part_number: Option<CString>,
    pub(crate) name: Option<CString>,
    pub(crate) pci: Option<Pci>,
    pub(crate) architecture: Option<nvmlDeviceArchitecture_t>,
    pub(crate) compute_capability: Option<(i32, i32)>,
    pub(crate) memory_total_bytes: Option<u64>,
    /// Maximum clocks in MHz, indexed by `nvmlClockType_t` (graphics, SM, memory, video).
    pub(crate) max_clocks_mhz: [Option<u32>; 4],
    pub(crate) vbios_version: Option<CString>,
    pub(crate) mig: Option<Mig>,
    /// Queries that fail on this device, with their code.
    pub(crate) fail: BTreeMap<Query, nvmlReturn_t>,
    /// A code every query on this device fails with (handle lookup still succeeds).
    pub(crate) fail_all: Option<nvmlReturn_t>,
    /// A code `nvmlDeviceGetHandleByIndex_v2` fails with for this device.
    pub(crate) handle_error: Option<nvmlReturn_t>,
    /// Successful queries after which every query fails with `NVML_ERROR_GPU_IS_LOST`.
    pub(crate) lost_after_queries: Option<u64>,
    /// The key that signs attestation reports; `None`: the report queries are not supported.
    pub(crate) gpu_evidence: Option<Attester>,
}

/// PCI identity, as `nvmlPciInfo_t` holds it.
#[derive(Debug, Clone)]
pub(crate) struct Pci {
    pub(crate) bus_id: CString,
    pub(crate) domain: u32,
    pub(crate) bus: u32,
    pub(crate) device: u32,
    /// `(PCI device id << 16) | vendor id`.
    pub(crate) device_id: u32,
    /// `(subsystem device id << 16) | subsystem vendor id`.
    pub(crate) subsystem_id: u32,
}

/// Multi-instance GPU state of one physical device.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mig {
    pub(crate) current: bool,
    pub(crate) pending: bool,
    pub(crate) max_instances: u32,
    /// Active instances; `nvmlDeviceGetMigDeviceHandleByIndex` succeeds below this index.
    pub(crate) instances: u32,
}

/// The per-device NVML functions, which `fail` entries name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Query {
    Index,
    Uuid,
    Serial,
    BoardPartNumber,
    Name,
    PciInfo,
    Architecture,
    CudaComputeCapability,
    MemoryInfo,
    MemoryInfoV2,
    MaxClockInfo,
    MigMode,
    MaxMigDeviceCount,
    MigDeviceHandleByIndex,
    VbiosVersion,
    ConfComputeGpuAttestationReport,
    ConfComputeGpuCertificate,
}

impl Query {
    const ALL: [Self; 17] = [
        Self::Index,
        Self::Uuid,
        Self::Serial,
        Self::BoardPartNumber,
        Self::Name,
        Self::PciInfo,
        Self::Architecture,
        Self::CudaComputeCapability,
        Self::MemoryInfo,
        Self::MemoryInfoV2,
        Self::MaxClockInfo,
        Self::MigMode,
        Self::MaxMigDeviceCount,
        Self::MigDeviceHandleByIndex,
        Self::VbiosVersion,
        Self::ConfComputeGpuAttestationReport,
        Self::ConfComputeGpuCertificate,
    ];

    /// The exported function's name.
    pub(crate) fn function(self) -> &'static str {
        match self {
            Self::Index => "nvmlDeviceGetIndex",
            Self::Uuid => "nvmlDeviceGetUUID",
            Self::Serial => "nvmlDeviceGetSerial",
            Self::BoardPartNumber => "nvmlDeviceGetBoardPartNumber",
            Self::Name => "nvmlDeviceGetName",
            Self::PciInfo => "nvmlDeviceGetPciInfo_v3",
            Self::Architecture => "nvmlDeviceGetArchitecture",
            Self::CudaComputeCapability => "nvmlDeviceGetCudaComputeCapability",
            Self::MemoryInfo => "nvmlDeviceGetMemoryInfo",
            Self::MemoryInfoV2 => "nvmlDeviceGetMemoryInfo_v2",
            Self::MaxClockInfo => "nvmlDeviceGetMaxClockInfo",
            Self::MigMode => "nvmlDeviceGetMigMode",
            Self::MaxMigDeviceCount => "nvmlDeviceGetMaxMigDeviceCount",
            Self::MigDeviceHandleByIndex => "nvmlDeviceGetMigDeviceHandleByIndex",
            Self::VbiosVersion => "nvmlDeviceGetVbiosVersion",
            Self::ConfComputeGpuAttestationReport => "nvmlDeviceGetConfComputeGpuAttestationReport",
            Self::ConfComputeGpuCertificate => "nvmlDeviceGetConfComputeGpuCertificate",
        }
    }

    fn from_function(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|query| query.function() == name)
    }
}

impl Device {
    /// What identifies this device across re-reads of the fixture: its UUID, else its index.
    pub(crate) fn key(&self, index: usize) -> String {
        self.uuid.as_ref().map_or_else(
            || format!("#{index}"),
            |uuid| uuid.to_string_lossy().into_owned(),
        )
    }
}

/// Parses and checks a fixture, reporting every problem at once with its key path; files it
/// names are read relative to `base`.
pub(crate) fn parse(text: &[u8], base: &Path) -> Result<Fixture, String> {
    let raw: RawFixture = serde_json::from_slice(text).map_err(|error| error.to_string())?;
    let mut errors = Errors::default();
    let fixture = raw.check(&mut errors, base);
    if errors.0.is_empty() {
        Ok(fixture)
    } else {
        Err(errors.0.join("; "))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFixture {
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "free text for people; parsed so that it is allowed"
    )]
    description: Option<String>,
    driver_version: Option<String>,
    cuda_driver_version: Option<i32>,
    init_error: Option<String>,
    confidential_compute: Option<bool>,
    #[serde(default)]
    devices: Vec<RawDevice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    uuid: Option<String>,
    serial: Option<String>,
    board_part_number: Option<String>,
    name: Option<String>,
    pci: Option<RawPci>,
    architecture: Option<String>,
    compute_capability: Option<[i32; 2]>,
    memory_total_bytes: Option<u64>,
    max_graphics_clock_mhz: Option<u32>,
    max_sm_clock_mhz: Option<u32>,
    max_memory_clock_mhz: Option<u32>,
    max_video_clock_mhz: Option<u32>,
    vbios_version: Option<String>,
    mig: Option<RawMig>,
    #[serde(default)]
    fail: BTreeMap<String, String>,
    fail_all: Option<String>,
    handle_error: Option<String>,
    lost_after_queries: Option<u64>,
    gpu_evidence: Option<RawAttester>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPci {
    bus_id: String,
    domain: u32,
    bus: u32,
    device: u32,
    device_id: String,
    subsystem_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMig {
    current: bool,
    pending: bool,
    max_instances: u32,
    instances: u32,
}

/// Problems found so far, each with its key path.
#[derive(Debug, Default)]
struct Errors(Vec<String>);

impl Errors {
    fn push(&mut self, path: impl Display, problem: impl Display) {
        self.0.push(format!("{path}: {problem}"));
    }
}

impl RawFixture {
    fn check(self, errors: &mut Errors, base: &Path) -> Fixture {
        let driver_version = c_string(
            errors,
            "driver_version",
            self.driver_version,
            NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE,
        );
        let init_error = error_code(errors, "init_error", self.init_error);
        if self.devices.len() > MAX_DEVICES {
            errors.push("devices", format_args!("more than {MAX_DEVICES} devices"));
        }
        let devices = self
            .devices
            .into_iter()
            .enumerate()
            .map(|(index, device)| device.check(errors, &format!("devices[{index}]"), base))
            .collect();
        Fixture {
            driver_version,
            cuda_driver_version: self.cuda_driver_version,
            init_error,
            confidential_compute: self.confidential_compute,
            devices,
        }
    }
}

impl RawDevice {
    fn check(self, errors: &mut Errors, path: &str, base: &Path) -> Device {
        let at = |field: &str| format!("{path}.{field}");
        let gpu_evidence = self.gpu_evidence.and_then(|raw| {
            raw.check(base)
                .map_err(|problem| errors.push(at("gpu_evidence"), problem))
                .ok()
        });
        let mut fail = BTreeMap::new();
        for (function, name) in self.fail {
            let key = at(&format!("fail.{function}"));
            let Some(query) = Query::from_function(&function) else {
                let hint = if function == "nvmlDeviceGetHandleByIndex_v2" {
                    " (use handle_error)".to_owned()
                } else {
                    let known: Vec<_> = Query::ALL.iter().map(|query| query.function()).collect();
                    format!(" (one of {})", known.join(", "))
                };
                errors.push(key, format_args!("not a per-device NVML function{hint}"));
                continue;
            };
            if let Some(code) = error_code(errors, key, Some(name)) {
                fail.insert(query, code);
            }
        }
        Device {
            uuid: c_string(
                errors,
                at("uuid"),
                self.uuid,
                NVML_DEVICE_UUID_V2_BUFFER_SIZE,
            ),
            serial: c_string(
                errors,
                at("serial"),
                self.serial,
                NVML_DEVICE_SERIAL_BUFFER_SIZE,
            ),
            board_part_number: c_string(
                errors,
                at("board_part_number"),
                self.board_part_number,
                NVML_DEVICE_PART_NUMBER_BUFFER_SIZE,
            ),
            name: c_string(
                errors,
                at("name"),
                self.name,
                NVML_DEVICE_NAME_V2_BUFFER_SIZE,
            ),
            pci: self.pci.and_then(|pci| pci.check(errors, &at("pci"))),
            architecture: self
                .architecture
                .and_then(|name| architecture(errors, at("architecture"), &name)),
            compute_capability: self.compute_capability.map(|[major, minor]| (major, minor)),
            memory_total_bytes: self.memory_total_bytes,
            max_clocks_mhz: [
                self.max_graphics_clock_mhz,
                self.max_sm_clock_mhz,
                self.max_memory_clock_mhz,
                self.max_video_clock_mhz,
            ],
            vbios_version: c_string(
                errors,
                at("vbios_version"),
                self.vbios_version,
                NVML_DEVICE_VBIOS_VERSION_BUFFER_SIZE,
            ),
            mig: self.mig.and_then(|mig| mig.check(errors, &at("mig"))),
            fail,
            fail_all: error_code(errors, at("fail_all"), self.fail_all),
            handle_error: error_code(errors, at("handle_error"), self.handle_error),
            lost_after_queries: self.lost_after_queries,
            gpu_evidence,
        }
    }
}

impl RawPci {
    fn check(self, errors: &mut Errors, path: &str) -> Option<Pci> {
        let expected = format!("{:08X}:{:02X}:{:02X}.", self.domain, self.bus, self.device);
        let prefix = self.bus_id.get(..expected.len()).unwrap_or(&self.bus_id);
        if !prefix.eq_ignore_ascii_case(&expected) {
            errors.push(
                format_args!("{path}.bus_id"),
                format_args!(
                    "{:?} does not match domain {}, bus {} and device {} (expected {expected}N)",
                    self.bus_id, self.domain, self.bus, self.device
                ),
            );
        }
        let bus_id = c_string(
            errors,
            format!("{path}.bus_id"),
            Some(self.bus_id),
            NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE,
        );
        let device_id = hex_id(errors, format!("{path}.device_id"), &self.device_id);
        let subsystem_id = hex_id(errors, format!("{path}.subsystem_id"), &self.subsystem_id);
        Some(Pci {
            bus_id: bus_id?,
            domain: self.domain,
            bus: self.bus,
            device: self.device,
            device_id: device_id?,
            subsystem_id: subsystem_id?,
        })
    }
}

impl RawMig {
    fn check(self, errors: &mut Errors, path: &str) -> Option<Mig> {
        let before = errors.0.len();
        if self.instances > self.max_instances {
            errors.push(
                format_args!("{path}.instances"),
                format_args!(
                    "{} is more than max_instances {}",
                    self.instances, self.max_instances
                ),
            );
        }
        if self.max_instances >= MAX_MIG_INSTANCES {
            errors.push(
                format_args!("{path}.max_instances"),
                format_args!("must be below {MAX_MIG_INSTANCES}"),
            );
        }
        if self.instances > 0 && !self.current {
            errors.push(
                format_args!("{path}.instances"),
                "MIG instances exist only while MIG is enabled (current: true)",
            );
        }
        (errors.0.len() == before).then_some(Mig {
            current: self.current,
            pending: self.pending,
            max_instances: self.max_instances,
            instances: self.instances,
        })
    }
}

/// A string as NVML returns it: no NUL inside, and it fits NVML's buffer with its terminator.
fn c_string(
    errors: &mut Errors,
    path: impl Display,
    value: Option<String>,
    buffer: u32,
) -> Option<CString> {
    let value = value?;
    if value.len() >= buffer as usize {
        errors.push(
            path,
            format_args!("{value:?} is longer than NVML's {buffer}-byte buffer allows"),
        );
        return None;
    }
    match CString::new(value) {
        Ok(value) => Some(value),
        Err(_) => {
            errors.push(path, "contains a NUL character");
            None
        }
    }
}

fn error_code(
    errors: &mut Errors,
    path: impl Display,
    name: Option<String>,
) -> Option<nvmlReturn_t> {
    let name = name?;
    let code = code::error_from_name(&name);
    if code.is_none() {
        let known: Vec<_> = code::error_names().collect();
        errors.push(
            path,
            format_args!(
                "{name:?} is not an NVML error name (one of {})",
                known.join(", ")
            ),
        );
    }
    code
}

/// A packed PCI id written as hex with `0x`, like `0x233010DE`.
fn hex_id(errors: &mut Errors, path: impl Display, text: &str) -> Option<u32> {
    let parsed = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .and_then(|digits| u32::from_str_radix(digits, 16).ok());
    if parsed.is_none() {
        errors.push(
            path,
            format_args!("{text:?} is not a 32-bit hex id like \"0x233010DE\""),
        );
    }
    parsed
}

const ARCHITECTURES: [(&str, nvmlDeviceArchitecture_t); 10] = [
    ("Kepler", NVML_DEVICE_ARCH_KEPLER),
    ("Maxwell", NVML_DEVICE_ARCH_MAXWELL),
    ("Pascal", NVML_DEVICE_ARCH_PASCAL),
    ("Volta", NVML_DEVICE_ARCH_VOLTA),
    ("Turing", NVML_DEVICE_ARCH_TURING),
    ("Ampere", NVML_DEVICE_ARCH_AMPERE),
    ("Ada", NVML_DEVICE_ARCH_ADA),
    ("Hopper", NVML_DEVICE_ARCH_HOPPER),
    ("Blackwell", NVML_DEVICE_ARCH_BLACKWELL),
    ("Unknown", NVML_DEVICE_ARCH_UNKNOWN),
];

fn architecture(
    errors: &mut Errors,
    path: impl Display,
    name: &str,
) -> Option<nvmlDeviceArchitecture_t> {
    let found = ARCHITECTURES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value);
    if found.is_none() {
        let known: Vec<_> = ARCHITECTURES.iter().map(|(known, _)| *known).collect();
        errors.push(
            path,
            format_args!(
                "{name:?} is not an architecture (one of {})",
                known.join(", ")
            ),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const H100: &str = r#"{
        "description": "one H100",
        "driver_version": "550.90.07",
        "cuda_driver_version": 12040,
        "init_error": null,
        "confidential_compute": false,
        "devices": [{
            "uuid": "GPU-4b1c3e5a-0d2f-4c6e-9a8b-7f6e5d4c3b2a",
            "serial": "1652922001234",
            "board_part_number": "692-2G520-0200-000",
            "name": "NVIDIA H100 80GB HBM3",
            "pci": {"bus_id": "00000000:1B:00.0", "domain": 0, "bus": 27, "device": 0,
                    "device_id": "0x233010DE", "subsystem_id": "0x16C110DE"},
            "architecture": "Hopper",
            "compute_capability": [9, 0],
            "memory_total_bytes": 85520809984,
            "max_sm_clock_mhz": 1980,
            "vbios_version": "96.00.74.00.0D",
            "mig": {"current": false, "pending": false, "max_instances": 7, "instances": 0},
            "fail": {"nvmlDeviceGetSerial": "UNKNOWN"},
            "fail_all": null, "handle_error": null, "lost_after_queries": 3
        }]
    }"#;

    #[test]
    fn a_complete_fixture_resolves_names_and_ids() {
        let fixture = parse(H100.as_bytes(), Path::new(".")).unwrap();
        assert_eq!(fixture.driver_version.as_deref(), Some(c"550.90.07"));
        assert_eq!(fixture.confidential_compute, Some(false));
        let device = &fixture.devices[0];
        let pci = device.pci.as_ref().unwrap();
        assert_eq!(
            (pci.device_id, pci.subsystem_id),
            (0x2330_10DE, 0x16C1_10DE)
        );
        assert_eq!(pci.bus, 27);
        assert_eq!(device.architecture, Some(NVML_DEVICE_ARCH_HOPPER));
        assert_eq!(device.max_clocks_mhz, [None, Some(1980), None, None]);
        assert_eq!(device.fail.get(&Query::Serial), Some(&code::UNKNOWN));
        assert_eq!(device.lost_after_queries, Some(3));
        assert_eq!(device.key(0), "GPU-4b1c3e5a-0d2f-4c6e-9a8b-7f6e5d4c3b2a");
    }

    #[test]
    fn missing_fields_are_not_supported_not_errors() {
        let fixture = parse(br#"{"devices": [{}]}"#, Path::new(".")).unwrap();
        assert!(fixture.driver_version.is_none());
        assert!(fixture.devices[0].uuid.is_none());
        assert_eq!(fixture.devices[0].key(4), "#4");
        assert!(parse(b"{}", Path::new(".")).unwrap().devices.is_empty());
    }

    #[test]
    fn every_problem_is_reported_with_its_key_path() {
        let text = r#"{
            "init_error": "NO_SUCH_ERROR",
            "devices": [{}, {
                "serial": "123456789012345678901234567890",
                "pci": {"bus_id": "00000000:1B:00.0", "domain": 0, "bus": 28, "device": 0,
                        "device_id": "233010DE", "subsystem_id": "0x16C110DE"},
                "architecture": "Rubin",
                "mig": {"current": false, "pending": false, "max_instances": 7, "instances": 8},
                "fail": {"nvmlDeviceGetSerail": "UNKNOWN", "nvmlDeviceGetUUID": "LOST"},
                "fail_all": "SUCCESS"
            }]
        }"#;
        let error = parse(text.as_bytes(), Path::new(".")).unwrap_err();
        for expected in [
            "init_error: \"NO_SUCH_ERROR\" is not an NVML error name",
            "devices[1].serial: ",
            "devices[1].pci.bus_id: ",
            "devices[1].pci.device_id: \"233010DE\" is not a 32-bit hex id",
            "devices[1].architecture: \"Rubin\" is not an architecture",
            "devices[1].mig.instances: 8 is more than max_instances 7",
            "devices[1].mig.instances: MIG instances exist only while MIG is enabled",
            "devices[1].fail.nvmlDeviceGetSerail: not a per-device NVML function",
            "devices[1].fail.nvmlDeviceGetUUID: \"LOST\" is not an NVML error name",
            "devices[1].fail_all: \"SUCCESS\" is not an NVML error name",
        ] {
            assert!(error.contains(expected), "missing {expected:?} in {error}");
        }
        assert_eq!(error.matches("; ").count(), 9, "{error}");
    }

    #[test]
    fn unknown_fields_and_bad_json_are_refused() {
        let error = parse(
            br#"{"devices": [{"uuid": "GPU-1", "colour": "green"}]}"#,
            Path::new("."),
        )
        .unwrap_err();
        assert!(error.contains("unknown field `colour`"), "{error}");
        assert!(parse(b"{\"devices\": [", Path::new(".")).is_err());
    }

    #[test]
    fn handle_lookup_is_not_a_fail_entry() {
        let error = parse(
            br#"{"devices": [{"fail": {"nvmlDeviceGetHandleByIndex_v2": "UNKNOWN"}}]}"#,
            Path::new("."),
        )
        .unwrap_err();
        assert!(error.contains("(use handle_error)"), "{error}");
    }

    #[test]
    fn attestation_keys_that_cannot_be_read_are_reported_with_their_key_path() {
        let text = br#"{"devices": [{}, {"gpu_evidence": {"device_key_pkcs8": "missing.pk8",
            "chain_pem": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"}}]}"#;
        let error = parse(text, Path::new("/nonexistent")).unwrap_err();
        assert!(
            error.starts_with("devices[1].gpu_evidence: device_key_pkcs8: neither a readable file"),
            "{error}"
        );
        let unknown = br#"{"devices": [{"gpu_evidence": {"device_key_pkcs8": "k", "chain_pem": "c", "x": 1}}]}"#;
        assert!(parse(unknown, Path::new(".")).is_err());
    }

    #[test]
    fn every_query_name_round_trips() {
        for query in Query::ALL {
            assert_eq!(Query::from_function(query.function()), Some(query));
        }
    }
}
