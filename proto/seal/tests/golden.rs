//! The golden attestation: signed bytes and a public key committed to the repository, which
//! every later build must keep verifying and decoding to the same statement. Regenerate only
//! on a deliberate format change: `VEU_WRITE_GOLDEN=1 cargo test -p proto-seal --test golden`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use proto_evidence::{
    AttestationPayload, ChainDigest, DeviceFault, DeviceRecord, EvidenceSource, HostId, SiteId,
    Totals,
};
use proto_seal::{Ed25519Signer, PublicKey, decode_envelope, encode_envelope, open, seal};

const SEED: [u8; 32] = *b"veu-attest golden fixture seed!!";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The statement the golden bytes carry: an 8 x H100 SXM host with one failing query.
fn statement(signer: &Ed25519Signer) -> AttestationPayload {
    let devices: Vec<DeviceRecord> = (0..8u32)
        .map(|index| DeviceRecord {
            index,
            uuid: format!("GPU-4b1d3c52-7a0e-4f7c-9d2a-1c0ffee0000{index}"),
            serial: format!("165322001234{index}"),
            board_part_number: "692-2G520-0200-000".into(),
            name: "NVIDIA H100 80GB HBM3".into(),
            pci_bus_id: format!("00000000:{:02X}:00.0", 0x18 + index * 0x10),
            pci_device_id: 0x2330_10de,
            pci_subsystem_id: 0x16c1_10de,
            architecture: "Hopper".into(),
            catalogue_id: "H100-SXM5-80GB".into(),
            tpp: 15840,
            unknown: false,
            mig_enabled: index == 7,
            mig_instances: if index == 7 { 7 } else { 0 },
            faults: if index == 5 {
                vec![DeviceFault {
                    query: "nvmlDeviceGetBoardPartNumber".into(),
                    message: "Not Supported".into(),
                }]
            } else {
                Vec::new()
            },
            ..DeviceRecord::default()
        })
        .collect();
    AttestationPayload {
        key_id: signer.key_id(),
        host_id: HostId("dgx-h100-0001".into()),
        site_id: SiteId("us-va-ashburn-1".into()),
        sequence: 42,
        previous_digest: ChainDigest::of_payload(b"attestation 41"),
        issued_at_unix_ms: 1_764_403_200_000,
        collector_nonce: b"collector-nonce-0042".to_vec(),
        totals: Totals::of(&devices).unwrap(),
        devices,
        catalogue_digest: "sha256:5f0c3e1d9a7b2c4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6"
            .into(),
        policy_digest: "sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
            .into(),
        agent_version: "0.1.0".into(),
        source: EvidenceSource::Nvml,
        driver_version: String::new(),
    }
}

#[test]
fn golden_attestation_keeps_verifying() {
    let signer = Ed25519Signer::from_seed(&SEED).unwrap();
    if std::env::var_os("VEU_WRITE_GOLDEN").is_some() {
        let envelope = seal(&statement(&signer), &signer).unwrap();
        std::fs::write(
            fixture("golden-attestation.envelope"),
            encode_envelope(&envelope),
        )
        .unwrap();
        let hex: String = signer
            .public_key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(
            fixture("golden-attestation.public-key.hex"),
            format!("{hex}\n"),
        )
        .unwrap();
    }

    let bytes = std::fs::read(fixture("golden-attestation.envelope")).unwrap();
    let hex = std::fs::read_to_string(fixture("golden-attestation.public-key.hex")).unwrap();
    let raw: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex.trim()[i..i + 2], 16).unwrap())
        .collect();
    let key = PublicKey::from_slice(&raw).unwrap();

    let verified = open(decode_envelope(&bytes).unwrap(), &key).unwrap();
    let payload = verified.payload();
    assert_eq!(payload.host_id.0, "dgx-h100-0001");
    assert_eq!(payload.sequence, 42);
    assert_eq!(payload.devices.len(), 8);
    assert_eq!(payload.totals.tpp, 126_720);
    assert_eq!(payload.totals.faulty_devices, 1);
    assert_eq!(payload.source, EvidenceSource::Nvml);
    assert_eq!(
        payload,
        &statement(&signer),
        "the golden bytes decode to the same statement"
    );
}

#[test]
fn golden_bytes_are_what_this_build_would_sign() {
    // Ed25519 is deterministic: the same key and payload give the same bytes. A failure here
    // means the encoding changed; old evidence must still verify (see the test above).
    if std::env::var_os("VEU_WRITE_GOLDEN").is_some() {
        return; // the other test is rewriting the file
    }
    let signer = Ed25519Signer::from_seed(&SEED).unwrap();
    let envelope = seal(&statement(&signer), &signer).unwrap();
    let committed = std::fs::read(fixture("golden-attestation.envelope")).unwrap();
    assert_eq!(encode_envelope(&envelope), committed);
}
