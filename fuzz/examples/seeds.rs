//! Writes the generated seeds of the committed corpus (`fuzz/corpus/<target>/seed-*`): real
//! signed attestations, log leaves, tree heads, gRPC messages, a checkpoint with its witness
//! bodies, a CSR and a certificate, Merkle proofs, and an evidence bundle with its monthly
//! report that pass verification. The keys are the targets' (`veu_fuzz::signer`): seed 1
//! signs attestations, seed 2 is the log key. Text seeds (policies, configurations, fleets)
//! are copies of deploy/ and tests/fixtures/; `fuzz/make-seeds` makes them all.
//!
//! Run by `fuzz/make-seeds`; the output is deterministic but for the
//! CSR and certificate (fresh keys).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use base64::Engine as _;
use collector_bundle::{Bundle, Consistency, FORMAT, Head, Leaf, Manifest, to_hex};
use collector_report::{ChangeKind, HostChange, LogEvidence, ReportInput, SignedHead};
use prost::Message;
use proto_accounting::{Catalogue, CountryCode, Policy};
use proto_evidence::{
    AttestationPayload, ChainDigest, DeviceFault, DeviceRecord, Envelope, EvidenceSource, HostId,
    LogEntry, Sha256, SiteId, Totals, TreeHead,
};
use proto_merkle::{MemoryTree, leaf_hash};
use proto_seal::Ed25519Signer;
use proto_wire::v1;
use veu_fuzz::{SEPARATOR, signer};

/// 2026-11-01T00:00:00Z.
const NOV: i64 = 1_793_491_200_000;
const DAY: i64 = 86_400_000;
const POLICY: &str = include_str!("../../deploy/policies/uveu-2025-us-simulated.toml");
const ORIGIN: &str = "veu-attest.example/log";

fn write(target: &str, name: &str, bytes: impl AsRef<[u8]>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

fn devices(host: &str, count: u32) -> Vec<DeviceRecord> {
    (0..count)
        .map(|index| DeviceRecord {
            index,
            uuid: format!("GPU-{host}-{index}"),
            serial: format!("165522000{index}"),
            board_part_number: "692-2G520-0200-000".into(),
            name: "NVIDIA H100 80GB HBM3".into(),
            pci_bus_id: format!("00000000:{:02x}:00.0", 0x18 + index),
            pci_device_id: 0x2330_10de,
            pci_subsystem_id: 0x16c1_10de,
            architecture: "Hopper".into(),
            catalogue_id: "H100-SXM5-80GB".into(),
            tpp: 15840,
            compute_capability: "9.0".into(),
            memory_total_bytes: 85_520_809_984,
            max_sm_clock_mhz: 1980,
            vbios_version: "96.00.89.00.01".into(),
            faults: if index == 3 {
                vec![DeviceFault {
                    query: "nvmlDeviceGetSerial".into(),
                    message: "Not Supported".into(),
                }]
            } else {
                Vec::new()
            },
            ..DeviceRecord::default()
        })
        .collect()
}

fn payload(
    signer: &Ed25519Signer,
    sequence: u64,
    previous: ChainDigest,
    at_ms: i64,
) -> AttestationPayload {
    let devices = devices("gpu-us", 8);
    AttestationPayload {
        key_id: signer.key_id(),
        host_id: HostId("gpu-us".into()),
        site_id: SiteId("us-va-1".into()),
        sequence,
        previous_digest: previous,
        issued_at_unix_ms: at_ms,
        collector_nonce: vec![7; 16],
        totals: Totals::of(&devices).unwrap(),
        devices,
        catalogue_digest: String::new(),
        policy_digest: String::new(),
        agent_version: "0.1.0".into(),
        source: EvidenceSource::Simulated,
        driver_version: "550.54.15".into(),
    }
}

/// A log as the collector writes it, signed with the log key (seed 2).
struct Log {
    key: Ed25519Signer,
    tree: MemoryTree,
    leaves: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    heads: Vec<(Head, SignedHead)>,
}

impl Log {
    fn append(&mut self, entry: &LogEntry, envelope: Option<Vec<u8>>) {
        let bytes = entry.encode().unwrap();
        self.tree.push(leaf_hash(&bytes));
        self.leaves.push((bytes, envelope));
    }

    fn sign_head(&mut self, timestamp_ms: i64) -> Envelope {
        let size = self.tree.size();
        let root = proto_merkle::root(&self.tree, size).unwrap();
        let head = TreeHead {
            tree_size: size,
            root,
            timestamp_ms,
        };
        let envelope = proto_seal::sign_tree_head(&head, &self.key);
        self.heads.push((
            Head {
                tree_size: size,
                root: to_hex(&root),
                timestamp_ms,
                envelope: to_hex(&proto_seal::encode_envelope(&envelope)),
            },
            SignedHead {
                tree_size: size,
                root: to_hex(&root),
                timestamp_ms,
                key_id: to_hex(envelope.key_id.0.as_bytes()),
                signature: to_hex(&envelope.signature),
            },
        ));
        envelope
    }

    fn checkpoint(&self) -> proto_note::SignedNote {
        // The same log key (seed 2), moved into the signing function.
        let key = signer(2);
        let public = *self.key.public_key().as_bytes();
        let notes =
            proto_note::LogSigner::new(ORIGIN, public, move |message| key.sign_unframed(message))
                .unwrap();
        let size = self.tree.size();
        notes
            .sign_checkpoint(size, proto_merkle::root(&self.tree, size).unwrap())
            .unwrap()
    }
}

fn main() {
    let agent = signer(1);
    let first = proto_seal::seal(
        &payload(&agent, 1, ChainDigest::GENESIS, NOV - 2 * DAY),
        &agent,
    )
    .unwrap();
    let second =
        proto_seal::seal(&payload(&agent, 2, first.chain_digest(), NOV + DAY), &agent).unwrap();

    // envelope, payload
    write("envelope", "sealed", proto_seal::encode_envelope(&first));
    write(
        "envelope",
        "golden",
        include_bytes!("../../proto/seal/tests/fixtures/golden-attestation.envelope"),
    );
    write("payload", "eight-h100", &first.payload);
    let mut empty = payload(&agent, 1, ChainDigest::GENESIS, NOV);
    empty.devices.clear();
    empty.totals = Totals::default();
    write(
        "payload",
        "no-devices",
        &proto_seal::seal(&empty, &agent).unwrap().payload,
    );

    // The log: an enrolment, two attestations, heads after the first and at the end.
    let mut log = Log {
        key: signer(2),
        tree: MemoryTree::new(),
        leaves: Vec::new(),
        heads: Vec::new(),
    };
    let enrolled = LogEntry::KeyEnrolled {
        at_ms: NOV - 3 * DAY,
        public_key: *agent.public_key().as_bytes(),
        host_id: "gpu-us".into(),
        site_id: "us-va-1".into(),
        country: "US".into(),
    };
    log.append(&enrolled, None);
    for (envelope, at_ms) in [(&first, NOV - 2 * DAY), (&second, NOV + DAY)] {
        let bytes = proto_seal::encode_envelope(envelope);
        log.append(
            &LogEntry::Attestation {
                received_at_ms: at_ms + 40,
                envelope: Sha256::of(&bytes),
            },
            Some(bytes),
        );
        if log.heads.is_empty() {
            log.sign_head(NOV - DAY);
        }
    }
    let end_envelope = log.sign_head(NOV + 30 * DAY + 1);

    // log_entry: every kind of leaf, and a tree head.
    for (name, entry) in [
        ("enrolled", enrolled.clone()),
        (
            "attestation",
            LogEntry::Attestation {
                received_at_ms: NOV,
                envelope: Sha256::of(b"envelope"),
            },
        ),
        (
            "revoked",
            LogEntry::KeyRevoked {
                at_ms: NOV,
                key_id: agent.key_id(),
            },
        ),
        (
            "decommissioned",
            LogEntry::HostDecommissioned {
                at_ms: NOV,
                host_id: "gpu-us".into(),
            },
        ),
    ] {
        write("log_entry", name, entry.encode().unwrap());
    }
    write("log_entry", "tree-head", &end_envelope.payload);

    // wire: a selector byte, then the message.
    let framed = |selector: u8, message: &dyn Fn() -> Vec<u8>| {
        let mut bytes = vec![selector];
        bytes.extend(message());
        bytes
    };
    let attestation = v1::AgentMessage {
        message: Some(v1::agent_message::Message::Attestation(
            v1::SignedAttestation {
                envelope: Some(proto_seal::envelope_to_wire(&first)),
            },
        )),
    };
    write(
        "wire",
        "attestation",
        framed(0, &|| attestation.encode_to_vec()),
    );
    let hello = v1::AgentMessage {
        message: Some(v1::agent_message::Message::Hello(v1::Hello {
            protocol_version: 1,
            key_id: agent.key_id().0.as_bytes().to_vec(),
            host_id: "gpu-us".into(),
            agent_version: "0.1.0".into(),
            last_sequence: 1,
            last_digest: first.chain_digest().0.as_bytes().to_vec(),
        })),
    };
    write("wire", "hello", framed(0, &|| hello.encode_to_vec()));
    let challenge = v1::CollectorMessage {
        message: Some(v1::collector_message::Message::Challenge(v1::Challenge {
            nonce: vec![7; 16],
            issued_at_unix_ms: NOV,
            valid_for_seconds: 300,
        })),
    };
    write(
        "wire",
        "challenge",
        framed(1, &|| challenge.encode_to_vec()),
    );
    let (csr, _) = collector_pki::make_csr("gpu-us").unwrap();
    let enroll = v1::EnrollRequest {
        token: "veu-enroll-0123456789abcdef".into(),
        signing_public_key: agent.public_key().as_bytes().to_vec(),
        csr_der: csr.clone(),
        host: Some(v1::HostFacts::default()),
    };
    write("wire", "enroll", framed(2, &|| enroll.encode_to_vec()));
    let stored = v1::StoredAttestation {
        log_index: 1,
        envelope: Some(proto_seal::envelope_to_wire(&first)),
        received_unix_ms: NOV,
        counted_tpp: 126_720,
        counted_devices: 8,
    };
    write("wire", "stored", framed(5, &|| stored.encode_to_vec()));
    let head = v1::SignedTreeHead {
        tree_size: 3,
        root_hash: proto_merkle::root(&log.tree, 3).unwrap().to_vec(),
        timestamp_unix_ms: NOV + 30 * DAY + 1,
        signature: Some(proto_seal::envelope_to_wire(&end_envelope)),
        log_public_key: log.key.public_key().as_bytes().to_vec(),
    };
    write("wire", "tree-head", framed(6, &|| head.encode_to_vec()));
    let leaf = v1::EvidenceItem {
        item: Some(v1::evidence_item::Item::Leaf(v1::LogLeaf {
            log_index: 1,
            entry: log.leaves[1].0.clone(),
            envelope: log.leaves[1].1.clone().unwrap(),
            tree_size: 3,
            audit_path: proto_merkle::inclusion_proof(&log.tree, 1, 3)
                .unwrap()
                .iter()
                .map(|h| h.to_vec())
                .collect(),
        })),
    };
    write("wire", "leaf", framed(8, &|| leaf.encode_to_vec()));

    // note, witness: the end head as a checkpoint, cosigned by a witness.
    let mut note = log.checkpoint();
    write("note", "checkpoint", note.to_string());
    write("note", "vkey", log_verifier_key());
    let witness = proto_note::Cosigner::new(
        proto_note::KeyName::new("witness.example").unwrap(),
        ring::signature::Ed25519KeyPair::from_seed_unchecked(&[31; 32]).unwrap(),
    );
    let line = witness.cosign(note.text(), 1_796_000_000).unwrap();
    write("witness", "cosignatures", line.to_line());
    note.add_signature(line).unwrap();
    write("note", "cosigned", note.to_string());
    let proof = proto_merkle::consistency_proof(&log.tree, 1, 3).unwrap();
    let request = proto_note::AddCheckpointRequest::new(1, proof, log.checkpoint()).unwrap();
    write("witness", "add-checkpoint", request.to_string());
    write("witness", "size", proto_note::format_size_body(3));
    let signer_key = proto_note::SignerKey::from_seed(
        proto_note::KeyName::new("witness.example").unwrap(),
        proto_note::SignatureType::CosignatureV1,
        [31; 32],
    )
    .unwrap();
    write("witness", "signer-key", signer_key.to_secret_string());

    // x509: the CSR, and a certificate issued from it.
    write("x509", "csr", &csr);
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_780_000_000);
    collector_pki::init(dir.path(), &["collector.example".to_owned()], now).unwrap();
    let ca = collector_pki::Ca::load(dir.path()).unwrap();
    let pem = ca
        .sign_csr(&csr, collector_pki::Role::Agent, "gpu-us", now)
        .unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    write(
        "x509",
        "certificate",
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap(),
    );

    // merkle: size, index, a byte, then the real proofs of leaf 2 in 5 and of 3 in 7.
    for (size, index) in [(5u16, 2u16), (7, 3), (300, 255)] {
        let tree =
            MemoryTree::from_leaves((0..u64::from(size)).map(|i| leaf_hash(&i.to_be_bytes())));
        let mut bytes = Vec::new();
        bytes.extend(size.to_le_bytes());
        bytes.extend(index.to_le_bytes());
        bytes.extend([0, 0]);
        for hash in proto_merkle::inclusion_proof(&tree, u64::from(index), u64::from(size)).unwrap()
        {
            bytes.extend(hash);
        }
        write("merkle", &format!("inclusion-{index}-of-{size}"), &bytes);
        let mut bytes = bytes[..6].to_vec();
        for hash in
            proto_merkle::consistency_proof(&tree, u64::from(index), u64::from(size)).unwrap()
        {
            bytes.extend(hash);
        }
        write("merkle", &format!("consistency-{index}-to-{size}"), &bytes);
    }

    // bundle and report: November 2026, one US host, a report that the bundle proves.
    let policy = Policy::from_toml(POLICY).unwrap();
    let (start, end) = (log.heads[0].clone(), log.heads[1].clone());
    let consistency_proof: Vec<String> =
        proto_merkle::consistency_proof(&log.tree, start.0.tree_size, end.0.tree_size)
            .unwrap()
            .iter()
            .map(|h| to_hex(h))
            .collect();
    let change = |at_ms| HostChange {
        at_ms,
        host_id: "gpu-us".into(),
        site_id: "us-va-1".into(),
        country: CountryCode::parse("US").unwrap(),
        tpp: 126_720,
        hardware_tpp: 0,
        devices: 8,
        kind: ChangeKind::Attested,
    };
    let input = ReportInput {
        month: "2026-11".parse().unwrap(),
        as_of_ms: NOV + 30 * DAY,
        policy_id: policy.id.clone(),
        policy_digest: policy.digest().to_string(),
        catalogue_digest: Catalogue::builtin().unwrap().digest().to_string(),
        policy,
        collector: to_hex(log.key.key_id().0.as_bytes()),
        organisation: Some("Example GPU Cloud".into()),
        changes: vec![change(NOV - 2 * DAY + 40), change(NOV + DAY + 40)],
        stale: Vec::new(),
        gaps: Vec::new(),
        conflicts: Vec::new(),
        rejections: Vec::new(),
        log: LogEvidence {
            start: Some(start.1),
            end: Some(end.1),
            consistency_proof: consistency_proof.clone(),
            checkpoint: Some(log.checkpoint().to_string()),
        },
        location: None,
    };
    let report = collector_report::build(&input).unwrap();
    let report_json = report.to_json();
    write("report", "november", &report_json);
    let signature = proto_seal::sign_report(report_json.as_bytes(), &log.key);
    let size = log.tree.size();
    let bundle = Bundle {
        manifest: Manifest {
            format: FORMAT.into(),
            from_ms: NOV - DAY,
            to_ms: NOV + 30 * DAY,
            start_tree_size: start.0.tree_size,
            end_tree_size: size,
            leaves: size,
            log_key_id: to_hex(log.key.key_id().0.as_bytes()),
        },
        heads: vec![start.0.clone(), end.0.clone()],
        consistency: vec![Consistency {
            first_tree_size: start.0.tree_size,
            second_tree_size: size,
            proof: consistency_proof,
        }],
        leaves: log
            .leaves
            .iter()
            .enumerate()
            .map(|(index, (entry, envelope))| Leaf {
                log_index: index as u64,
                entry: to_hex(entry),
                envelope: envelope.as_deref().map(to_hex),
                tree_size: size,
                path: proto_merkle::inclusion_proof(&log.tree, index as u64, size)
                    .unwrap()
                    .iter()
                    .map(|h| to_hex(h))
                    .collect(),
            })
            .collect(),
        policy_toml: POLICY.into(),
        catalogue_toml: proto_accounting::catalogue::BUILTIN_TOML.into(),
        checkpoint: Some(log.checkpoint().to_string()),
        landmarks_toml: None,
        sites_toml: None,
    };
    // Through the bundle's own writer, so the seed is the files `veuctl verify` reads.
    let dir = tempfile::tempdir().unwrap();
    bundle.write(dir.path()).unwrap();
    let file = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let mut files: Vec<Vec<u8>> = [
        "manifest.json",
        "heads.json",
        "consistency.json",
        "leaves.jsonl",
        "policy.toml",
        "catalogue.toml",
        "checkpoint.txt",
    ]
    .iter()
    .map(|name| file(name))
    .collect();
    let outcome = collector_bundle::verify(
        &Bundle::read(dir.path()).unwrap(),
        &log.key.public_key(),
        &collector_bundle::Requirements::default(),
        Some(collector_bundle::ReportCheck {
            json: report_json.as_bytes(),
            signature: Some(&signature),
        }),
    );
    assert!(
        outcome.passed(),
        "the seed bundle must pass: {:#?}",
        outcome.failures
    );
    files.push(report_json.into_bytes());
    files.push(collector_bundle::signature_to_text(&signature).into_bytes());
    files.push(log.checkpoint().to_string().into_bytes());
    write("bundle", "november", files.join(SEPARATOR));
}

/// The log's verifier key as `veuctl` and witnesses pin it.
fn log_verifier_key() -> String {
    proto_note::VerifierKey::new(
        proto_note::KeyName::new(ORIGIN).unwrap(),
        proto_note::SignatureType::Ed25519,
        *signer(2).public_key().as_bytes(),
    )
    .to_string()
}
