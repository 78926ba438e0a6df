//! Conversions between the generated `veu.v1` messages and the evidence model. Decoding checks
//! every field and fails into a typed error; nothing generated leaves this module.

use prost::{Message, encoding};
use proto_evidence::{
    Algorithm, AttestationPayload, ChainDigest, DeviceFault, DeviceRecord, Envelope,
    EvidenceSource, GpuEvidence, GpuEvidenceFault, HostId, KeyId, MAX_GPU_MESSAGE_BYTES,
    PAYLOAD_FORMAT, RejectReason, Sha256, SiteId, Totals, report_problem,
};
use proto_wire::v1;

/// Longest identifier (host, site) accepted in a payload, in bytes.
const MAX_ID_LEN: usize = 256;

/// Longest text NVML or the agent reports (device names, UUIDs, serials, part numbers, PCI bus
/// ids, versions, a fault's query), in bytes. NVML's own buffers are at most 96 bytes.
const MAX_TEXT_LEN: usize = 256;

/// Longest fault message, in bytes: an NVML error string with the agent's context.
const MAX_FAULT_MESSAGE_LEN: usize = 1024;

/// Bytes that are not a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEnvelope {
    /// Not a protobuf `veu.v1.Envelope`.
    #[error("not a veu.v1.Envelope: {0}")]
    Decode(String),
    /// A key id that is not 32 bytes.
    #[error("key_id must be 32 bytes, got {0}")]
    KeyId(usize),
    /// An algorithm other than Ed25519.
    #[error("unsupported signature algorithm {0}")]
    Algorithm(i32),
    /// An Ed25519 signature is 64 bytes.
    #[error("an Ed25519 signature is 64 bytes, got {0}")]
    SignatureLength(usize),
    /// The payload exceeds the size limit.
    #[error("payload is {0} bytes, over the {max}-byte limit", max = crate::MAX_PAYLOAD_BYTES)]
    Oversized(usize),
}

/// Signed bytes that are not a valid attestation payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidPayload {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> InvalidPayload {
    InvalidPayload {
        field,
        reason: reason.into(),
    }
}

/// `TryFrom` for generated messages. The model and the generated types both live in other
/// crates, so the orphan rule asks for a trait of this crate's own.
pub(crate) trait FromWire<W>: Sized {
    type Error;
    fn from_wire(message: W) -> Result<Self, Self::Error>;
}

/// `From` towards generated messages, for the same reason.
pub(crate) trait ToWire<W> {
    fn to_wire(&self) -> W;
}

/// Encodes an envelope as a protobuf `veu.v1.Envelope`: the bytes prost writes for
/// `envelope_to_wire(envelope)`, written straight from the envelope (the collector stores every
/// accepted one, and the message would be a copy of the payload).
pub fn encode_envelope(envelope: &Envelope) -> Vec<u8> {
    let algorithm: i32 = match envelope.algorithm {
        Algorithm::Ed25519 => v1::Algorithm::Ed25519.into(),
    };
    let fields: [(u32, &[u8]); 3] = [
        (1, &envelope.payload),
        (2, envelope.key_id.0.as_bytes()),
        (4, &envelope.signature),
    ];
    let length = fields
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(tag, value)| {
            encoding::key_len(*tag) + encoding::encoded_len_varint(value.len() as u64) + value.len()
        })
        .sum::<usize>()
        + encoding::int32::encoded_len(3, &algorithm);
    let mut bytes = Vec::with_capacity(length);
    // Field order and the omission of empty fields are prost's: ascending tags, proto3 defaults
    // left out.
    for (tag, value) in fields {
        if tag == 4 && algorithm != 0 {
            encoding::int32::encode(3, &algorithm, &mut bytes);
        }
        if !value.is_empty() {
            encoding::encode_key(tag, encoding::WireType::LengthDelimited, &mut bytes);
            encoding::encode_varint(value.len() as u64, &mut bytes);
            bytes.extend_from_slice(value);
        }
    }
    bytes
}

/// Checks a generated `veu.v1.Envelope` as received by a gRPC service; the payload is not
/// examined.
pub fn envelope_from_wire(message: v1::Envelope) -> Result<Envelope, InvalidEnvelope> {
    Envelope::from_wire(message)
}

/// The generated `veu.v1.Envelope` for an envelope, for gRPC services that send one.
pub fn envelope_to_wire(envelope: &Envelope) -> v1::Envelope {
    envelope.to_wire()
}

/// Decodes a protobuf `veu.v1.Envelope`, checking its fields; the payload is not examined.
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, InvalidEnvelope> {
    if bytes.len() > crate::MAX_PAYLOAD_BYTES + 1024 {
        return Err(InvalidEnvelope::Oversized(bytes.len()));
    }
    let message =
        v1::Envelope::decode(bytes).map_err(|error| InvalidEnvelope::Decode(error.to_string()))?;
    Envelope::from_wire(message)
}

impl FromWire<v1::Envelope> for Envelope {
    type Error = InvalidEnvelope;
    fn from_wire(message: v1::Envelope) -> Result<Self, InvalidEnvelope> {
        let key_id = Sha256::from_slice(&message.key_id)
            .map(KeyId)
            .ok_or(InvalidEnvelope::KeyId(message.key_id.len()))?;
        let algorithm = match v1::Algorithm::try_from(message.algorithm) {
            Ok(v1::Algorithm::Ed25519) => Algorithm::Ed25519,
            _ => return Err(InvalidEnvelope::Algorithm(message.algorithm)),
        };
        if message.signature.len() != 64 {
            return Err(InvalidEnvelope::SignatureLength(message.signature.len()));
        }
        if message.payload.len() > crate::MAX_PAYLOAD_BYTES {
            return Err(InvalidEnvelope::Oversized(message.payload.len()));
        }
        Ok(Envelope {
            payload: message.payload,
            key_id,
            algorithm,
            signature: message.signature,
        })
    }
}

impl ToWire<v1::Envelope> for Envelope {
    fn to_wire(&self) -> v1::Envelope {
        v1::Envelope {
            payload: self.payload.clone(),
            key_id: self.key_id.0.as_bytes().to_vec(),
            algorithm: match self.algorithm {
                Algorithm::Ed25519 => v1::Algorithm::Ed25519.into(),
            },
            signature: self.signature.clone(),
        }
    }
}

pub(crate) fn encode_payload(payload: &AttestationPayload) -> Vec<u8> {
    let message: v1::AttestationPayload = payload.to_wire();
    message.encode_to_vec()
}

pub(crate) fn decode_payload(bytes: &[u8]) -> Result<AttestationPayload, InvalidPayload> {
    let message = v1::AttestationPayload::decode(bytes).map_err(|error| {
        invalid(
            "payload",
            format!("not a veu.v1.AttestationPayload: {error}"),
        )
    })?;
    AttestationPayload::from_wire(message)
}

impl FromWire<v1::AttestationPayload> for AttestationPayload {
    type Error = InvalidPayload;
    fn from_wire(message: v1::AttestationPayload) -> Result<Self, InvalidPayload> {
        if message.format != PAYLOAD_FORMAT {
            return Err(invalid(
                "format",
                format!(
                    "{} is not the supported format {PAYLOAD_FORMAT}",
                    message.format
                ),
            ));
        }
        let key_id = Sha256::from_slice(&message.key_id)
            .map(KeyId)
            .ok_or_else(|| {
                invalid(
                    "key_id",
                    format!("must be 32 bytes, got {}", message.key_id.len()),
                )
            })?;
        let previous_digest = Sha256::from_slice(&message.previous_digest)
            .map(ChainDigest)
            .ok_or_else(|| {
                invalid(
                    "previous_digest",
                    format!("must be 32 bytes, got {}", message.previous_digest.len()),
                )
            })?;
        if message.sequence == 0 {
            return Err(invalid("sequence", "must be at least 1"));
        }
        // Every party stores numbers as signed 64-bit integers (SQL has no unsigned type): a
        // sequence past that is refused here, per attestation, not by a failing store.
        if i64::try_from(message.sequence).is_err() {
            return Err(invalid(
                "sequence",
                format!(
                    "{} is above the largest sequence {}",
                    message.sequence,
                    i64::MAX
                ),
            ));
        }
        check_payload_text(&message)?;
        let host_id = HostId(message.host_id);
        let site_id = SiteId(message.site_id);
        let source = match v1::EvidenceSource::try_from(message.source) {
            Ok(v1::EvidenceSource::Nvml) => EvidenceSource::Nvml,
            Ok(v1::EvidenceSource::Simulated) => EvidenceSource::Simulated,
            _ => {
                return Err(invalid(
                    "source",
                    format!("unknown evidence source {}", message.source),
                ));
            }
        };
        let devices = message
            .devices
            .into_iter()
            .map(DeviceRecord::from_wire)
            .collect::<Result<Vec<_>, _>>()?;
        let totals = message.totals.ok_or_else(|| invalid("totals", "missing"))?;
        let totals = Totals {
            devices: totals.devices,
            unknown_devices: totals.unknown_devices,
            faulty_devices: totals.faulty_devices,
            tpp: totals.tpp,
        };
        match Totals::of(&devices) {
            Some(computed) if computed == totals => {}
            Some(computed) => {
                return Err(invalid(
                    "totals",
                    format!("{totals:?} disagree with the devices, which sum to {computed:?}"),
                ));
            }
            None => return Err(invalid("devices", "device TPP sum overflows")),
        }
        Ok(AttestationPayload {
            key_id,
            host_id,
            site_id,
            sequence: message.sequence,
            previous_digest,
            issued_at_unix_ms: message.issued_at_unix_ms,
            collector_nonce: message.collector_nonce,
            devices,
            totals,
            catalogue_digest: message.catalogue_digest,
            policy_digest: message.policy_digest,
            agent_version: message.agent_version,
            source,
            driver_version: message.driver_version,
        })
    }
}

impl FromWire<v1::Device> for DeviceRecord {
    type Error = InvalidPayload;
    fn from_wire(message: v1::Device) -> Result<Self, InvalidPayload> {
        check_device_text(&message)?;
        Ok(DeviceRecord {
            index: message.index,
            uuid: message.uuid,
            serial: message.serial,
            board_part_number: message.board_part_number,
            name: message.name,
            pci_bus_id: message.pci_bus_id,
            pci_device_id: message.pci_device_id,
            pci_subsystem_id: message.pci_subsystem_id,
            architecture: message.architecture,
            catalogue_id: message.catalogue_id,
            tpp: message.tpp,
            unknown: message.unknown,
            mig_enabled: message.mig_enabled,
            mig_instances: message.mig_instances,
            faults: message
                .faults
                .into_iter()
                .map(|fault| DeviceFault {
                    query: fault.query,
                    message: fault.message,
                })
                .collect(),
            compute_capability: message.compute_capability,
            memory_total_bytes: message.memory_total_bytes,
            max_sm_clock_mhz: message.max_sm_clock_mhz,
            vbios_version: message.vbios_version,
            confidential_compute: match v1::ConfidentialCompute::try_from(
                message.confidential_compute,
            ) {
                Ok(v1::ConfidentialCompute::On) => Some(true),
                Ok(v1::ConfidentialCompute::Off) => Some(false),
                Ok(v1::ConfidentialCompute::Unspecified) => None,
                Err(_) => {
                    return Err(invalid(
                        "devices.confidential_compute",
                        format!("unknown value {}", message.confidential_compute),
                    ));
                }
            },
            gpu_evidence: match message.gpu_evidence {
                None => GpuEvidence::NotCollected,
                Some(evidence) => GpuEvidence::from_wire(evidence)?,
            },
        })
    }
}

impl FromWire<v1::GpuEvidence> for GpuEvidence {
    type Error = InvalidPayload;
    fn from_wire(message: v1::GpuEvidence) -> Result<Self, InvalidPayload> {
        const FIELD: &str = "devices.gpu_evidence";
        let fault = match v1::GpuEvidenceFault::try_from(message.fault) {
            Ok(v1::GpuEvidenceFault::Unspecified) => None,
            Ok(v1::GpuEvidenceFault::NotSupported) => Some(GpuEvidenceFault::NotSupported),
            Ok(v1::GpuEvidenceFault::ConfidentialComputeOff) => {
                Some(GpuEvidenceFault::ConfidentialComputeOff)
            }
            Ok(v1::GpuEvidenceFault::NvmlError) => Some(GpuEvidenceFault::NvmlError),
            Ok(v1::GpuEvidenceFault::Timeout) => Some(GpuEvidenceFault::Timeout),
            Ok(v1::GpuEvidenceFault::TooLarge) => Some(GpuEvidenceFault::TooLarge),
            Err(_) => {
                return Err(invalid(FIELD, format!("unknown fault {}", message.fault)));
            }
        };
        match fault {
            Some(_) if !message.report.is_empty() || !message.certificate_chain.is_empty() => {
                Err(invalid(
                    FIELD,
                    "carries both a report and a fault; a device has one or the other",
                ))
            }
            Some(_) if check_text(&message.message, MAX_GPU_MESSAGE_BYTES).is_some() => {
                Err(invalid(
                    FIELD,
                    format!(
                        "fault message {}",
                        check_text(&message.message, MAX_GPU_MESSAGE_BYTES).unwrap_or_default()
                    ),
                ))
            }
            Some(fault) => Ok(GpuEvidence::Unavailable {
                fault,
                message: message.message,
            }),
            None if !message.message.is_empty() => {
                Err(invalid(FIELD, "carries a fault message without a fault"))
            }
            None => match report_problem(message.report.len(), message.certificate_chain.len()) {
                Some((_, reason)) => Err(invalid(FIELD, reason)),
                None => Ok(GpuEvidence::Report {
                    report: message.report,
                    certificate_chain: message.certificate_chain,
                }),
            },
        }
    }
}

impl ToWire<Option<v1::GpuEvidence>> for GpuEvidence {
    fn to_wire(&self) -> Option<v1::GpuEvidence> {
        match self {
            GpuEvidence::NotCollected => None,
            GpuEvidence::Report {
                report,
                certificate_chain,
            } => Some(v1::GpuEvidence {
                report: report.clone(),
                certificate_chain: certificate_chain.clone(),
                fault: v1::GpuEvidenceFault::Unspecified.into(),
                message: String::new(),
            }),
            GpuEvidence::Unavailable { fault, message } => Some(v1::GpuEvidence {
                report: Vec::new(),
                certificate_chain: Vec::new(),
                fault: match fault {
                    GpuEvidenceFault::NotSupported => v1::GpuEvidenceFault::NotSupported,
                    GpuEvidenceFault::ConfidentialComputeOff => {
                        v1::GpuEvidenceFault::ConfidentialComputeOff
                    }
                    GpuEvidenceFault::NvmlError => v1::GpuEvidenceFault::NvmlError,
                    GpuEvidenceFault::Timeout => v1::GpuEvidenceFault::Timeout,
                    GpuEvidenceFault::TooLarge => v1::GpuEvidenceFault::TooLarge,
                }
                .into(),
                message: message.clone(),
            }),
        }
    }
}

/// Checks the payload's own strings: the identifiers are 1 to [`MAX_ID_LEN`] bytes, the versions
/// at most [`MAX_TEXT_LEN`], all printable (see [`check_text`]).
fn check_payload_text(message: &v1::AttestationPayload) -> Result<(), InvalidPayload> {
    let fail = |field, reason| Err(invalid(field, reason));
    for (field, value) in [("host_id", &message.host_id), ("site_id", &message.site_id)] {
        if value.is_empty() {
            return fail(field, "is empty".to_owned());
        }
        if let Some(reason) = check_text(value, MAX_ID_LEN) {
            return fail(field, reason);
        }
    }
    for (field, value) in [
        ("agent_version", &message.agent_version),
        ("driver_version", &message.driver_version),
    ] {
        if let Some(reason) = check_text(value, MAX_TEXT_LEN) {
            return fail(field, reason);
        }
    }
    Ok(())
}

/// Checks a device's strings (what NVML reported and the agent's fault entries): each at most
/// [`MAX_TEXT_LEN`] bytes ([`MAX_FAULT_MESSAGE_LEN`] for a fault message) and printable. The
/// reason names the device by its NVML index.
fn check_device_text(message: &v1::Device) -> Result<(), InvalidPayload> {
    let fields: [(&'static str, &str, usize); 9] = [
        ("devices.uuid", &message.uuid, MAX_TEXT_LEN),
        ("devices.serial", &message.serial, MAX_TEXT_LEN),
        (
            "devices.board_part_number",
            &message.board_part_number,
            MAX_TEXT_LEN,
        ),
        ("devices.name", &message.name, MAX_TEXT_LEN),
        ("devices.pci_bus_id", &message.pci_bus_id, MAX_TEXT_LEN),
        ("devices.architecture", &message.architecture, MAX_TEXT_LEN),
        ("devices.catalogue_id", &message.catalogue_id, MAX_TEXT_LEN),
        (
            "devices.compute_capability",
            &message.compute_capability,
            MAX_TEXT_LEN,
        ),
        (
            "devices.vbios_version",
            &message.vbios_version,
            MAX_TEXT_LEN,
        ),
    ];
    let faults = message.faults.iter().flat_map(|fault| {
        [
            ("devices.faults.query", fault.query.as_str(), MAX_TEXT_LEN),
            (
                "devices.faults.message",
                fault.message.as_str(),
                MAX_FAULT_MESSAGE_LEN,
            ),
        ]
    });
    for (field, value, max) in fields.into_iter().chain(faults) {
        if let Some(reason) = check_text(value, max) {
            return Err(invalid(
                field,
                format!("device with NVML index {}: {reason}", message.index),
            ));
        }
    }
    Ok(())
}

/// Why `value` is not text an operator's terminal can show as it is, or `None`: over `max`
/// bytes, or holding a control character (C0 such as ESC, DEL, C1) or an invisible
/// bidirectional control, which could rewrite or reorder what a terminal or a report shows.
/// Everything NVML reports (printable UTF-8 and spaces) passes.
fn check_text(value: &str, max: usize) -> Option<String> {
    if value.len() > max {
        return Some(format!(
            "is {} bytes, over the {max}-byte limit",
            value.len()
        ));
    }
    let (at, bad) = value.char_indices().find(|(_, c)| !is_printable(*c))?;
    Some(format!(
        "holds the control character U+{:04X} at byte {at}",
        u32::from(bad)
    ))
}

/// Not a control character (Unicode category Cc: C0, DEL, C1) nor a bidirectional embedding,
/// override or isolate (U+202A–U+202E, U+2066–U+2069).
fn is_printable(c: char) -> bool {
    !c.is_control() && !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl ToWire<v1::AttestationPayload> for AttestationPayload {
    fn to_wire(&self) -> v1::AttestationPayload {
        let payload = self;
        v1::AttestationPayload {
            format: PAYLOAD_FORMAT,
            key_id: payload.key_id.0.as_bytes().to_vec(),
            host_id: payload.host_id.0.clone(),
            site_id: payload.site_id.0.clone(),
            sequence: payload.sequence,
            previous_digest: payload.previous_digest.0.as_bytes().to_vec(),
            issued_at_unix_ms: payload.issued_at_unix_ms,
            collector_nonce: payload.collector_nonce.clone(),
            devices: payload.devices.iter().map(ToWire::to_wire).collect(),
            totals: Some(v1::Totals {
                devices: payload.totals.devices,
                unknown_devices: payload.totals.unknown_devices,
                faulty_devices: payload.totals.faulty_devices,
                tpp: payload.totals.tpp,
            }),
            catalogue_digest: payload.catalogue_digest.clone(),
            policy_digest: payload.policy_digest.clone(),
            agent_version: payload.agent_version.clone(),
            source: match payload.source {
                EvidenceSource::Nvml => v1::EvidenceSource::Nvml.into(),
                EvidenceSource::Simulated => v1::EvidenceSource::Simulated.into(),
            },
            driver_version: payload.driver_version.clone(),
        }
    }
}

impl ToWire<v1::Device> for DeviceRecord {
    fn to_wire(&self) -> v1::Device {
        let device = self;
        v1::Device {
            index: device.index,
            uuid: device.uuid.clone(),
            serial: device.serial.clone(),
            board_part_number: device.board_part_number.clone(),
            name: device.name.clone(),
            pci_bus_id: device.pci_bus_id.clone(),
            pci_device_id: device.pci_device_id,
            pci_subsystem_id: device.pci_subsystem_id,
            architecture: device.architecture.clone(),
            catalogue_id: device.catalogue_id.clone(),
            tpp: device.tpp,
            unknown: device.unknown,
            mig_enabled: device.mig_enabled,
            mig_instances: device.mig_instances,
            faults: device
                .faults
                .iter()
                .map(|fault| v1::DeviceFault {
                    query: fault.query.clone(),
                    message: fault.message.clone(),
                })
                .collect(),
            compute_capability: device.compute_capability.clone(),
            memory_total_bytes: device.memory_total_bytes,
            max_sm_clock_mhz: device.max_sm_clock_mhz,
            vbios_version: device.vbios_version.clone(),
            confidential_compute: match device.confidential_compute {
                None => v1::ConfidentialCompute::Unspecified.into(),
                Some(false) => v1::ConfidentialCompute::Off.into(),
                Some(true) => v1::ConfidentialCompute::On.into(),
            },
            gpu_evidence: device.gpu_evidence.to_wire(),
        }
    }
}

/// Each rejection reason beside its wire code: the one table both directions read.
const REJECT_REASONS: [(RejectReason, v1::RejectReason); 18] = [
    (RejectReason::UnknownKey, v1::RejectReason::UnknownKey),
    (RejectReason::RevokedKey, v1::RejectReason::RevokedKey),
    (
        RejectReason::KeyIdentityMismatch,
        v1::RejectReason::KeyIdentityMismatch,
    ),
    (RejectReason::BadSignature, v1::RejectReason::BadSignature),
    (RejectReason::Malformed, v1::RejectReason::Malformed),
    (RejectReason::Oversized, v1::RejectReason::Oversized),
    (
        RejectReason::SequenceRollback,
        v1::RejectReason::SequenceRollback,
    ),
    (RejectReason::Fork, v1::RejectReason::Fork),
    (
        RejectReason::PreviousDigestMismatch,
        v1::RejectReason::PreviousDigestMismatch,
    ),
    (RejectReason::ClockSkew, v1::RejectReason::ClockSkew),
    (RejectReason::StaleNonce, v1::RejectReason::StaleNonce),
    (RejectReason::SiteMismatch, v1::RejectReason::SiteMismatch),
    (
        RejectReason::CatalogueMismatch,
        v1::RejectReason::CatalogueMismatch,
    ),
    (
        RejectReason::SimulatedEvidence,
        v1::RejectReason::SimulatedEvidence,
    ),
    (
        RejectReason::UnsupportedAlgorithm,
        v1::RejectReason::UnsupportedAlgorithm,
    ),
    (
        RejectReason::ProtocolViolation,
        v1::RejectReason::ProtocolViolation,
    ),
    (RejectReason::Backdated, v1::RejectReason::Backdated),
    (RejectReason::DuplicateGpu, v1::RejectReason::DuplicateGpu),
];

/// The wire code of a rejection reason (`veu.v1.RejectReason`).
pub fn reject_reason_to_wire(reason: RejectReason) -> i32 {
    REJECT_REASONS
        .iter()
        .find(|(domain, _)| *domain == reason)
        .map_or(v1::RejectReason::Unspecified, |(_, wire)| *wire)
        .into()
}

/// The rejection reason of a wire code; `None` for `UNSPECIFIED` and for a code this build does
/// not know (a newer collector's).
pub fn reject_reason_from_wire(code: i32) -> Option<RejectReason> {
    REJECT_REASONS
        .iter()
        .find(|(_, wire)| i32::from(*wire) == code)
        .map(|(domain, _)| *domain)
}
