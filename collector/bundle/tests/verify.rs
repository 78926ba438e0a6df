//! Offline verification against real signatures, a real Merkle log and a real report: a clean
//! bundle passes, and each tampering fails with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use collector_bundle::{
    Bundle, Consistency, FORMAT, Head, Leaf, Manifest, ReportCheck, to_hex, verify,
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
        changes: changes.into_iter().filter(|c| c.at_ms < as_of_ms).collect(),
        stale: Vec::new(),
        gaps: Vec::new(),
        conflicts: Vec::new(),
        rejections: Vec::new(),
        log: heads,
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
        },
        &log,
    );
    let report = collector_report::build(&input).unwrap();
    assert_eq!(report.verdict.state, State::NotCompliant);
    assert_eq!(report.verdict.at_end, State::Compliant);
    let report_json = report.to_json().into_bytes();
    let signature = proto_seal::sign_report(&report_json, &log.key);
    let bundle = log.bundle(NOV - DAY, NOV + 31 * DAY);
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
    // The start head swapped for a genuine head of another size: the proof no longer fits.
    let mut log = november().log;
    let extra = log.sign_head(NOV + 5 * DAY);
    let mut bundle = month.bundle.clone();
    let genuine = log
        .heads
        .iter()
        .find(|h| h.tree_size == extra.tree_size)
        .unwrap();
    bundle.heads[0] = genuine.clone();
    bundle.manifest.start_tree_size = genuine.tree_size;
    let found = codes(&month, &bundle, &month.report_json);
    assert!(found.contains(&"heads_inconsistent"), "{found:?}");
}

#[test]
fn a_report_the_bundle_does_not_cover_is_refused() {
    let month = november();
    let mut bundle = month.bundle.clone();
    bundle.manifest.to_ms = NOV + 10 * DAY;
    first_reason(
        &codes(&month, &bundle, &month.report_json),
        "report_not_covered",
    );
}

#[test]
fn a_foreign_log_key_fails_everything() {
    let month = november();
    let stranger = Ed25519Signer::from_seed(&[9; 32]).unwrap().public_key();
    let outcome = verify(&month.bundle, &stranger, None);
    assert!(!outcome.passed());
    assert_eq!(outcome.failures[0].code, "log_key");
}

const SEP: i64 = NOV - 61 * DAY;

/// The codes `verify` finds for `json` signed as the collector signs it (with the log key: a
/// collector lying under its own key).
fn signed_codes(month: &Month, bundle: &Bundle, json: &[u8]) -> Vec<&'static str> {
    let signature = proto_seal::sign_report(json, &month.log.key);
    let outcome = verify(
        bundle,
        &month.log.key.public_key(),
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
        },
        &month.log,
    );
    let report = collector_report::build(&input).unwrap();
    assert_eq!(report.verdict.state, State::NoEvidence);
    let bundle = month.log.bundle(SEP, NOV + 31 * DAY);
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
        },
        &month.log,
    ))
    .unwrap();
    let json = partial.to_json().into_bytes();
    let mut bundle = month.bundle.clone();
    bundle.manifest.to_ms = head.timestamp_ms;
    assert_eq!(signed_codes(&month, &bundle, &json), Vec::<&str>::new());
    bundle.manifest.to_ms = head.timestamp_ms - 1;
    assert_eq!(
        signed_codes(&month, &bundle, &json),
        vec!["report_not_covered"]
    );
}
