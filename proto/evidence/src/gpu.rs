//! Hardware evidence of one GPU: the attestation report NVML had the GPU sign for a nonce
//! derived from the collector's challenge, with the certificate chain of its signing key, or
//! why there is none. Verifying it is `proto-gpu-evidence`'s work; this is only the data, its
//! bounds and the nonce rule every party computes alike.

use sha2::Digest as _;

use crate::KeyId;

/// Largest attestation report carried (NVML's report buffer is 8 KiB).
pub const MAX_GPU_REPORT_BYTES: usize = 16 * 1024;

/// Largest certificate chain carried (NVML's attestation chain buffer is 5 KiB).
pub const MAX_GPU_CHAIN_BYTES: usize = 24 * 1024;

/// Longest fault message carried; longer ones are cut at a character boundary.
pub const MAX_GPU_MESSAGE_BYTES: usize = 1024;

/// What one device contributed as hardware evidence to an attestation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GpuEvidence {
    /// Not asked for: no new collector challenge since the last collection, or collection off.
    #[default]
    NotCollected,
    /// Exactly NVML's attestation report and the attestation certificate chain (leaf first).
    Report {
        /// The signed report (SPDM measurements response over the nonce).
        report: Vec<u8>,
        /// The device's attestation certificate chain, as NVML returned it.
        certificate_chain: Vec<u8>,
    },
    /// Asked for and not obtained; a per-device fact, never an aborted attestation.
    Unavailable {
        /// Why, as a class.
        fault: GpuEvidenceFault,
        /// Why, in the words of the source (NVML's error text or the agent's).
        message: String,
    },
}

/// Why a device gave no hardware evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GpuEvidenceFault {
    /// The device or its driver cannot produce attestation reports (no such NVML function,
    /// or a GPU without the feature).
    NotSupported,
    /// The device could, but confidential computing (or protected PCIe) is off.
    ConfidentialComputeOff,
    /// NVML failed otherwise; its text is the message.
    NvmlError,
    /// The device did not answer before the agent's deadline.
    Timeout,
    /// The report or chain exceeded the bound a verifier accepts.
    TooLarge,
}

impl GpuEvidenceFault {
    /// Stable snake_case name, for logs and JSON.
    pub fn code(self) -> &'static str {
        match self {
            GpuEvidenceFault::NotSupported => "not_supported",
            GpuEvidenceFault::ConfidentialComputeOff => "confidential_compute_off",
            GpuEvidenceFault::NvmlError => "nvml_error",
            GpuEvidenceFault::Timeout => "timeout",
            GpuEvidenceFault::TooLarge => "too_large",
        }
    }
}

impl GpuEvidence {
    /// A report and chain as a source returned them: `Report` when both are within bounds and
    /// not empty, else the fault a verifier would otherwise have to find (`TooLarge` for
    /// oversized, `NvmlError` for an empty part).
    pub fn from_source(report: Vec<u8>, certificate_chain: Vec<u8>) -> GpuEvidence {
        match report_problem(report.len(), certificate_chain.len()) {
            None => GpuEvidence::Report {
                report,
                certificate_chain,
            },
            Some((fault, message)) => GpuEvidence::unavailable(fault, message),
        }
    }

    /// `Unavailable`, with the message cut to `MAX_GPU_MESSAGE_BYTES`.
    pub fn unavailable(fault: GpuEvidenceFault, message: impl Into<String>) -> GpuEvidence {
        let mut message = message.into();
        if message.len() > MAX_GPU_MESSAGE_BYTES {
            let mut end = MAX_GPU_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        GpuEvidence::Unavailable { fault, message }
    }
}

/// What is wrong with a report of `report_len` bytes and a chain of `chain_len` bytes, if
/// anything: the one statement of the bounds, used by sources and by wire decoding.
pub fn report_problem(report_len: usize, chain_len: usize) -> Option<(GpuEvidenceFault, String)> {
    if report_len > MAX_GPU_REPORT_BYTES {
        Some((
            GpuEvidenceFault::TooLarge,
            format!(
                "attestation report is {report_len} bytes, over the {MAX_GPU_REPORT_BYTES}-byte limit"
            ),
        ))
    } else if chain_len > MAX_GPU_CHAIN_BYTES {
        Some((
            GpuEvidenceFault::TooLarge,
            format!(
                "certificate chain is {chain_len} bytes, over the {MAX_GPU_CHAIN_BYTES}-byte limit"
            ),
        ))
    } else if report_len == 0 {
        Some((
            GpuEvidenceFault::NvmlError,
            "the attestation report is empty".to_owned(),
        ))
    } else if chain_len == 0 {
        Some((
            GpuEvidenceFault::NvmlError,
            "the certificate chain is empty".to_owned(),
        ))
    } else {
        None
    }
}

/// The nonce the GPU at `device_index` signs: SHA-256(collector_nonce ‖ key_id (32 bytes) ‖
/// device_index as u32 big-endian). It binds the report to the collector's challenge, to the
/// agent's key and to the device's place, so one report cannot answer for another device,
/// another host or another challenge.
pub fn report_nonce(collector_nonce: &[u8], key_id: &KeyId, device_index: u32) -> [u8; 32] {
    let mut hash = sha2::Sha256::new();
    hash.update(collector_nonce);
    hash.update(key_id.0.as_bytes());
    hash.update(device_index.to_be_bytes());
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sha256;

    #[test]
    fn the_nonce_is_sha256_of_challenge_key_and_big_endian_index() {
        let key_id = KeyId(Sha256::of(b"key"));
        let mut input = b"challenge".to_vec();
        input.extend_from_slice(key_id.0.as_bytes());
        input.extend_from_slice(&[0, 0, 1, 2]);
        assert_eq!(
            report_nonce(b"challenge", &key_id, 0x0102),
            *Sha256::of(&input).as_bytes()
        );
        // Every input matters.
        let base = report_nonce(b"challenge", &key_id, 3);
        assert_ne!(base, report_nonce(b"challengf", &key_id, 3));
        assert_ne!(
            base,
            report_nonce(b"challenge", &KeyId(Sha256::of(b"k")), 3)
        );
        assert_ne!(base, report_nonce(b"challenge", &key_id, 4));
    }

    #[test]
    fn sources_get_the_bounds_and_emptiness_as_faults() {
        assert!(matches!(
            GpuEvidence::from_source(vec![1; MAX_GPU_REPORT_BYTES], vec![2; MAX_GPU_CHAIN_BYTES]),
            GpuEvidence::Report { .. }
        ));
        let fault = |evidence| match evidence {
            GpuEvidence::Unavailable { fault, message } => (fault, message),
            other => panic!("{other:?}"),
        };
        let (class, message) = fault(GpuEvidence::from_source(
            vec![1; MAX_GPU_REPORT_BYTES + 1],
            vec![2],
        ));
        assert_eq!(class, GpuEvidenceFault::TooLarge);
        assert!(message.contains("16385 bytes"), "{message}");
        let (class, message) = fault(GpuEvidence::from_source(
            vec![1],
            vec![2; MAX_GPU_CHAIN_BYTES + 1],
        ));
        assert_eq!(class, GpuEvidenceFault::TooLarge);
        assert!(message.contains("certificate chain"), "{message}");
        assert_eq!(
            fault(GpuEvidence::from_source(Vec::new(), vec![2])).0,
            GpuEvidenceFault::NvmlError
        );
        assert_eq!(
            fault(GpuEvidence::from_source(vec![1], Vec::new())).0,
            GpuEvidenceFault::NvmlError
        );
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let (_, message) =
            match GpuEvidence::unavailable(GpuEvidenceFault::NvmlError, "é".repeat(600)) {
                GpuEvidence::Unavailable { fault, message } => (fault, message),
                other => panic!("{other:?}"),
            };
        assert_eq!(message.len(), MAX_GPU_MESSAGE_BYTES);
        assert!(message.chars().all(|c| c == 'é'));
    }
}
