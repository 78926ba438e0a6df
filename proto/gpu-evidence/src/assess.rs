//! Every device of an attestation judged: the one function the collector's ingest and the
//! offline bundle verifier call, so both hand the ledger the same `GpuProof`s for the same
//! log entry.

use proto_evidence::{AttestationPayload, GpuEvidence, GpuProof, challenge_issued_at_ms};

use crate::{ChainCache, Expected, Trust, report_nonce, verify};

/// Reason code of a report attached to an attestation that answers no collector challenge:
/// its nonce could have been computed in advance, so it proves nothing fresh.
pub const NO_CHALLENGE: &str = "no_challenge";

/// Each device's hardware evidence in `payload`, received by the collector at
/// `received_at_ms`, judged against `trust`: `Hardware` for a report that verifies (nonce
/// bound to the payload's challenge, its key and the device's index; every certificate valid
/// at receipt; driver and VBIOS versions as the payload states them), `Refused` with the
/// verifier's reason for one that does not, `Absent` for a device without a report. Empty
/// (every device absent) when no device carries a report, without any work.
pub fn assess(
    payload: &AttestationPayload,
    received_at_ms: i64,
    trust: &Trust,
    cache: Option<&ChainCache>,
) -> Vec<GpuProof> {
    let reports = payload
        .devices
        .iter()
        .any(|d| matches!(d.gpu_evidence, GpuEvidence::Report { .. }));
    if !reports {
        return Vec::new();
    }
    payload
        .devices
        .iter()
        .map(|device| {
            let GpuEvidence::Report {
                report,
                certificate_chain,
            } = &device.gpu_evidence
            else {
                return GpuProof::Absent;
            };
            let Some(challenge_issued_at_ms) = challenge_issued_at_ms(&payload.collector_nonce)
            else {
                return GpuProof::Refused {
                    reason: NO_CHALLENGE.to_owned(),
                    detail: format!(
                        "device {}: the attestation answers no collector challenge, so the report's nonce could have been made in advance",
                        device.index
                    ),
                };
            };
            let expected = Expected {
                nonce: report_nonce(
                    &payload.collector_nonce,
                    payload.key_id.0.as_bytes(),
                    device.index,
                ),
                at_unix_ms: received_at_ms,
                driver_version: Some(payload.driver_version.as_str())
                    .filter(|version| !version.is_empty()),
                vbios_version: Some(device.vbios_version.as_str())
                    .filter(|version| !version.is_empty()),
            };
            match verify(report, certificate_chain, &expected, trust, cache) {
                Ok(verified) => GpuProof::Hardware {
                    identity: verified.identity.key(),
                    challenge_issued_at_ms,
                },
                Err(failure) => GpuProof::Refused {
                    reason: failure.reason.code().to_owned(),
                    detail: format!("device {}: {}", device.index, failure.detail),
                },
            }
        })
        .collect()
}
