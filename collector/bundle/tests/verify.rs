//! Offline verification against real signatures, a real Merkle log and a real report: a clean
//! bundle passes, and each tampering fails with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use collector_bundle::{
    Bundle, Consistency, FORMAT, Head, KnownHead, Leaf, Manifest, Outcome, ReportCheck,
    Requirements, to_hex, verify,
};
use collector_report::{ChangeKind, HostChange, LogEvidence, ReportInput, SignedHead, State};
use proto_accounting::{CountryCode, Policy};
use proto_evidence::{
    AttestationPayload, ChainDigest, DeviceRecord, EvidenceSource, HostId, LogEntry, Sha256,
    SiteId, Totals, TreeHead,
};
use proto_merkle::{MemoryTree, leaf_hash};
use proto_seal::{DetachedSignature, Ed25519Signer};

const DAY: i64 = 86_400_000;
/// 2026-11-01T00:00:00Z.
const NOV: i64 = 1_793_491_200_000;
const POLICY: &str = include_str!("../../../deploy/policies/uveu-2025-us-simulated.toml");

struct Agent {
    signer: Ed25519Signer,
    host: String,
    site: String,
    country: String,
}

fn devices(host: &str, count: u32) -> Vec<DeviceRecord> {
    (0..count)
        .map(|index| DeviceRecord {
            index,
            uuid: format!("GPU-{host}-{index}"),
            serial: format!("SN-{host}-{index}"),
            name: "NVIDIA H100 80GB HBM3".into(),
            pci_device_id: 0x2330_10de,
            architecture: "Hopper".into(),
            catalogue_id: "H100-SXM5-80GB".into(),
            tpp: 15840,
            ..DeviceRecord::default()
        })
        .collect()
}

/// A log written as the collector writes it.
struct Log {
    key: Ed25519Signer,
    tree: MemoryTree,
    leaves: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    heads: Vec<Head>,
    previous: std::collections::BTreeMap<String, (u64, ChainDigest)>,
}

impl Log {
    fn new() -> Self {
        Self {
            key: Ed25519Signer::from_seed(&[200; 32]).unwrap(),
            tree: MemoryTree::new(),
            leaves: Vec::new(),
            heads: Vec::new(),
            previous: Default::default(),
        }
    }

    fn append(&mut self, entry: &LogEntry, envelope: Option<Vec<u8>>) {
        let bytes = entry.encode().unwrap();
        self.tree.push(leaf_hash(&bytes));
        self.leaves.push((bytes, envelope));
    }

    fn enrol(&mut self, agent: &Agent, at_ms: i64) {
        self.append(
            &LogEntry::KeyEnrolled {
                at_ms,
                public_key: *agent.signer.public_key().as_bytes(),
                host_id: agent.host.clone(),
                site_id: agent.site.clone(),
                country: agent.country.clone(),
            },
            None,
        );
    }

    fn payload(&mut self, agent: &Agent, gpus: u32, issued: i64) -> AttestationPayload {
        let (sequence, previous) = self
            .previous
            .get(&agent.host)
            .map_or((1, ChainDigest::GENESIS), |&(s, d)| (s + 1, d));
        let devices = devices(&agent.host, gpus);
        AttestationPayload {
            key_id: agent.signer.key_id(),
            host_id: HostId(agent.host.clone()),
            site_id: SiteId(agent.site.clone()),
            sequence,
            previous_digest: previous,
            issued_at_unix_ms: issued,
            collector_nonce: Vec::new(),
            totals: Totals::of(&devices).unwrap(),
            devices,
            catalogue_digest: String::new(),
            policy_digest: String::new(),
            agent_version: "test".into(),
            source: EvidenceSource::Simulated,
            driver_version: String::new(),
        }
    }

    fn attest(&mut self, agent: &Agent, gpus: u32, issued: i64) {
        let payload = self.payload(agent, gpus, issued);
        let envelope = proto_seal::seal(&payload, &agent.signer).unwrap();
        self.previous.insert(
            agent.host.clone(),
            (payload.sequence, envelope.chain_digest()),
        );
        let bytes = proto_seal::encode_envelope(&envelope);
        self.append(
            &LogEntry::Attestation {
                received_at_ms: issued + 40,
                envelope: Sha256::of(&bytes),
            },
            Some(bytes),
        );
    }

    fn sign_head(&mut self, timestamp_ms: i64) -> SignedHead {
        let size = self.tree.size();
        let root = proto_merkle::root(&self.tree, size).unwrap();
        let head = TreeHead {
            tree_size: size,
            root,
            timestamp_ms,
        };
        let envelope = proto_seal::sign_tree_head(&head, &self.key);
        self.heads.push(Head {
            tree_size: size,
            root: to_hex(&root),
            timestamp_ms,
            envelope: to_hex(&proto_seal::encode_envelope(&envelope)),
        });
        SignedHead {
            tree_size: size,
            root: to_hex(&root),
            timestamp_ms,
            key_id: to_hex(envelope.key_id.0.as_bytes()),
            signature: to_hex(&envelope.signature),
        }
    }

    /// Every leaf from 0 to the last head, proven in it, between the first and last heads.
    fn bundle(&self, from_ms: i64, to_ms: i64) -> Bundle {
        let start = self.heads.first().unwrap().tree_size;
        let end = self.heads.last().unwrap().tree_size;
        let leaves = self
            .leaves
            .iter()
            .take(end as usize)
            .enumerate()
            .map(|(index, (entry, envelope))| Leaf {
                log_index: index as u64,
                entry: to_hex(entry),
                envelope: envelope.as_deref().map(to_hex),
                tree_size: end,
                path: proto_merkle::inclusion_proof(&self.tree, index as u64, end)
                    .unwrap()
                    .iter()
                    .map(|h| to_hex(h))
                    .collect(),
            })
            .collect::<Vec<_>>();
        Bundle {
            manifest: Manifest {
                format: FORMAT.into(),
                from_ms,
                to_ms,
                start_tree_size: start,
                end_tree_size: end,
                leaves: leaves.len() as u64,
                log_key_id: to_hex(self.key.key_id().0.as_bytes()),
            },
            heads: vec![
                self.heads.first().unwrap().clone(),
                self.heads.last().unwrap().clone(),
            ],
            consistency: vec![Consistency {
                first_tree_size: start,
                second_tree_size: end,
                proof: proto_merkle::consistency_proof(&self.tree, start, end)
                    .unwrap()
                    .iter()
                    .map(|h| to_hex(h))
                    .collect(),
            }],
            leaves,
            policy_toml: POLICY.into(),
            catalogue_toml: proto_accounting::catalogue::BUILTIN_TOML.into(),
            checkpoint: None,
            landmarks_toml: None,
            sites_toml: None,
        }
    }
}

fn agent(seed: u8, host: &str, site: &str, country: &str) -> Agent {
    Agent {
        signer: Ed25519Signer::from_seed(&[seed; 32]).unwrap(),
        host: host.into(),
        site: site.into(),
        country: country.into(),
    }
}

/// The report input of `month` as of `as_of_ms` with `heads`, from the changes the collector
/// made of the evidence in `november()`'s log (those before `as_of_ms`).
fn report_input(month: &str, as_of_ms: i64, heads: LogEvidence, log: &Log) -> ReportInput {
    let policy = Policy::from_toml(POLICY).unwrap();
    let change = |at_ms, host: &str, site: &str, country, tpp, kind| HostChange {
        at_ms,
        host_id: host.into(),
        site_id: site.into(),
        country: CountryCode::parse(country).unwrap(),
        tpp,
        hardware_tpp: 0,
        devices: (tpp / 15840) as u32,
        kind,
    };
    let changes = vec![
        // At the ledger's instants: when the collector received each attestation.
        change(
            NOV - 2 * DAY + 40,
            "gpu-us",
            "us-va-1",
            "US",
            126_720,
            ChangeKind::Attested,
        ),
        change(
            NOV + 10 * DAY + 40,
            "gpu-my",
            "my-1",
            "MY",
            15_840,
            ChangeKind::Attested,
        ),
        change(
            NOV + 12 * DAY,
            "gpu-my",
            "my-1",
            "MY",
            0,
            ChangeKind::Decommissioned,
        ),
    ];
    ReportInput {
        month: month.parse().unwrap(),
        as_of_ms,
        policy_id: policy.id.clone(),
        policy_digest: policy.digest().to_string(),
        catalogue_digest: proto_accounting::Catalogue::builtin()
            .unwrap()
            .digest()
            .to_string(),
        policy,
        collector: to_hex(log.key.key_id().0.as_bytes()),
        organisation: None,
        changes: changes.into_iter().filter(|c| c.at_ms < as_of_ms).collect(),
        stale: Vec::new(),
        gaps: Vec::new(),
        conflicts: Vec::new(),
        rejections: Vec::new(),
        log: heads,
        location: None,
    }
}

/// November 2026: a US host all month; a Malaysian host over 7 % from the 10th until it is
/// decommissioned on the 12th.
struct Month {
    log: Log,
    bundle: Bundle,
    report_json: Vec<u8>,
    signature: DetachedSignature,
}

fn november() -> Month {
    let mut log = Log::new();
    let us = agent(1, "gpu-us", "us-va-1", "US");
    let my = agent(2, "gpu-my", "my-1", "MY");
    log.enrol(&us, NOV - 3 * DAY);
    log.attest(&us, 8, NOV - 2 * DAY);
    let start = log.sign_head(NOV - DAY);
    log.attest(&us, 8, NOV + DAY);
    log.enrol(&my, NOV + 9 * DAY);
    log.attest(&my, 1, NOV + 10 * DAY);
    log.attest(&us, 8, NOV + 11 * DAY);
    log.append(
        &LogEntry::HostDecommissioned {
            at_ms: NOV + 12 * DAY,
            host_id: "gpu-my".into(),
        },
        None,
    );
    log.attest(&us, 8, NOV + 20 * DAY);
    let end = log.sign_head(NOV + 30 * DAY + 1);
    let consistency_proof =
        proto_merkle::consistency_proof(&log.tree, start.tree_size, end.tree_size)
            .unwrap()
            .iter()
            .map(|h| to_hex(h))
            .collect();

    let input = report_input(
        "2026-11",
        NOV + 30 * DAY,
        LogEvidence {
            start: Some(start),
            end: Some(end),
            consistency_proof,
            checkpoint: Some(checkpoint(&log, &[])),
        },
        &log,
    );
    let report = collector_report::build(&input).unwrap();
    assert_eq!(report.verdict.state, State::NotCompliant);
    assert_eq!(report.verdict.at_end, State::Compliant);
    let report_json = report.to_json().into_bytes();
    let signature = proto_seal::sign_report(&report_json, &log.key);
    let bundle = log.bundle(NOV - DAY, NOV + 30 * DAY);
    Month {
        log,
        bundle,
        report_json,
        signature,
    }
}

fn codes(month: &Month, bundle: &Bundle, json: &[u8]) -> Vec<&'static str> {
    let outcome = verify(
        bundle,
        &month.log.key.public_key(),
        &Requirements::default(),
        Some(ReportCheck {
            json,
            signature: Some(&month.signature),
        }),
    );
    let mut codes: Vec<&'static str> = outcome.failures.iter().map(|f| f.code).collect();
    codes.dedup();
    codes
}

/// The evidence fails first for `code`. What rested on the bad leaf may fail after it: a leaf
/// not included also leaves its index missing, an enrolment not included leaves its key
/// unknown and its host's decommissioning refused, and the report no longer matches the
/// evidence.
fn first_reason(found: &[&'static str], code: &str) {
    assert_eq!(found.first().copied(), Some(code), "{found:?}");
    let consequences = [
        "leaf_missing",
        "unknown_key",
        "admin_refused",
        "report_mismatch",
    ];
    assert!(
        found[1..].iter().all(|c| consequences.contains(c)),
        "{found:?}"
    );
}

#[test]
fn a_faithful_bundle_and_report_pass() {
    let month = november();
    let outcome = verify(
        &month.bundle,
        &month.log.key.public_key(),
        &Requirements::default(),
        Some(ReportCheck {
            json: &month.report_json,
            signature: Some(&month.signature),
        }),
    );
    assert!(outcome.passed(), "{:#?}", outcome.failures);
    assert_eq!(outcome.attestations, 5);
    assert_eq!(outcome.keys, 2);
    assert_eq!(outcome.distribution.total(), 126_720);
    assert!(outcome.evaluation.unwrap().compliant());
}

#[test]
fn the_bundle_survives_the_disk() {
    let month = november();
    let dir = tempfile::tempdir().unwrap();
    month.bundle.write(dir.path()).unwrap();
    assert_eq!(Bundle::read(dir.path()).unwrap(), month.bundle);
    std::fs::write(dir.path().join("leaves.jsonl"), "{\"log_index\": 1}\n").unwrap();
    let error = Bundle::read(dir.path()).unwrap_err().to_string();
    assert!(error.contains("leaves.jsonl:1:"), "{error}");
}

#[test]
fn one_attestation_removed_fails_as_a_missing_leaf() {
    let month = november();
    let mut bundle = month.bundle.clone();
    bundle.leaves.remove(4);
    first_reason(&codes(&month, &bundle, &month.report_json), "leaf_missing");
}

#[test]
fn one_byte_changed_fails_where_it_was_changed() {
    let month = november();
    // In an attestation's envelope: no longer what the log committed to.
    let mut bundle = month.bundle.clone();
    let envelope = bundle.leaves[4].envelope.as_mut().unwrap();
    let flipped = if envelope.ends_with('0') { '1' } else { '0' };
    envelope.pop();
    envelope.push(flipped);
    first_reason(
        &codes(&month, &bundle, &month.report_json),
        "envelope_mismatch",
    );
    // In a log entry: no longer included in the signed head.
    let mut bundle = month.bundle.clone();
    let entry = &mut bundle.leaves[3].entry;
    entry.replace_range(20..21, if &entry[20..21] == "0" { "1" } else { "0" });
    first_reason(
        &codes(&month, &bundle, &month.report_json),
        "leaf_not_included",
    );
    // In the report: its signature and its figures no longer hold.
    let mut json = month.report_json.clone();
    let at = json.windows(7).position(|w| w == b"126720,").unwrap();
    json[at] = b'2';
    assert_eq!(
        codes(&month, &month.bundle, &json),
        vec!["report_signature", "report_mismatch"]
    );
}

#[test]
fn one_gpu_added_fails_its_signature_or_its_inclusion() {
    let month = november();
    let mut log = Log::new();
    let my = agent(2, "gpu-my", "my-1", "MY");
    // The Malaysian attestation again, now with two GPUs, under the original signature.
    let original = proto_seal::decode_envelope(
        &collector_bundle::from_hex(month.bundle.leaves[4].envelope.as_ref().unwrap()).unwrap(),
    )
    .unwrap();
    let mut inflated = log.payload(&my, 2, NOV + 10 * DAY);
    inflated.sequence = 1;
    let resealed = proto_seal::seal(&inflated, &my.signer).unwrap();
    let forged = proto_evidence::Envelope {
        payload: resealed.payload,
        ..original
    };
    let bytes = proto_seal::encode_envelope(&forged);
    // Only the envelope replaced: not what the log committed to.
    let mut bundle = month.bundle.clone();
    bundle.leaves[4].envelope = Some(to_hex(&bytes));
    first_reason(
        &codes(&month, &bundle, &month.report_json),
        "envelope_mismatch",
    );
    // The log entry rewritten to match: no longer in the signed head.
    let LogEntry::Attestation { received_at_ms, .. } =
        LogEntry::decode(&collector_bundle::from_hex(&bundle.leaves[4].entry).unwrap()).unwrap()
    else {
        panic!("leaf 4 is an attestation");
    };
    let entry = LogEntry::Attestation {
        received_at_ms,
        envelope: Sha256::of(&bytes),
    };
    bundle.leaves[4].entry = to_hex(&entry.encode().unwrap());
    first_reason(
        &codes(&month, &bundle, &month.report_json),
        "leaf_not_included",
    );
}

#[test]
fn a_swapped_head_fails_its_signature_or_consistency() {
    let month = november();
    // A head signed by another key.
    let mut other = Log::new();
    other.key = Ed25519Signer::from_seed(&[201; 32]).unwrap();
    other.leaves = month.log.leaves.clone();
    other.tree = month.log.tree.clone();
    other.sign_head(NOV + 30 * DAY + 1);
    let mut bundle = month.bundle.clone();
    bundle.heads[1] = other.heads[0].clone();
    let found = codes(&month, &bundle, &month.report_json);
    assert!(
        found.starts_with(&["head_signature", "head_missing"]),
        "{found:?}"
    );
    // The start head swapped for a genuine head of the end's size, signed (back-dated) at a
    // time before leaves it holds were received.
    let mut log = november().log;
    let extra = log.sign_head(NOV + 5 * DAY);
    let mut bundle = month.bundle.clone();
    let genuine = log.heads.last().unwrap();
    assert_eq!(genuine.timestamp_ms, extra.timestamp_ms);
    bundle.heads[0] = genuine.clone();
    bundle.manifest.start_tree_size = genuine.tree_size;
    let found = codes(&month, &bundle, &month.report_json);
    assert!(found.contains(&"head_backdated"), "{found:?}");
}

#[test]
fn a_report_the_bundle_does_not_cover_is_refused() {
    let month = november();
    // The same log, exported on the 11th: its end head proves nothing after that.
    let mut early = Log::new();
    for (index, (bytes, envelope)) in month.log.leaves.iter().take(5).enumerate() {
        early.tree.push(leaf_hash(bytes));
        early.leaves.push((bytes.clone(), envelope.clone()));
        if index == 1 {
            early.sign_head(NOV - DAY);
        }
    }
    early.sign_head(NOV + 10 * DAY + 100);
    let bundle = early.bundle(NOV - DAY, NOV + 10 * DAY);
    first_reason(
        &codes(&month, &bundle, &month.report_json),
        "report_not_covered",
    );
}

#[test]
fn a_foreign_log_key_fails_everything() {
    let month = november();
    let stranger = Ed25519Signer::from_seed(&[9; 32]).unwrap().public_key();
    let outcome = verify(&month.bundle, &stranger, &Requirements::default(), None);
    assert!(!outcome.passed());
    assert_eq!(outcome.failures[0].code, "log_key");
}

fn check(month: &Month, bundle: &Bundle, requires: &Requirements) -> Outcome {
    verify(bundle, &month.log.key.public_key(), requires, None)
}

fn failed(outcome: &Outcome) -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = outcome.failures.iter().map(|f| f.code).collect();
    codes.dedup();
    codes
}

/// The Malaysian host's leaves: its enrolment, its attestation and its decommissioning.
const MY_LEAVES: [u64; 3] = [3, 4, 6];

#[test]
fn a_bundle_that_starts_at_its_end_and_drops_a_host_fails() {
    let month = november();
    let mut bundle = month.bundle.clone();
    let end = bundle.manifest.end_tree_size;
    bundle.manifest.start_tree_size = end;
    bundle.heads.retain(|h| h.tree_size == end);
    bundle.consistency.clear();
    bundle.leaves.retain(|l| !MY_LEAVES.contains(&l.log_index));
    bundle.manifest.leaves = bundle.leaves.len() as u64;
    let outcome = check(&month, &bundle, &Requirements::default());
    assert!(!outcome.passed());
    assert_eq!(
        failed(&outcome)[0],
        "leaf_missing",
        "{:#?}",
        outcome.failures
    );
    // And with every leaf of the end head, it passes: the scope is the whole log.
    let mut bundle = month.bundle.clone();
    bundle.manifest.start_tree_size = end;
    assert!(check(&month, &bundle, &Requirements::default()).passed());
}

#[test]
fn a_size_no_head_vouches_for_fails_at_once() {
    let month = november();
    let mut bundle = month.bundle.clone();
    bundle.manifest.end_tree_size = 1 << 40;
    let started = std::time::Instant::now();
    let outcome = check(&month, &bundle, &Requirements::default());
    assert_eq!(failed(&outcome), vec!["head_missing"]);
    // A head the log key did sign over 2^40 leaves, shipped with the few leaves it has.
    let mut log = november().log;
    let huge = TreeHead {
        tree_size: 1 << 40,
        root: [7; 32],
        timestamp_ms: NOV + 30 * DAY + 2,
    };
    let envelope = proto_seal::sign_tree_head(&huge, &log.key);
    log.heads.push(Head {
        tree_size: huge.tree_size,
        root: to_hex(&huge.root),
        timestamp_ms: huge.timestamp_ms,
        envelope: to_hex(&proto_seal::encode_envelope(&envelope)),
    });
    bundle.heads.push(log.heads.last().unwrap().clone());
    let outcome = check(&month, &bundle, &Requirements::default());
    assert!(
        failed(&outcome).contains(&"leaf_missing"),
        "{:#?}",
        outcome.failures
    );
    // Not a timing assertion on the verifier, a guard against the test itself hanging CI.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn the_bundle_claims_and_proves_only_up_to_its_end_head() {
    let month = november();
    let end_head = month.bundle.heads.last().unwrap().timestamp_ms;
    let outcome = check(&month, &month.bundle, &Requirements::default());
    let coverage = outcome.coverage.unwrap();
    assert_eq!(coverage.to_ms, end_head);
    assert_eq!(coverage.first_leaf_ms, Some(NOV - 3 * DAY));
    // The auditor's period ends after the end head: not covered.
    let later = Requirements {
        to_ms: Some(end_head + 1),
        ..Requirements::default()
    };
    assert_eq!(
        failed(&check(&month, &month.bundle, &later)),
        vec!["not_covered"]
    );
    let within = Requirements {
        from_ms: Some(NOV),
        to_ms: Some(end_head),
        ..Requirements::default()
    };
    assert!(check(&month, &month.bundle, &within).passed());
    // A manifest that claims more than its head proves.
    let mut bundle = month.bundle.clone();
    bundle.manifest.to_ms = end_head + DAY;
    assert_eq!(
        failed(&check(&month, &bundle, &Requirements::default())),
        vec!["not_covered"]
    );
}

#[test]
fn a_policy_loosened_under_a_shipped_id_fails_and_pins_are_enforced() {
    let month = november();
    let loosened = POLICY.replace(
        "tier2_country_max_share = 7",
        "tier2_country_max_share = 50",
    );
    assert_ne!(loosened, POLICY, "the policy file names its Tier-2 limit");
    let mut bundle = month.bundle.clone();
    bundle.policy_toml = loosened.clone();
    let outcome = check(&month, &bundle, &Requirements::default());
    assert!(
        failed(&outcome).contains(&"policy_altered"),
        "{:#?}",
        outcome.failures
    );
    let rules = outcome.rules.unwrap();
    assert_eq!(rules.policy_id, "uveu-2025-us-simulated");
    assert_eq!(rules.policy_shipped, None);

    // The faithful bundle names its shipped policy, unpinned.
    let outcome = check(&month, &month.bundle, &Requirements::default());
    let rules = outcome.rules.unwrap();
    assert_eq!(rules.policy_shipped, Some("uveu-2025-us-simulated.toml"));
    assert!(!rules.policy_pinned);
    let digest = Policy::from_toml(POLICY).unwrap().digest().to_string();
    assert_eq!(rules.policy_digest, digest);

    // Pinned to the right digest: pass, pinned. Pinned to production: fail with the reason.
    let pinned = Requirements {
        policy_digest: Some(digest),
        catalogue_digest: Some(rules.catalogue_digest.clone()),
        ..Requirements::default()
    };
    let outcome = check(&month, &month.bundle, &pinned);
    assert!(outcome.passed(), "{:#?}", outcome.failures);
    assert!(outcome.rules.as_ref().unwrap().policy_pinned);
    let production = Policy::from_toml(proto_accounting::policy::UVEU_2025_US_TOML).unwrap();
    let wrong = Requirements {
        policy_digest: Some(production.digest().to_string()),
        ..Requirements::default()
    };
    assert_eq!(
        failed(&check(&month, &month.bundle, &wrong)),
        vec!["policy_not_pinned"]
    );
    // An operator policy under its own id is not "altered", but a pin still catches it.
    let own = loosened.replace("uveu-2025-us-simulated", "acme-lenient");
    let mut bundle = month.bundle.clone();
    bundle.policy_toml = own;
    assert!(check(&month, &bundle, &Requirements::default()).passed());
    assert_eq!(
        failed(&check(&month, &bundle, &pinned)),
        vec!["policy_not_pinned"]
    );
}

#[test]
fn simulated_evidence_under_the_production_policy_fails() {
    let month = november();
    let mut bundle = month.bundle.clone();
    bundle.policy_toml = proto_accounting::policy::UVEU_2025_US_TOML.into();
    let outcome = check(&month, &bundle, &Requirements::default());
    assert!(
        failed(&outcome).contains(&"simulated_evidence"),
        "{:#?}",
        outcome.failures
    );
    // Refused evidence does not count: the recomputed books hold none of it.
    assert_eq!(outcome.distribution.total(), 0);
}

#[test]
fn a_known_head_of_another_history_fails() {
    let month = november();
    // A head of this log that the auditor saw earlier: consistent.
    let mut log = november().log;
    let size = 3;
    let genuine = KnownHead {
        tree_size: size,
        root: proto_merkle::root(&log.tree, size).unwrap(),
        source: "nov-10.json".into(),
    };
    let ok = Requirements {
        known_heads: vec![genuine.clone()],
        ..Requirements::default()
    };
    assert!(check(&month, &month.bundle, &ok).passed());
    // The operator showed that auditor another history of the same size.
    let mut other = Log::new();
    other.leaves = log.leaves.clone();
    other.tree =
        MemoryTree::from_leaves(log.leaves.iter().take(2).map(|(bytes, _)| leaf_hash(bytes)));
    let us = agent(1, "gpu-us", "us-va-1", "US");
    other.attest(&us, 1, NOV - 2 * DAY);
    let split = KnownHead {
        tree_size: size,
        root: proto_merkle::root(&other.tree, size).unwrap(),
        source: "nov-10.json".into(),
    };
    assert_ne!(split.root, genuine.root);
    let requires = Requirements {
        known_heads: vec![split],
        ..Requirements::default()
    };
    assert_eq!(
        failed(&check(&month, &month.bundle, &requires)),
        vec!["known_head_inconsistent"]
    );
    // A head the auditor holds beyond the bundle's end cannot be joined to it.
    log.attest(&us, 8, NOV + 29 * DAY);
    let later = KnownHead {
        tree_size: log.tree.size(),
        root: proto_merkle::root(&log.tree, log.tree.size()).unwrap(),
        source: "dec-01.json".into(),
    };
    let requires = Requirements {
        known_heads: vec![later],
        ..Requirements::default()
    };
    assert_eq!(
        failed(&check(&month, &month.bundle, &requires)),
        vec!["known_head_not_covered"]
    );
}

#[test]
fn known_heads_are_read_from_kept_files_and_must_carry_the_log_signature() {
    let month = november();
    let key = month.log.key.public_key();
    let heads = serde_json::to_string(&month.bundle.heads).unwrap();
    let known = collector_bundle::read_known_heads(&heads, &key, "heads.json").unwrap();
    assert_eq!(known.len(), 2);
    let stranger = Ed25519Signer::from_seed(&[9; 32]).unwrap().public_key();
    let error = collector_bundle::read_known_heads(&heads, &stranger, "heads.json").unwrap_err();
    assert!(
        error.contains("heads.json (head 1)") && error.contains("pinned log key"),
        "{error}"
    );
    let error =
        collector_bundle::read_known_heads("{\"tree_size\": 3}", &key, "h.json").unwrap_err();
    assert!(error.contains("envelope"), "{error}");
}

#[test]
fn two_trees_signed_at_one_size_fail() {
    let month = november();
    let mut other = Log::new();
    let us = agent(1, "gpu-us", "us-va-1", "US");
    for _ in 0..month.bundle.manifest.end_tree_size {
        other.attest(&us, 1, NOV);
    }
    other.sign_head(NOV + 30 * DAY + 1);
    let mut bundle = month.bundle.clone();
    bundle.heads.push(other.heads[0].clone());
    let found = failed(&check(&month, &bundle, &Requirements::default()));
    assert!(found.contains(&"heads_inconsistent"), "{found:?}");
}

/// The month's end head as a checkpoint signed by the log key, cosigned by `witnesses`.
fn checkpoint(log: &Log, witnesses: &[&proto_note::Cosigner]) -> String {
    let signer = Ed25519Signer::from_seed(&[200; 32]).unwrap();
    let public = *signer.public_key().as_bytes();
    let notes = proto_note::LogSigner::new("veu-attest.test/log", public, move |message| {
        signer.sign_unframed(message)
    })
    .unwrap();
    let size = log.heads.last().unwrap().tree_size;
    let mut note = notes
        .sign_checkpoint(size, proto_merkle::root(&log.tree, size).unwrap())
        .unwrap();
    for witness in witnesses {
        let line = witness.cosign(note.text(), 1_796_000_000).unwrap();
        note.add_signature(line).unwrap();
    }
    note.to_string()
}

fn witness(seed: u8, name: &str) -> proto_note::Cosigner {
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
    proto_note::Cosigner::new(proto_note::KeyName::new(name).unwrap(), pair)
}

#[test]
fn pinned_witnesses_must_have_cosigned_the_end_head() {
    let month = november();
    let regulator = witness(31, "witness.regulator.example");
    let auditor = witness(32, "witness.auditor.example");
    let requires = |min| Requirements {
        witnesses: vec![
            regulator.verifier_key().clone(),
            auditor.verifier_key().clone(),
        ],
        min_cosignatures: min,
        ..Requirements::default()
    };
    let mut bundle = month.bundle.clone();
    bundle.checkpoint = Some(checkpoint(&month.log, &[&regulator]));
    let outcome = check(&month, &bundle, &requires(1));
    assert!(outcome.passed(), "{:#?}", outcome.failures);
    assert_eq!(outcome.cosigners.len(), 1);
    assert_eq!(outcome.cosigners[0].witness, "witness.regulator.example");
    assert_eq!(
        failed(&check(&month, &bundle, &requires(2))),
        vec!["witness_cosignatures"]
    );
    // No checkpoint at all, when cosignatures are required.
    let mut bare = month.bundle.clone();
    bare.checkpoint = None;
    assert_eq!(
        failed(&check(&month, &bare, &requires(1))),
        vec!["witness_cosignatures"]
    );
    // A cosignature line altered: it no longer verifies.
    let text = checkpoint(&month.log, &[&regulator]);
    let line = text.lines().last().unwrap();
    let at = line.len() - 10;
    let mut altered = line.to_owned();
    let was = &line[at..=at];
    altered.replace_range(at..=at, if was == "A" { "B" } else { "A" });
    bundle.checkpoint = Some(text.replace(line, &altered));
    let found = failed(&check(&month, &bundle, &requires(1)));
    assert!(found.contains(&"witness_cosignatures"), "{found:?}");
}

#[test]
fn a_split_view_is_not_cosigned() {
    // The operator shows this auditor a second tree of the same size, signed with the same
    // log key. The witnesses cosigned only the first.
    let month = november();
    let regulator = witness(31, "witness.regulator.example");
    let genuine = checkpoint(&month.log, &[&regulator]);
    let mut forged = Log::new();
    let us = agent(1, "gpu-us", "us-va-1", "US");
    forged.enrol(&us, NOV - 3 * DAY);
    forged.attest(&us, 8, NOV - 2 * DAY);
    forged.sign_head(NOV - DAY);
    while forged.leaves.len() < month.log.leaves.len() {
        forged.attest(&us, 8, NOV + forged.leaves.len() as i64 * DAY);
    }
    forged.sign_head(NOV + 30 * DAY + 1);
    let mut bundle = forged.bundle(NOV - DAY, NOV + 30 * DAY);
    let requires = Requirements {
        witnesses: vec![regulator.verifier_key().clone()],
        min_cosignatures: 1,
        ..Requirements::default()
    };
    // On its own, the forged tree is a valid log.
    assert!(check(&month, &bundle, &Requirements::default()).passed());
    // With the genuine cosigned checkpoint, the roots differ.
    bundle.checkpoint = Some(genuine);
    assert_eq!(
        failed(&check(&month, &bundle, &requires)),
        vec!["checkpoint"]
    );
    // With its own checkpoint, no witness cosigned it.
    bundle.checkpoint = Some(checkpoint(&forged, &[]));
    assert_eq!(
        failed(&check(&month, &bundle, &requires)),
        vec!["witness_cosignatures"]
    );
}

const SEP: i64 = NOV - 61 * DAY;

/// The codes `verify` finds for `json` signed as the collector signs it (with the log key: a
/// collector lying under its own key).
fn signed_codes(month: &Month, bundle: &Bundle, json: &[u8]) -> Vec<&'static str> {
    let signature = proto_seal::sign_report(json, &month.log.key);
    let outcome = verify(
        bundle,
        &month.log.key.public_key(),
        &Requirements::default(),
        Some(ReportCheck {
            json,
            signature: Some(&signature),
        }),
    );
    let mut codes: Vec<&'static str> = outcome.failures.iter().map(|f| f.code).collect();
    codes.dedup();
    codes
}

/// A genuine head of the log's first `size` leaves, signed at `timestamp_ms` with the log key.
fn head_of_prefix(month: &Month, size: usize, timestamp_ms: i64) -> SignedHead {
    let mut prefix = Log::new();
    for (bytes, _) in &month.log.leaves[..size] {
        prefix.tree.push(leaf_hash(bytes));
    }
    prefix.sign_head(timestamp_ms)
}

fn with_json(
    report: &collector_report::Report,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    edit(&mut value);
    (serde_json::to_string_pretty(&value).unwrap() + "\n").into_bytes()
}

#[test]
fn a_month_before_any_evidence_is_no_evidence_and_a_compliant_claim_fails() {
    let month = november();
    // September: before the first enrolment. Its end head is the first signed after it.
    let end = head_of_prefix(&month, 2, NOV - DAY);
    let input = report_input(
        "2026-09",
        NOV - 61 * DAY + 30 * DAY,
        LogEvidence {
            start: None,
            end: Some(end),
            consistency_proof: Vec::new(),
            checkpoint: None,
        },
        &month.log,
    );
    let report = collector_report::build(&input).unwrap();
    assert_eq!(report.verdict.state, State::NoEvidence);
    let bundle = month.log.bundle(SEP, NOV + 30 * DAY);
    let honest = report.to_json().into_bytes();
    assert_eq!(signed_codes(&month, &bundle, &honest), Vec::<&str>::new());

    // The same report claiming compliance, signed by the collector: the evidence refutes it.
    let forged = with_json(&report, |v| {
        v["verdict"]["state"] = "compliant".into();
        v["verdict"]["at_end"] = "compliant".into();
        v["verdict"]["evidence_from_ms"] = SEP.into();
    });
    assert_eq!(
        signed_codes(&month, &bundle, &forged),
        vec!["report_mismatch"]
    );
    // Days claimed compliant, the month's verdict left alone: refuted too.
    let forged = with_json(&report, |v| {
        for day in v["daily"].as_array_mut().unwrap() {
            day["state"] = "compliant".into();
        }
    });
    assert_eq!(
        signed_codes(&month, &bundle, &forged),
        vec!["report_mismatch"]
    );
}

#[test]
fn a_report_may_not_claim_time_after_its_end_head() {
    let month = november();
    // Every leaf, in a head signed on the 21st: a partial report as of then passes.
    let head = head_of_prefix(&month, month.log.leaves.len(), NOV + 20 * DAY + 1000);
    let heads = LogEvidence {
        start: None,
        end: Some(head.clone()),
        consistency_proof: Vec::new(),
        checkpoint: None,
    };
    let partial = collector_report::build(&report_input(
        "2026-11",
        head.timestamp_ms,
        heads.clone(),
        &month.log,
    ))
    .unwrap();
    assert!(partial.partial);
    let json = partial.to_json().into_bytes();
    assert_eq!(
        signed_codes(&month, &month.bundle, &json),
        Vec::<&str>::new()
    );

    // As of four days later, with the same head: time the head does not cover.
    let later = collector_report::build(&report_input(
        "2026-11",
        NOV + 25 * DAY,
        heads.clone(),
        &month.log,
    ))
    .unwrap();
    let json = later.to_json().into_bytes();
    assert_eq!(
        signed_codes(&month, &month.bundle, &json),
        vec!["report_as_of"]
    );

    // The whole month claimed (not partial) on that head: refused the same way.
    let whole =
        collector_report::build(&report_input("2026-11", NOV + 30 * DAY, heads, &month.log))
            .unwrap();
    assert!(!whole.partial);
    let json = whole.to_json().into_bytes();
    assert_eq!(
        signed_codes(&month, &month.bundle, &json),
        vec!["report_as_of"]
    );

    // A report without an end head claims time no head covers.
    let json = with_json(&partial, |v| v["log"]["end"] = serde_json::Value::Null);
    assert_eq!(
        signed_codes(&month, &month.bundle, &json),
        vec!["report_as_of"]
    );

    // The as-of instant moved without recomputing: the period no longer matches its figures.
    let json = with_json(&partial, |v| v["as_of_ms"] = (NOV + 20 * DAY).into());
    assert_eq!(
        signed_codes(&month, &month.bundle, &json),
        vec!["report_mismatch"]
    );
}

#[test]
fn a_report_whose_end_head_misses_its_evidence_fails() {
    let month = november();
    // A head after the month's end that holds only the first five leaves: the
    // decommissioning on the 12th (leaf 6) is not in it.
    let short = head_of_prefix(&month, 5, NOV + 30 * DAY + 1);
    let report = collector_report::build(&report_input(
        "2026-11",
        NOV + 30 * DAY,
        LogEvidence {
            start: None,
            end: Some(short),
            consistency_proof: Vec::new(),
            checkpoint: None,
        },
        &month.log,
    ))
    .unwrap();
    let json = report.to_json().into_bytes();
    assert_eq!(
        signed_codes(&month, &month.bundle, &json),
        vec!["report_head_coverage"]
    );
    // Seven leaves are enough: the attestation at leaf 7 changes nothing the report uses.
    let enough = head_of_prefix(&month, 7, NOV + 30 * DAY + 1);
    let report = collector_report::build(&report_input(
        "2026-11",
        NOV + 30 * DAY,
        LogEvidence {
            start: None,
            end: Some(enough),
            consistency_proof: Vec::new(),
            checkpoint: None,
        },
        &month.log,
    ))
    .unwrap();
    let json = report.to_json().into_bytes();
    assert_eq!(
        signed_codes(&month, &month.bundle, &json),
        Vec::<&str>::new()
    );
}

#[test]
fn a_partial_report_needs_the_bundle_only_up_to_its_as_of_instant() {
    let month = november();
    let head = head_of_prefix(&month, month.log.leaves.len(), NOV + 20 * DAY + 1000);
    let partial = collector_report::build(&report_input(
        "2026-11",
        head.timestamp_ms,
        LogEvidence {
            start: None,
            end: Some(head.clone()),
            consistency_proof: Vec::new(),
            checkpoint: None,
        },
        &month.log,
    ))
    .unwrap();
    let json = partial.to_json().into_bytes();
    // The same log, exported with its end head signed at `at`.
    let ending = |at: i64| {
        let mut log = Log::new();
        for (index, (bytes, envelope)) in month.log.leaves.iter().enumerate() {
            log.tree.push(leaf_hash(bytes));
            log.leaves.push((bytes.clone(), envelope.clone()));
            if index == 1 {
                log.sign_head(NOV - DAY);
            }
        }
        log.sign_head(at);
        log.bundle(NOV - DAY, at)
    };
    let bundle = ending(head.timestamp_ms);
    assert_eq!(signed_codes(&month, &bundle, &json), Vec::<&str>::new());
    let bundle = ending(head.timestamp_ms - 1);
    assert_eq!(
        signed_codes(&month, &bundle, &json),
        vec!["report_not_covered"]
    );
}

#[test]
fn a_report_whose_checkpoint_is_not_its_end_head_fails() {
    let month = november();
    let report: collector_report::Report = serde_json::from_slice(&month.report_json).unwrap();
    let text = report.log.checkpoint.clone().unwrap();
    assert!(text.starts_with("veu-attest.test/log\n"), "{text}");
    // The checkpoint of another tree, signed by the same key.
    let mut other = Log::new();
    let us = agent(1, "gpu-us", "us-va-1", "US");
    other.enrol(&us, NOV - 3 * DAY);
    other.sign_head(NOV);
    let forged = with_json(&report, |v| {
        v["log"]["checkpoint"] = checkpoint(&other, &[]).into();
    });
    let found = signed_codes(&month, &month.bundle, &forged);
    assert!(found.contains(&"report_head"), "{found:?}");
    // A checkpoint that is not a signed note at all.
    let forged = with_json(&report, |v| {
        v["log"]["checkpoint"] = "not a checkpoint".into();
    });
    let found = signed_codes(&month, &month.bundle, &forged);
    assert!(found.contains(&"report_head"), "{found:?}");
}

#[path = "verify/location.rs"]
mod location;
