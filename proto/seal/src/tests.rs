//! Attacks on sealed attestations: tampered, forged, re-signed, cross-context and malformed.

use proto_evidence::{
    ATTESTATION_CONTEXT, DeviceFault, DeviceRecord, EvidenceSource, HostId, SiteId, Totals,
};

use super::*;

pub(crate) fn signer(seed: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(&[seed; 32]).unwrap()
}

pub(crate) fn payload(signer: &Ed25519Signer) -> AttestationPayload {
    let devices: Vec<DeviceRecord> = (0..8)
        .map(|index| DeviceRecord {
            index,
            uuid: format!("GPU-00000000-0000-0000-0000-00000000000{index}"),
            serial: format!("165522000{index}"),
            name: "NVIDIA H100 80GB HBM3".into(),
            pci_device_id: 0x2330_10de,
            architecture: "Hopper".into(),
            catalogue_id: "H100-SXM5-80GB".into(),
            tpp: 15840,
            faults: if index == 3 {
                vec![DeviceFault {
                    query: "nvmlDeviceGetSerial".into(),
                    message: "Unknown Error".into(),
                }]
            } else {
                Vec::new()
            },
            ..DeviceRecord::default()
        })
        .collect();
    AttestationPayload {
        key_id: signer.key_id(),
        host_id: HostId("gpu-node-0001".into()),
        site_id: SiteId("us-va-ashburn-1".into()),
        sequence: 1,
        previous_digest: ChainDigest::GENESIS,
        issued_at_unix_ms: 1_764_000_000_000,
        collector_nonce: vec![7; 16],
        totals: Totals::of(&devices).unwrap(),
        devices,
        catalogue_digest: "sha256:00".into(),
        policy_digest: "sha256:11".into(),
        agent_version: "0.1.0".into(),
        source: EvidenceSource::Simulated,
        driver_version: String::new(),
    }
}

#[test]
fn seal_then_open_round_trips() {
    let signer = signer(1);
    let payload = payload(&signer);
    let envelope = seal(&payload, &signer).unwrap();
    let verified = open(envelope.clone(), &signer.public_key()).unwrap();
    assert_eq!(verified.payload(), &payload);
    assert_eq!(
        verified.digest(),
        ChainDigest::of_payload(&envelope.payload)
    );
    assert_eq!(verified.envelope(), &envelope);
    assert_eq!(payload.totals.tpp, 8 * 15840);
    assert_eq!(payload.totals.faulty_devices, 1);
}

#[test]
fn every_flipped_byte_of_the_payload_is_caught() {
    let signer = signer(1);
    let envelope = seal(&payload(&signer), &signer).unwrap();
    for index in 0..envelope.payload.len() {
        let mut tampered = envelope.clone();
        tampered.payload[index] ^= 0x01;
        assert_eq!(
            open(tampered, &signer.public_key()),
            Err(OpenError::BadSignature),
            "byte {index}"
        );
    }
}

#[test]
fn a_flipped_signature_bit_is_caught() {
    let signer = signer(1);
    let mut envelope = seal(&payload(&signer), &signer).unwrap();
    envelope.signature[10] ^= 0x80;
    assert_eq!(
        open(envelope, &signer.public_key()),
        Err(OpenError::BadSignature)
    );
}

#[test]
fn another_key_cannot_pass_for_the_enrolled_one() {
    let (enrolled, attacker) = (signer(1), signer(2));
    // The attacker signs a payload that claims the enrolled key and relabels the envelope.
    let mut forged = attacker.sign(
        ATTESTATION_CONTEXT,
        wire::encode_payload(&payload(&enrolled)),
    );
    assert!(matches!(
        open(forged.clone(), &enrolled.public_key()),
        Err(OpenError::UnknownKey { .. })
    ));
    forged.key_id = enrolled.key_id();
    assert_eq!(
        open(forged, &enrolled.public_key()),
        Err(OpenError::BadSignature)
    );
}

#[test]
fn a_payload_naming_another_key_is_refused_even_when_signed() {
    let (signer, other) = (signer(1), signer(2));
    let envelope = signer.sign(ATTESTATION_CONTEXT, wire::encode_payload(&payload(&other)));
    assert!(matches!(
        open(envelope, &signer.public_key()),
        Err(OpenError::PayloadKeyMismatch { .. })
    ));
    assert!(matches!(
        seal(&payload(&other), &signer),
        Err(SealError::KeyMismatch { .. })
    ));
}

#[test]
fn a_challenge_signature_is_not_an_attestation_signature() {
    let signer = signer(1);
    let bytes = wire::encode_payload(&payload(&signer));
    let cross_context = signer.sign(CHALLENGE_CONTEXT, bytes);
    assert_eq!(
        open(cross_context, &signer.public_key()),
        Err(OpenError::BadSignature)
    );
}

#[test]
fn challenge_responses_check_key_nonce_and_context() {
    let signer = signer(1);
    let response = answer_challenge(b"nonce-1", &signer);
    let key = signer.public_key();
    assert_eq!(
        check_challenge_response(&response, &key, b"nonce-1"),
        Ok(())
    );
    assert_eq!(
        check_challenge_response(&response, &key, b"nonce-2"),
        Err(OpenError::WrongNonce)
    );
    let attestation_context = signer.sign(ATTESTATION_CONTEXT, b"nonce-1".to_vec());
    assert_eq!(
        check_challenge_response(&attestation_context, &key, b"nonce-1"),
        Err(OpenError::BadSignature)
    );
}

#[test]
fn signed_garbage_and_inconsistent_totals_are_malformed() {
    let signer = signer(1);
    let garbage = signer.sign(ATTESTATION_CONTEXT, vec![0xff; 40]);
    assert!(matches!(
        open(garbage, &signer.public_key()),
        Err(OpenError::Malformed(_))
    ));

    let mut lying = payload(&signer);
    lying.totals.tpp += 1;
    let envelope = signer.sign(ATTESTATION_CONTEXT, wire::encode_payload(&lying));
    let Err(OpenError::Malformed(error)) = open(envelope, &signer.public_key()) else {
        panic!("inconsistent totals must be malformed");
    };
    assert_eq!(error.field, "totals");

    let mut zero = payload(&signer);
    zero.sequence = 0;
    let envelope = signer.sign(ATTESTATION_CONTEXT, wire::encode_payload(&zero));
    assert!(
        matches!(open(envelope, &signer.public_key()), Err(OpenError::Malformed(e)) if e.field == "sequence")
    );

    // The largest sequence a store holds opens; one more is malformed, not a store failure.
    let mut largest = payload(&signer);
    largest.sequence = i64::MAX as u64;
    let envelope = signer.sign(ATTESTATION_CONTEXT, wire::encode_payload(&largest));
    assert!(open(envelope, &signer.public_key()).is_ok());
    for sequence in [1u64 << 63, u64::MAX] {
        let mut past = payload(&signer);
        past.sequence = sequence;
        let envelope = signer.sign(ATTESTATION_CONTEXT, wire::encode_payload(&past));
        assert!(
            matches!(open(envelope, &signer.public_key()), Err(OpenError::Malformed(e)) if e.field == "sequence"),
            "{sequence}"
        );
    }
}

#[test]
fn oversized_payloads_are_refused_before_verification() {
    let signer = signer(1);
    let envelope = signer.sign(ATTESTATION_CONTEXT, vec![0; MAX_PAYLOAD_BYTES + 1]);
    assert_eq!(
        open(envelope, &signer.public_key()),
        Err(OpenError::Oversized(MAX_PAYLOAD_BYTES + 1))
    );
}

#[test]
fn envelope_bytes_round_trip_and_bad_envelopes_are_typed_errors() {
    let signer = signer(1);
    let envelope = seal(&payload(&signer), &signer).unwrap();
    assert_eq!(
        decode_envelope(&encode_envelope(&envelope)),
        Ok(envelope.clone())
    );

    assert!(matches!(
        decode_envelope(&[0xff, 0xff, 0xff]),
        Err(InvalidEnvelope::Decode(_))
    ));
    let mut short_key = envelope.clone();
    short_key.signature.truncate(63);
    assert_eq!(
        decode_envelope(&encode_envelope(&short_key)),
        Err(InvalidEnvelope::SignatureLength(63))
    );
    let bytes = encode_envelope(&envelope);
    // Field 3 (algorithm) is the only varint field; rewrite its value from 1 to 9.
    let position = bytes.windows(2).rposition(|w| w == [0x18, 0x01]).unwrap();
    let mut other_algorithm = bytes.clone();
    other_algorithm[position + 1] = 9;
    assert_eq!(
        decode_envelope(&other_algorithm),
        Err(InvalidEnvelope::Algorithm(9))
    );
}

#[test]
fn envelopes_encode_as_prost_encodes_their_message() {
    let signer = signer(1);
    let sealed = seal(&payload(&signer), &signer).unwrap();
    let mut empty = sealed.clone();
    empty.payload.clear();
    empty.signature.clear();
    let mut long = sealed.clone();
    long.payload = vec![0x5a; MAX_PAYLOAD_BYTES];
    for envelope in [sealed, empty, long] {
        assert_eq!(
            encode_envelope(&envelope),
            prost::Message::encode_to_vec(&envelope_to_wire(&envelope))
        );
    }
}

#[test]
fn pkcs8_keys_round_trip() {
    let pkcs8 = Ed25519Signer::generate_pkcs8().unwrap();
    let signer = Ed25519Signer::from_pkcs8(&pkcs8).unwrap();
    let envelope = seal(&payload(&signer), &signer).unwrap();
    assert!(open(envelope, &signer.public_key()).is_ok());
    assert!(matches!(
        Ed25519Signer::from_pkcs8(b"not a key"),
        Err(KeyError::Pkcs8(_))
    ));
    assert_eq!(
        PublicKey::from_slice(&[0; 31]),
        Err(KeyError::PublicKeyLength(31))
    );
}

#[test]
fn payloads_decode_for_display_without_any_key_and_without_trust() {
    let signer = signer(1);
    let payload = payload(&signer);
    let envelope = seal(&payload, &signer).unwrap();
    assert_eq!(decode_payload_unverified(&envelope).unwrap(), payload);
    // A forged signature still decodes: the function proves nothing, which is why it says so.
    let mut forged = envelope.clone();
    forged.signature[0] ^= 1;
    assert_eq!(decode_payload_unverified(&forged).unwrap(), payload);
    assert!(open(forged, &signer.public_key()).is_err());
    let mut garbage = envelope;
    garbage.payload = vec![0xff; 8];
    assert!(decode_payload_unverified(&garbage).is_err());
}

#[test]
fn public_keys_off_the_curve_or_of_small_order_are_refused() {
    // The identity (y = 1), the point of order 2 (y = -1) and one of order 4 (y = 0): anyone
    // can make signatures that verify under them.
    let mut minus_one = [0xff; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    let mut identity = [0; 32];
    identity[0] = 1;
    for weak in [identity, minus_one, [0; 32]] {
        assert_eq!(PublicKey::from_slice(&weak), Err(KeyError::WeakPublicKey));
    }
    let mut off_curve = [0; 32];
    off_curve[0] = 2;
    assert_eq!(PublicKey::from_slice(&off_curve), Err(KeyError::NotOnCurve));
    let signer = signer(1);
    assert_eq!(
        PublicKey::from_slice(signer.public_key().as_bytes()),
        Ok(signer.public_key())
    );
}

#[test]
fn unframed_signatures_verify_over_the_bare_message_and_never_over_a_context() {
    // What keeps an unframed signature from passing for a framed one: every context ends in
    // NUL, and no unframed message may hold one.
    for context in [
        ATTESTATION_CONTEXT,
        CHALLENGE_CONTEXT,
        proto_evidence::TREE_HEAD_CONTEXT,
        proto_evidence::REPORT_CONTEXT,
    ] {
        assert_eq!(context.last(), Some(&0));
    }
    let signer = signer(7);
    let text = b"veu-attest.example/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    let signature = signer.sign_unframed(text).unwrap();
    UnparsedPublicKey::new(&ED25519, signer.public_key().as_bytes())
        .verify(text, &signature)
        .unwrap();
    assert_eq!(signer.sign_unframed(b"veu-attest/v1/tree-head\0\x01"), None);
    assert_eq!(signer.sign_unframed(&[0]), None);
}

/// A change to the test payload.
type Change = fn(&mut AttestationPayload);

/// Signs `change(payload)` and opens it: the decoder's answer to those exact bytes.
fn open_changed(
    change: impl FnOnce(&mut AttestationPayload),
) -> Result<VerifiedAttestation, OpenError> {
    let signer = signer(1);
    let mut changed = payload(&signer);
    change(&mut changed);
    let envelope = seal(&changed, &signer).unwrap();
    open(envelope, &signer.public_key())
}

#[test]
fn terminal_escapes_in_any_reported_string_are_refused_with_the_field() {
    let title = "NVIDIA H100\u{1b}]0;pwned\u{7}";
    let Err(OpenError::Malformed(error)) = open_changed(|p| p.devices[2].name = title.into())
    else {
        panic!("an OSC title sequence in a device name must be refused");
    };
    assert_eq!(error.field, "devices.name");
    assert_eq!(
        error.reason,
        "device with NVML index 2: holds the control character U+001B at byte 11"
    );
    let cases: [(&str, Change); 12] = [
        ("devices.name", |p| p.devices[0].name = "\u{1b}[2J".into()),
        ("devices.uuid", |p| {
            p.devices[1].uuid = "GPU-1\u{9b}2J".into()
        }),
        ("devices.serial", |p| p.devices[1].serial = "1\r2".into()),
        ("devices.board_part_number", |p| {
            p.devices[1].board_part_number = "\u{7f}".into()
        }),
        ("devices.pci_bus_id", |p| {
            p.devices[1].pci_bus_id = "0\n1".into()
        }),
        ("devices.vbios_version", |p| {
            p.devices[1].vbios_version = "96\u{0}".into()
        }),
        ("devices.faults.message", |p| {
            p.devices[3].faults[0].message = "lost\u{1b}[1A".into()
        }),
        ("devices.faults.query", |p| {
            p.devices[3].faults[0].query = "\u{202E}q".into()
        }),
        ("host_id", |p| p.host_id = HostId("node\u{1b}[31m".into())),
        ("site_id", |p| p.site_id = SiteId("site\u{2067}".into())),
        ("agent_version", |p| p.agent_version = "0.1\u{8}".into()),
        ("driver_version", |p| p.driver_version = "550\t1".into()),
    ];
    for (field, change) in cases {
        match open_changed(change) {
            Err(OpenError::Malformed(error)) => assert_eq!(error.field, field, "{error}"),
            other => panic!("{field}: a control character must be refused, got {other:?}"),
        }
    }
}

#[test]
fn over_long_strings_are_refused_at_their_limit_and_not_before() {
    let at_limit = open_changed(|p| {
        p.host_id = HostId("h".repeat(256));
        p.devices[0].name = "n".repeat(256);
        p.devices[3].faults[0].message = "m".repeat(1024);
    });
    assert!(at_limit.is_ok(), "{at_limit:?}");
    let cases: [(&str, Change); 4] = [
        ("host_id", |p| p.host_id = HostId("h".repeat(257))),
        ("devices.name", |p| p.devices[0].name = "n".repeat(257)),
        ("devices.faults.message", |p| {
            p.devices[3].faults[0].message = "m".repeat(1025)
        }),
        ("agent_version", |p| p.agent_version = "é".repeat(129)),
    ];
    for (field, change) in cases {
        match open_changed(change) {
            Err(OpenError::Malformed(error)) => {
                assert_eq!(error.field, field);
                assert!(error.reason.contains("-byte limit"), "{error}");
            }
            other => panic!("{field}: an over-long string must be refused, got {other:?}"),
        }
    }
    let Err(OpenError::Malformed(error)) = open_changed(|p| p.site_id = SiteId(String::new()))
    else {
        panic!("an empty site id must be refused");
    };
    assert_eq!(
        (error.field, error.reason.as_str()),
        ("site_id", "is empty")
    );
}

#[test]
fn what_nvml_reports_passes_unchanged() {
    let opened = open_changed(|p| {
        let device = &mut p.devices[0];
        device.name = "NVIDIA GeForce RTX 4090 D".into();
        device.uuid = "GPU-4b7c2a1e-93d8-5f61-0a2b-c3d4e5f60718".into();
        device.serial = "1654922012345".into();
        device.board_part_number = "692-2G520-0200-000".into();
        device.pci_bus_id = "00000000:18:00.0".into();
        device.vbios_version = "96.00.89.00.01".into();
        device.compute_capability = "9.0".into();
        device.architecture = "Hopper".into();
        p.devices[3].faults[0].message =
            "Not Supported (the GPU does not support it) — ‘ECC’".into();
        p.driver_version = "550.54.15".into();
        p.agent_version = "0.1.0 (commit 1a2b3c4)".into();
        p.host_id = HostId("gpu-nœud-01.example".into());
    })
    .unwrap();
    assert_eq!(
        opened.payload().devices[0].name,
        "NVIDIA GeForce RTX 4090 D"
    );
    assert_eq!(opened.payload().host_id.0, "gpu-nœud-01.example");
}

#[test]
fn every_wire_rejection_code_has_one_reason_with_the_same_name() {
    let mut known = 0;
    for code in 0..256 {
        let Ok(wire) = proto_wire::v1::RejectReason::try_from(code) else {
            assert_eq!(reject_reason_from_wire(code), None, "code {code}");
            continue;
        };
        if wire == proto_wire::v1::RejectReason::Unspecified {
            assert_eq!(reject_reason_from_wire(code), None);
            continue;
        }
        let reason = reject_reason_from_wire(code)
            .unwrap_or_else(|| panic!("{} has no reason", wire.as_str_name()));
        assert_eq!(reject_reason_to_wire(reason), code);
        assert_eq!(
            format!("REJECT_REASON_{}", reason.as_str().to_ascii_uppercase()),
            wire.as_str_name()
        );
        known += 1;
    }
    assert_eq!(known, proto_evidence::RejectReason::ALL.len());
}
