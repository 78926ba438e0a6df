//! `assess`, the one judgement of an attestation's GPU reports: what each device gives the
//! ledger.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_evidence::{
    AttestationPayload, ChainDigest, DeviceRecord, EvidenceSource, GpuEvidence, GpuProof, HostId,
    KeyId, SiteId, Totals, report_nonce,
};
use proto_gpu_evidence::testing::{Arch, TestDeviceCa};
use proto_gpu_evidence::{ChainCache, Trust, assess};

const AT: i64 = 1_780_000_000_000;

fn payload(challenge: &[u8], devices: Vec<DeviceRecord>) -> AttestationPayload {
    AttestationPayload {
        key_id: KeyId::of_public_key(b"agent"),
        host_id: HostId("gpu-1".into()),
        site_id: SiteId("us-1".into()),
        sequence: 1,
        previous_digest: ChainDigest::GENESIS,
        issued_at_unix_ms: AT,
        collector_nonce: challenge.to_vec(),
        totals: Totals::of(&devices).unwrap(),
        devices,
        catalogue_digest: String::new(),
        policy_digest: String::new(),
        agent_version: String::new(),
        source: EvidenceSource::Nvml,
        driver_version: "590.12".into(),
    }
}

fn challenge() -> Vec<u8> {
    let mut nonce = (AT - 1000).to_be_bytes().to_vec();
    nonce.extend_from_slice(&[7; 16]);
    nonce
}

#[test]
fn each_device_is_judged_in_order() {
    let ca = TestDeviceCa::generate().unwrap();
    let trust = ca.trust().unwrap();
    let chip = ca.issue(1, Arch::Hopper).unwrap();
    let challenge = challenge();
    let key = KeyId::of_public_key(b"agent");
    let with_report = |index: u32, nonce: [u8; 32]| DeviceRecord {
        index,
        vbios_version: "96.00.A5.00.01".into(),
        gpu_evidence: GpuEvidence::Report {
            report: chip.report(&nonce, "590.12", "96.00.A5.00.01").unwrap(),
            certificate_chain: chip.chain_pem(),
        },
        ..DeviceRecord::default()
    };
    let devices = vec![
        with_report(0, report_nonce(&challenge, &key, 0)),
        // The same GPU's report moved to another slot: its nonce names slot 0.
        with_report(1, report_nonce(&challenge, &key, 0)),
        DeviceRecord {
            index: 2,
            ..DeviceRecord::default()
        },
    ];
    let proofs = assess(
        &payload(&challenge, devices),
        AT,
        &trust,
        Some(&ChainCache::default()),
    );
    assert_eq!(proofs.len(), 3);
    assert!(
        matches!(&proofs[0], GpuProof::Hardware { identity, challenge_issued_at_ms }
            if identity.starts_with("nvidia-gpu:") && *challenge_issued_at_ms == AT - 1000),
        "{proofs:?}"
    );
    assert!(
        matches!(&proofs[1], GpuProof::Refused { reason, .. } if reason == "nonce_mismatch"),
        "{proofs:?}"
    );
    assert_eq!(proofs[2], GpuProof::Absent);

    // NVIDIA's root does not vouch for the test device CA.
    let proofs = assess(
        &payload(
            &challenge,
            vec![with_report(0, report_nonce(&challenge, &key, 0))],
        ),
        AT,
        &Trust::nvidia(),
        None,
    );
    assert!(matches!(&proofs[0], GpuProof::Refused { .. }), "{proofs:?}");
}

#[test]
fn a_report_without_a_challenge_proves_nothing_fresh() {
    let ca = TestDeviceCa::generate().unwrap();
    let chip = ca.issue(2, Arch::Blackwell).unwrap();
    let key = KeyId::of_public_key(b"agent");
    let device = DeviceRecord {
        gpu_evidence: GpuEvidence::Report {
            report: chip
                .report(&report_nonce(&[], &key, 0), "590.12", "96.00.A5.00.01")
                .unwrap(),
            certificate_chain: chip.chain_pem(),
        },
        ..DeviceRecord::default()
    };
    let proofs = assess(&payload(&[], vec![device]), AT, &ca.trust().unwrap(), None);
    assert!(
        matches!(&proofs[0], GpuProof::Refused { reason, .. } if reason == "no_challenge"),
        "{proofs:?}"
    );
}

#[test]
fn attestations_without_reports_cost_nothing() {
    let device = DeviceRecord {
        gpu_evidence: GpuEvidence::NotCollected,
        ..DeviceRecord::default()
    };
    assert!(
        assess(
            &payload(&challenge(), vec![device]),
            AT,
            &Trust::nvidia(),
            None
        )
        .is_empty()
    );
}
