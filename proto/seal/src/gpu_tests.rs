//! GPU hardware evidence on the wire: every outcome round-trips, an absent field is "not
//! collected", and signed payloads whose evidence breaks a rule are refused with the reason.

use prost::Message as _;
use proto_evidence::{
    ATTESTATION_CONTEXT, GpuEvidence, GpuEvidenceFault, MAX_GPU_CHAIN_BYTES, MAX_GPU_MESSAGE_BYTES,
    MAX_GPU_REPORT_BYTES,
};
use proto_wire::v1;

use super::tests::{payload, signer};
use super::wire::ToWire as _;
use super::*;

const FAULTS: [GpuEvidenceFault; 5] = [
    GpuEvidenceFault::NotSupported,
    GpuEvidenceFault::ConfidentialComputeOff,
    GpuEvidenceFault::NvmlError,
    GpuEvidenceFault::Timeout,
    GpuEvidenceFault::TooLarge,
];

#[test]
fn every_kind_of_evidence_round_trips() {
    let signer = signer(1);
    let mut sent = payload(&signer);
    sent.devices[0].gpu_evidence = GpuEvidence::Report {
        report: vec![0x11; MAX_GPU_REPORT_BYTES],
        certificate_chain: vec![0x22; MAX_GPU_CHAIN_BYTES],
    };
    for (device, fault) in sent.devices[1..].iter_mut().zip(FAULTS) {
        device.gpu_evidence = GpuEvidence::Unavailable {
            fault,
            message: format!("{} on this device", fault.code()),
        };
    }
    assert_eq!(sent.devices[7].gpu_evidence, GpuEvidence::NotCollected);
    let envelope = seal(&sent, &signer).unwrap();
    let received = open(envelope, &signer.public_key()).unwrap();
    assert_eq!(received.payload(), &sent);
}

#[test]
fn not_collected_is_an_absent_field_and_adds_no_byte() {
    let signer = signer(1);
    let plain = payload(&signer);
    let message: v1::AttestationPayload = plain.to_wire();
    assert!(message.devices.iter().all(|d| d.gpu_evidence.is_none()));
    let mut with_fault = plain.clone();
    with_fault.devices[0].gpu_evidence =
        GpuEvidence::unavailable(GpuEvidenceFault::Timeout, String::new());
    // A fault with no message still travels: its enum value is not the default.
    let bytes = wire::encode_payload(&with_fault);
    assert!(bytes.len() > wire::encode_payload(&plain).len());
    assert_eq!(wire::decode_payload(&bytes).unwrap(), with_fault);
}

/// Signs `payload` with device 0's evidence replaced by `evidence`, as an attacker or a
/// broken agent could, and returns why `open` refused it.
fn refusal(evidence: v1::GpuEvidence) -> String {
    let signer = signer(1);
    let mut message: v1::AttestationPayload = payload(&signer).to_wire();
    message.devices[0].gpu_evidence = Some(evidence);
    let envelope = signer.sign(ATTESTATION_CONTEXT, message.encode_to_vec());
    match open(envelope, &signer.public_key()) {
        Err(OpenError::Malformed(error)) => {
            assert_eq!(error.field, "devices.gpu_evidence");
            error.reason
        }
        other => panic!("expected a malformed payload, got {other:?}"),
    }
}

fn report(report: usize, chain: usize) -> v1::GpuEvidence {
    v1::GpuEvidence {
        report: vec![1; report],
        certificate_chain: vec![2; chain],
        fault: 0,
        message: String::new(),
    }
}

#[test]
fn evidence_that_breaks_a_rule_is_refused_with_the_reason() {
    let both = v1::GpuEvidence {
        fault: v1::GpuEvidenceFault::Timeout.into(),
        ..report(10, 10)
    };
    assert!(refusal(both).contains("both a report and a fault"));
    let chain_and_fault = v1::GpuEvidence {
        fault: v1::GpuEvidenceFault::NvmlError.into(),
        ..report(0, 10)
    };
    assert!(refusal(chain_and_fault).contains("both a report and a fault"));

    let reason = refusal(report(MAX_GPU_REPORT_BYTES + 1, 10));
    assert!(
        reason.contains("attestation report is 16385 bytes"),
        "{reason}"
    );
    let reason = refusal(report(10, MAX_GPU_CHAIN_BYTES + 1));
    assert!(
        reason.contains("certificate chain is 24577 bytes"),
        "{reason}"
    );
    assert!(refusal(report(0, 10)).contains("report is empty"));
    assert!(refusal(report(10, 0)).contains("chain is empty"));
    // Present but empty: neither a report nor a fault.
    assert!(refusal(report(0, 0)).contains("report is empty"));

    let unknown = v1::GpuEvidence {
        fault: 99,
        ..report(0, 0)
    };
    assert!(refusal(unknown).contains("unknown fault 99"));
    let stray_message = v1::GpuEvidence {
        message: "hello".into(),
        ..report(10, 10)
    };
    assert!(refusal(stray_message).contains("message without a fault"));
    let long_message = v1::GpuEvidence {
        fault: v1::GpuEvidenceFault::NvmlError.into(),
        message: "x".repeat(MAX_GPU_MESSAGE_BYTES + 1),
        ..report(0, 0)
    };
    assert!(refusal(long_message).contains("over the 1024-byte limit"));
}
