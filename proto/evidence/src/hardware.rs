//! What the collector concluded about each device's hardware evidence, as the ledger takes
//! it, and the challenge a report answers.
//!
//! The verification itself (SPDM report, NVIDIA certificate chain) lives in
//! `proto-gpu-evidence`; this module is the pure vocabulary every path shares, so the live
//! view, the stores, the audit replay, the report and the offline verifier hand the ledger the
//! same thing for the same log entry.

/// One device's hardware evidence, judged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GpuProof {
    /// The attestation carries no report for this device (not requested, not supported,
    /// confidential computing off, or an NVML fault on the host).
    #[default]
    Absent,
    /// An NVIDIA-signed report verified: genuine silicon, bound to the attestation's challenge,
    /// its key and this device index.
    Hardware {
        /// The GPU's hardware identity from its device certificate (stable per chip).
        identity: String,
        /// When the challenge the report answered was issued (collector time).
        challenge_issued_at_ms: i64,
    },
    /// A report was attached and failed verification: the device is treated as having no
    /// hardware evidence, and the failure is recorded.
    Refused {
        /// The verifier's stable reason code.
        reason: String,
        /// What was wrong.
        detail: String,
    },
}

/// Bytes of issue time at the start of a collector challenge nonce (big-endian milliseconds
/// since the Unix epoch; the rest authenticates it under the collector's nonce secret).
pub const CHALLENGE_TIME_BYTES: usize = 8;

/// When the collector issued `nonce`, read from its first bytes; `None` for an empty or short
/// nonce. The time is only as good as the collector that checked the nonce's MAC at admission.
pub fn challenge_issued_at_ms(nonce: &[u8]) -> Option<i64> {
    nonce
        .split_first_chunk::<CHALLENGE_TIME_BYTES>()
        .map(|(time, _)| i64::from_be_bytes(*time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_time_is_the_big_endian_prefix() {
        let mut nonce = 1_700_000_000_123_i64.to_be_bytes().to_vec();
        nonce.extend_from_slice(&[9; 16]);
        assert_eq!(challenge_issued_at_ms(&nonce), Some(1_700_000_000_123));
        assert_eq!(challenge_issued_at_ms(&[]), None);
        assert_eq!(challenge_issued_at_ms(&[1, 2, 3]), None);
    }
}
