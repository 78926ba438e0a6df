//! Offline verification of a bundle (and optionally of a monthly report against it).

use std::collections::BTreeMap;

use proto_accounting::{Catalogue, Distribution, Evaluation, Policy, evaluate_located};
use proto_evidence::{LogEntry, TreeHead};
use proto_merkle::Hash;
use proto_note::{Checkpoint, KeyName, SignatureType, SignedNote, VerifierKey, VerifyError};
use proto_seal::{DetachedSignature, PublicKey};

use crate::format::Bundle;
use crate::hex::{from_hex, to_hex};

/// Failures listed per kind before the rest are only counted.
const MAX_PER_CODE: usize = 20;

/// One reason a bundle (or report) does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A stable code: `head_signature`, `heads_inconsistent`, `leaf_missing`,
    /// `leaf_not_included`, `leaf_malformed`, `envelope_mismatch`, `unknown_key`,
    /// `bad_signature`, `catalogue_mismatch`, `policy`, `catalogue`, a ledger refusal (the
    /// collector's reason code: `revoked_key`, `key_identity_mismatch`, `site_mismatch`,
    /// `sequence_rollback`, `fork`, `previous_digest_mismatch`, `backdated`, `duplicate_gpu`;
    /// or `enrolment_refused`, `admin_refused`), `report_*`, ...
    pub code: &'static str,
    /// What and where, in words.
    pub detail: String,
}

/// A monthly report to check against the bundle.
#[derive(Debug, Clone, Copy)]
pub struct ReportCheck<'a> {
    /// `report.json`'s exact bytes.
    pub json: &'a [u8],
    /// Its detached signature, when given.
    pub signature: Option<&'a DetachedSignature>,
}

/// What verification found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every failure; empty means PASS.
    pub failures: Vec<Finding>,
    /// Failures beyond `MAX_PER_CODE` of one code, only counted.
    pub suppressed: BTreeMap<&'static str, usize>,
    /// Facts that do not fail verification (sequence gaps the collector recorded, ...).
    pub notes: Vec<String>,
    /// Leaves checked, attestations verified, keys and hosts seen.
    pub leaves: usize,
    pub attestations: usize,
    pub keys: usize,
    pub hosts: usize,
    /// The distribution after the bundle's last leaf, recomputed from the attestations.
    pub distribution: Distribution,
    /// The part of `distribution` whose GPUs held NVIDIA-signed hardware evidence, re-verified
    /// here with the roots the auditor trusts.
    pub hardware: Distribution,
    /// Its evaluation under the bundle's policy.
    pub evaluation: Option<Evaluation>,
    /// The time the signed heads prove the bundle complete for.
    pub coverage: Option<Coverage>,
    /// The rules the bundle was evaluated under, and whether the auditor pinned them.
    pub rules: Option<RulesSeen>,
    /// The bundle's checkpoint: its origin, when it carries one whose log signature holds.
    pub checkpoint_origin: Option<String>,
    /// Pinned witnesses that cosigned the end head.
    pub cosigners: Vec<Cosigner>,
    /// Hosts by location verdict at the end head, recomputed from the logged measurements
    /// with the landmarks trusted here.
    pub location: Option<collector_core::LocationSums>,
    /// Each counting host's location at the end head.
    pub located_hosts: Vec<collector_core::HostLocation>,
    /// Whose landmarks judged the measurements: `pinned` (the auditor's) or `bundle`.
    pub landmarks_from: &'static str,
    /// Measurement leaves seen.
    pub measurements: usize,
}

/// What the auditor requires of a bundle beyond the log key: the period it must cover, the
/// rules it must have been evaluated under, and heads seen earlier that it must extend.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    /// The bundle must prove complete every leaf received before this instant (Unix ms).
    pub to_ms: Option<i64>,
    /// The bundle must start at or before this instant. A bundle always carries the log from
    /// its first leaf, so this only fails a bundle whose manifest starts later.
    pub from_ms: Option<i64>,
    /// `sha256:<hex>` of the policy file the auditor accepts.
    pub policy_digest: Option<String>,
    /// `sha256:<hex>` of the catalogue file the auditor accepts.
    pub catalogue_digest: Option<String>,
    /// Heads of this log the auditor saw earlier: the bundle's log must extend each of them.
    pub known_heads: Vec<KnownHead>,
    /// Witnesses whose cosignatures count (cosignature keys, `name+id+key`).
    pub witnesses: Vec<VerifierKey>,
    /// How many of `witnesses` must have cosigned the bundle's end head.
    pub min_cosignatures: usize,
    /// The roots GPU hardware reports must chain to; `None`: NVIDIA's Device Identity CA.
    pub gpu_roots: Option<proto_gpu_evidence::Trust>,
    /// The landmarks whose round trips count (the auditor's own registry); `None`: the
    /// bundle's `landmarks.toml`, as the collector trusted them.
    pub landmarks: Option<proto_location::Landmarks>,
}

/// A witness's cosignature on the bundle's end head, verified with a pinned key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigner {
    /// The witness's key name.
    pub witness: String,
    /// When it cosigned, POSIX seconds.
    pub timestamp: u64,
}

/// A head of the log an auditor saw earlier (its signature already checked by whoever read
/// it), and where it came from, for the findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHead {
    pub tree_size: u64,
    pub root: Hash,
    pub source: String,
}

/// The period a bundle proves complete: every leaf the collector received before `to_ms` is
/// in its `tree_size` leaves, by the end head the log key signed at `to_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// When the first leaf was received (`None`: an empty log).
    pub first_leaf_ms: Option<i64>,
    /// When the end head was signed.
    pub to_ms: i64,
    pub tree_size: u64,
}

/// The rules a bundle carries, as the verifier read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesSeen {
    pub policy_id: String,
    pub policy_version: u32,
    pub policy_digest: String,
    pub catalogue_digest: String,
    /// The auditor pinned the policy digest and it matched.
    pub policy_pinned: bool,
    /// The auditor pinned the catalogue digest and it matched.
    pub catalogue_pinned: bool,
    /// The policy text is one this release ships (`deploy/policies/`).
    pub policy_shipped: Option<&'static str>,
    /// The catalogue is this release's built-in one.
    pub catalogue_builtin: bool,
}

impl Outcome {
    /// No failure.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.suppressed.is_empty()
    }

    pub(crate) fn fail(&mut self, code: &'static str, detail: String) {
        let listed = self.failures.iter().filter(|f| f.code == code).count();
        if listed < MAX_PER_CODE {
            self.failures.push(Finding { code, detail });
        } else {
            *self.suppressed.entry(code).or_default() += 1;
        }
    }
}

pub(crate) fn hash32(text: &str) -> Option<Hash> {
    from_hex(text)?.try_into().ok()
}

/// Verifies `bundle` with the log's public key against what the auditor `requires` (and
/// `report` against it). Never panics and never loops beyond the bundle's own size on any
/// input; every problem is a finding.
pub fn verify(
    bundle: &Bundle,
    log_key: &PublicKey,
    requires: &Requirements,
    report: Option<ReportCheck<'_>>,
) -> Outcome {
    let mut out = Outcome {
        failures: Vec::new(),
        suppressed: BTreeMap::new(),
        notes: Vec::new(),
        leaves: bundle.leaves.len(),
        attestations: 0,
        keys: 0,
        hosts: 0,
        distribution: Distribution::new(),
        hardware: Distribution::new(),
        evaluation: None,
        coverage: None,
        rules: None,
        checkpoint_origin: None,
        cosigners: Vec::new(),
        location: None,
        located_hosts: Vec::new(),
        landmarks_from: "none",
        measurements: 0,
    };
    let manifest = &bundle.manifest;
    if manifest.log_key_id != to_hex(log_key.key_id().0.as_bytes()) {
        out.fail(
            "log_key",
            format!(
                "the bundle names log key {}, but the pinned key is {}",
                manifest.log_key_id,
                log_key.key_id()
            ),
        );
    }
    let (policy, catalogue) = rules(&mut out, bundle, requires);

    // Heads: each signed by the log key. The end head bounds everything that follows, so a
    // size no signed head vouches for stops verification here.
    let mut heads: BTreeMap<u64, TreeHead> = BTreeMap::new();
    let mut signed_heads = Vec::new();
    for head in &bundle.heads {
        match open_head(head, log_key) {
            Ok(signed) => {
                signed_heads.push(signed);
                if let Some(other) = heads.get(&signed.tree_size)
                    && other.root != signed.root
                {
                    out.fail(
                        "heads_inconsistent",
                        format!(
                            "two signed heads of size {} with different roots: the log key signed two trees",
                            signed.tree_size
                        ),
                    );
                }
                heads.insert(signed.tree_size, signed);
            }
            Err(detail) => out.fail(
                "head_signature",
                format!("tree head of size {}: {detail}", head.tree_size),
            ),
        }
    }
    let (start, end) = (manifest.start_tree_size, manifest.end_tree_size);
    let Some(end_head) = heads.get(&end).copied() else {
        out.fail(
            "head_missing",
            format!("no valid signed head of size {end} (the bundle's end): nothing in it can be checked"),
        );
        return out;
    };
    if start > end {
        out.fail(
            "heads_inconsistent",
            format!("the range starts at size {start}, after its end {end}"),
        );
    }
    if start > 0 && !heads.contains_key(&start) {
        out.fail(
            "head_missing",
            format!("no valid signed head of size {start} (the range's start)"),
        );
    }
    if let Some((&size, _)) = heads.range(end + 1..).next() {
        out.fail(
            "head_beyond_end",
            format!("a signed head of size {size} lies beyond the bundle's end {end}: the bundle stops short of the log it shows"),
        );
    }

    // Leaves: every index 0..end exactly once, each included in the end head. The bundle
    // carries the log from its first leaf, so the verifier rebuilds the tree itself and
    // compares every head (and every head the auditor knows) with the roots it computes.
    let mut entries: BTreeMap<u64, (LogEntry, Option<Vec<u8>>)> = BTreeMap::new();
    let mut hashes: BTreeMap<u64, Hash> = BTreeMap::new();
    for leaf in &bundle.leaves {
        let index = leaf.log_index;
        if index >= end {
            out.fail(
                "leaf_outside_range",
                format!("leaf {index} lies beyond the end head of size {end}"),
            );
            continue;
        }
        let Some(bytes) = from_hex(&leaf.entry) else {
            out.fail("leaf_malformed", format!("leaf {index}: entry is not hex"));
            continue;
        };
        let hash = proto_merkle::leaf_hash(&bytes);
        if leaf.tree_size != end {
            out.fail(
                "leaf_not_included",
                format!(
                    "leaf {index} is proven in a head of size {}, not in the end head of size {end}",
                    leaf.tree_size
                ),
            );
            continue;
        }
        let included = match path(&leaf.path) {
            Some(path) => proto_merkle::verify_inclusion(&hash, index, end, &path, &end_head.root)
                .map_err(|e| e.to_string()),
            None => Err("a path hash is not 32 bytes of hex".to_owned()),
        };
        if let Err(detail) = included {
            out.fail(
                "leaf_not_included",
                format!("leaf {index} is not included in the signed head: {detail}"),
            );
            continue;
        }
        let entry = match LogEntry::decode(&bytes) {
            Ok(entry) => entry,
            Err(e) => {
                out.fail("leaf_malformed", format!("leaf {index}: {e}"));
                continue;
            }
        };
        let envelope = match &leaf.envelope {
            None => None,
            Some(text) => match from_hex(text) {
                Some(bytes) => Some(bytes),
                None => {
                    out.fail(
                        "leaf_malformed",
                        format!("leaf {index}: envelope is not hex"),
                    );
                    continue;
                }
            },
        };
        if entries.insert(index, (entry, envelope)).is_some() {
            out.fail("leaf_malformed", format!("leaf {index} appears twice"));
        }
        hashes.insert(index, hash);
    }
    let present = u64::try_from(entries.len()).unwrap_or(u64::MAX);
    // The tree the bundle's leaves make, when it has them all.
    let tree = if present < end {
        let missing: Vec<u64> = (0..end)
            .filter(|index| !entries.contains_key(index))
            .take(MAX_PER_CODE)
            .collect();
        out.fail(
            "leaf_missing",
            format!(
                "{} of the {end} leaves of the end head are missing (the first: {})",
                end - present,
                missing
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        None
    } else {
        Some(check_prefixes(&mut out, &hashes, &heads, requires, bundle))
    };

    // A head signed at T cannot hold a leaf the collector received after T: such a head was
    // back-dated (or the leaf's time was).
    for head in signed_heads.iter().filter(|h| h.tree_size <= end) {
        let size = head.tree_size;
        if let Some((&index, (entry, _))) = entries
            .range(..size)
            .find(|(_, (entry, _))| entry.at_ms() > head.timestamp_ms)
        {
            out.fail(
                "head_backdated",
                format!(
                    "the head of size {size} is signed at {}, but holds leaf {index}, received at {}",
                    head.timestamp_ms,
                    entry.at_ms()
                ),
            );
        }
    }
    let first_leaf_ms = entries.values().next().map(|(entry, _)| entry.at_ms());
    let coverage = Coverage {
        first_leaf_ms,
        to_ms: end_head.timestamp_ms,
        tree_size: end,
    };
    check_scope(&mut out, manifest, requires, &coverage);
    check_checkpoint(&mut out, bundle, log_key, &end_head, requires);
    out.coverage = Some(coverage);

    // Replay in log order through the ledger, the collector's own definition of the books.
    let prices = match (&policy, &catalogue) {
        (Some(policy), Some(catalogue)) => Some((policy, catalogue)),
        _ => None,
    };
    let nvidia = proto_gpu_evidence::Trust::nvidia();
    let (landmarks, sites) = location_inputs(&mut out, bundle, requires);
    let locating = crate::replay::Locating {
        landmarks: &landmarks,
        sites: &sites,
        rule: policy
            .as_ref()
            .map_or_else(proto_location::LocationRule::default, |p| {
                proto_location::LocationRule::from(&p.location)
            }),
    };
    let mut replayed = crate::replay::replay(
        entries
            .iter()
            .map(|(&index, (entry, envelope))| (index, entry, envelope.as_deref())),
        prices,
        requires.gpu_roots.as_ref().unwrap_or(&nvidia),
        Some(locating),
    );
    out.measurements = replayed.measurements;
    out.location = Some(
        replayed
            .locations
            .sums(&replayed.ledger, &sites, end_head.timestamp_ms),
    );
    out.located_hosts = replayed
        .locations
        .hosts(&replayed.ledger, &sites, end_head.timestamp_ms);
    for finding in replayed.failures {
        out.fail(finding.code, finding.detail);
    }
    out.notes.extend(replayed.notes);
    out.attestations = replayed.attestations;
    out.keys = replayed.ledger.keys().count();
    out.hosts = replayed.ledger.hosts().count();
    out.distribution = replayed.ledger.distribution().clone();
    out.hardware = replayed.ledger.live().hardware_last_known().clone();
    if let Some(policy) = &policy {
        let located = out
            .location
            .as_ref()
            .map(|sums| sums.verified.clone())
            .unwrap_or_default();
        out.evaluation = Some(evaluate_located(policy, &out.distribution, &located));
    }
    let changes = replayed
        .changes
        .into_iter()
        .zip(replayed.change_leaves)
        .collect();
    if let Some(report) = report
        && let (Some(policy), Some(catalogue)) = (&policy, &catalogue)
    {
        // The report's location section, recomputed at its as-of instant from the bundle's
        // leaves as the collector computed it from its log.
        let judged_by = out.landmarks_from;
        let required = policy.location.required_for_tier1;
        let location = |period_start_ms: i64, as_of_ms: i64| {
            (judged_by != "none").then(|| {
                crate::location::located_at(
                    entries.iter().map(|(&index, (entry, _))| (index, entry)),
                    locating,
                    as_of_ms,
                    required.then_some(period_start_ms),
                )
            })
        };
        crate::report_check::check_report(
            &mut out,
            tree.as_ref(),
            log_key,
            report,
            policy,
            catalogue,
            changes,
            &location,
        );
    }
    out
}

/// The landmarks that judge the bundle's measurements (the auditor's, else the bundle's) and
/// the bundle's site registry; an unreadable file is a failure and counts as empty.
fn location_inputs(
    out: &mut Outcome,
    bundle: &Bundle,
    requires: &Requirements,
) -> (proto_location::Landmarks, collector_core::SiteRegistry) {
    let landmarks = match (&requires.landmarks, &bundle.landmarks_toml) {
        (Some(pinned), _) => {
            out.landmarks_from = "pinned";
            pinned.clone()
        }
        (None, Some(text)) => {
            let landmarks = proto_location::Landmarks::from_toml(text).unwrap_or_else(|e| {
                out.fail("landmarks", format!("landmarks.toml: {e}"));
                proto_location::Landmarks::default()
            });
            // A collector that trusts no landmark judges no location; neither does this.
            out.landmarks_from = if landmarks.is_empty() {
                "none"
            } else {
                "bundle"
            };
            landmarks
        }
        (None, None) => {
            out.landmarks_from = "none";
            proto_location::Landmarks::default()
        }
    };
    let sites = match &bundle.sites_toml {
        Some(text) => collector_core::SiteRegistry::from_toml(text).unwrap_or_else(|e| {
            out.fail("sites", format!("sites.toml: {e}"));
            collector_core::SiteRegistry::default()
        }),
        None => collector_core::SiteRegistry::default(),
    };
    (landmarks, sites)
}

/// The bundle's policy and catalogue, checked against what the auditor pinned and against
/// the policies this release ships (an altered policy may not keep a shipped one's id).
fn rules(
    out: &mut Outcome,
    bundle: &Bundle,
    requires: &Requirements,
) -> (Option<Policy>, Option<Catalogue>) {
    let policy = match Policy::from_toml(&bundle.policy_toml) {
        Ok(policy) => Some(policy),
        Err(e) => {
            out.fail("policy", format!("policy.toml: {e}"));
            None
        }
    };
    let catalogue = match Catalogue::from_toml(&bundle.catalogue_toml) {
        Ok(catalogue) => Some(catalogue),
        Err(e) => {
            out.fail("catalogue", format!("catalogue.toml: {e}"));
            None
        }
    };
    let (Some(policy_ok), Some(catalogue_ok)) = (&policy, &catalogue) else {
        return (policy, catalogue);
    };
    let policy_digest = policy_ok.digest().to_string();
    let catalogue_digest = catalogue_ok.digest().to_string();
    let mut seen = RulesSeen {
        policy_id: policy_ok.id.clone(),
        policy_version: policy_ok.version,
        policy_digest: policy_digest.clone(),
        catalogue_digest: catalogue_digest.clone(),
        policy_pinned: false,
        catalogue_pinned: false,
        policy_shipped: None,
        catalogue_builtin: bundle.catalogue_toml == proto_accounting::catalogue::BUILTIN_TOML,
    };
    for (file, text) in proto_accounting::policy::SHIPPED {
        let Ok(shipped) = Policy::from_toml(text) else {
            continue;
        };
        if *text == bundle.policy_toml {
            seen.policy_shipped = Some(file);
        } else if shipped.id == policy_ok.id {
            out.fail(
                "policy_altered",
                format!(
                    "policy.toml calls itself {:?}, the id of the shipped {file} ({}), but its text differs (digest {policy_digest})",
                    shipped.id,
                    shipped.digest()
                ),
            );
        }
    }
    for (what, pinned, actual, flag) in [
        (
            "policy",
            &requires.policy_digest,
            &policy_digest,
            &mut seen.policy_pinned,
        ),
        (
            "catalogue",
            &requires.catalogue_digest,
            &catalogue_digest,
            &mut seen.catalogue_pinned,
        ),
    ] {
        let Some(pinned) = pinned else { continue };
        if pinned.trim().eq_ignore_ascii_case(actual) {
            *flag = true;
        } else {
            out.fail(
                if what == "policy" {
                    "policy_not_pinned"
                } else {
                    "catalogue_not_pinned"
                },
                format!(
                    "the bundle was evaluated under the {what} with digest {actual}; the pinned one is {}",
                    pinned.trim()
                ),
            );
        }
    }
    out.rules = Some(seen);
    (policy, catalogue)
}

/// Every signed head in the bundle and every head the auditor knows must be the root of the
/// same-sized prefix of the bundle's leaves (`hashes` holds all `0..end`).
fn check_prefixes(
    out: &mut Outcome,
    hashes: &BTreeMap<u64, Hash>,
    heads: &BTreeMap<u64, TreeHead>,
    requires: &Requirements,
    bundle: &Bundle,
) -> proto_merkle::MemoryTree {
    let tree = proto_merkle::MemoryTree::from_leaves(hashes.values().copied());
    let end = bundle.manifest.end_tree_size;
    let root_of = |size: u64| proto_merkle::root(&tree, size).ok();
    for (&size, head) in heads.range(..=end) {
        if root_of(size) != Some(head.root) {
            out.fail(
                "heads_inconsistent",
                format!("the signed head of size {size} is not the root of the bundle's first {size} leaves: the log was rewritten"),
            );
        }
    }
    for known in &requires.known_heads {
        if known.tree_size > end {
            out.fail(
                "known_head_not_covered",
                format!(
                    "{}: you hold a head of size {}, but the bundle ends at size {end}; its consistency with your head cannot be shown (ask for a newer export)",
                    known.source, known.tree_size
                ),
            );
        } else if root_of(known.tree_size) != Some(known.root) {
            out.fail(
                "known_head_inconsistent",
                format!(
                    "{}: the head of size {} you hold is not the root of the bundle's first {} leaves: the log you were shown earlier is not this one",
                    known.source, known.tree_size, known.tree_size
                ),
            );
        }
    }
    // The listed consistency proofs add nothing the rebuilt tree does not show, but a wrong
    // one is still a wrong claim.
    for record in &bundle.consistency {
        let (first, second) = (record.first_tree_size, record.second_tree_size);
        let (Some(old), Some(new)) = (heads.get(&first), heads.get(&second)) else {
            continue;
        };
        let proof: Option<Vec<Hash>> = record.proof.iter().map(|h| hash32(h)).collect();
        let result = proof
            .ok_or_else(|| "a proof hash is not 32 bytes of hex".to_owned())
            .and_then(|proof| {
                proto_merkle::verify_consistency(first, second, &old.root, &new.root, &proof)
                    .map_err(|e| e.to_string())
            });
        if let Err(detail) = result {
            out.fail(
                "heads_inconsistent",
                format!("heads {first} -> {second}: {detail}"),
            );
        }
    }
    tree
}

/// The period the manifest claims, and the one the auditor requires, against what the end
/// head proves.
fn check_scope(
    out: &mut Outcome,
    manifest: &crate::format::Manifest,
    requires: &Requirements,
    coverage: &Coverage,
) {
    if manifest.to_ms > coverage.to_ms {
        out.fail(
            "not_covered",
            format!(
                "the manifest claims evidence up to {}, but its end head was signed at {}: nothing proves the log complete after that",
                manifest.to_ms, coverage.to_ms
            ),
        );
    }
    if let Some(to_ms) = requires.to_ms
        && to_ms > coverage.to_ms
    {
        out.fail(
            "not_covered",
            format!(
                "you require evidence up to {to_ms}; the bundle's end head was signed at {}, so it proves nothing complete after that (ask for an export that ends later)",
                coverage.to_ms
            ),
        );
    }
    if let Some(from_ms) = requires.from_ms
        && let Some(to_ms) = requires.to_ms
        && from_ms > to_ms
    {
        out.fail(
            "not_covered",
            format!("the period you require starts at {from_ms}, after its end {to_ms}"),
        );
    }
}

/// The bundle's checkpoint: signed by the log key, of the end head, and cosigned by as many
/// pinned witnesses as the auditor requires.
fn check_checkpoint(
    out: &mut Outcome,
    bundle: &Bundle,
    log_key: &PublicKey,
    end_head: &TreeHead,
    requires: &Requirements,
) {
    let required = requires.min_cosignatures;
    let Some(text) = &bundle.checkpoint else {
        if required > 0 {
            out.fail(
                "witness_cosignatures",
                format!("you require {required} witness cosignature(s), but the bundle carries no checkpoint"),
            );
        }
        return;
    };
    let opened = match open_checkpoint(text, log_key, end_head, &requires.witnesses) {
        Ok(opened) => opened,
        Err((code, detail)) => {
            out.fail(code, format!("checkpoint.txt: {detail}"));
            return;
        }
    };
    out.checkpoint_origin = Some(opened.origin);
    out.cosigners = opened.cosigners;
    if out.cosigners.len() < required {
        out.fail(
            "witness_cosignatures",
            format!(
                "the end head (size {}) is cosigned by {} of the pinned witnesses, you require {required}{}",
                end_head.tree_size,
                out.cosigners.len(),
                if out.cosigners.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({})",
                        out.cosigners
                            .iter()
                            .map(|c| c.witness.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        );
    }
}

/// A checkpoint, opened.
pub(crate) struct OpenedCheckpoint {
    pub origin: String,
    /// The pinned witnesses whose cosignatures verify.
    pub cosigners: Vec<Cosigner>,
}

/// Opens a C2SP checkpoint note that must be `head` signed by the log key (under the note key
/// name = its origin), and collects the cosignatures of `witnesses` on it. `Err` is a finding:
/// `checkpoint` (not the log's, or not this head) or `witness_cosignatures` (a pinned
/// witness's cosignature that does not verify).
pub(crate) fn open_checkpoint(
    text: &str,
    log_key: &PublicKey,
    head: &TreeHead,
    witnesses: &[VerifierKey],
) -> Result<OpenedCheckpoint, (&'static str, String)> {
    let note = SignedNote::parse(text.as_bytes()).map_err(|e| ("checkpoint", e.to_string()))?;
    let checkpoint = Checkpoint::parse(note.text()).map_err(|e| ("checkpoint", e.to_string()))?;
    // The log signs its checkpoints under its origin, with the log key.
    KeyName::new(checkpoint.origin())
        .map_err(|e| e.to_string())
        .and_then(|name| {
            note.verify(&[VerifierKey::new(
                name,
                SignatureType::Ed25519,
                *log_key.as_bytes(),
            )])
            .map_err(|e| e.to_string())
        })
        .map_err(|e| {
            (
                "checkpoint",
                format!("not signed by the pinned log key: {e}"),
            )
        })?;
    if checkpoint.size() != head.tree_size || *checkpoint.root() != head.root {
        return Err((
            "checkpoint",
            format!(
                "a tree of {} leaves with another root than the signed head of {}",
                checkpoint.size(),
                head.tree_size
            ),
        ));
    }
    let witnesses: Vec<VerifierKey> = witnesses
        .iter()
        .filter(|k| k.signature_type() == SignatureType::CosignatureV1)
        .cloned()
        .collect();
    let mut cosigners = Vec::new();
    if !witnesses.is_empty() {
        match note.verify(&witnesses) {
            Ok(verified) => {
                for signature in verified.verified() {
                    cosigners.push(Cosigner {
                        witness: signature.key().name().as_str().to_owned(),
                        timestamp: signature.timestamp().unwrap_or(0),
                    });
                }
            }
            Err(VerifyError::NoKnownSignature { .. }) => {}
            Err(e) => {
                return Err((
                    "witness_cosignatures",
                    format!("a pinned witness's cosignature does not verify: {e}"),
                ));
            }
        }
    }
    Ok(OpenedCheckpoint {
        origin: checkpoint.origin().to_owned(),
        cosigners,
    })
}

fn path(hashes: &[String]) -> Option<Vec<Hash>> {
    hashes.iter().map(|h| hash32(h)).collect()
}

fn open_head(head: &crate::format::Head, log_key: &PublicKey) -> Result<TreeHead, String> {
    let bytes = from_hex(&head.envelope).ok_or("the envelope is not hex")?;
    let envelope = proto_seal::decode_envelope(&bytes).map_err(|e| e.to_string())?;
    let signed = proto_seal::open_tree_head(&envelope, log_key).map_err(|e| e.to_string())?;
    if signed.tree_size != head.tree_size
        || to_hex(&signed.root) != head.root.to_ascii_lowercase()
        || signed.timestamp_ms != head.timestamp_ms
    {
        return Err("the signed size, root or time differs from the listed one".into());
    }
    Ok(signed)
}
