//! Offline verification of a bundle (and optionally of a monthly report against it).

use std::collections::{BTreeMap, BTreeSet};

use proto_accounting::{Catalogue, Distribution, Evaluation, Policy, evaluate};
use proto_evidence::{LogEntry, TreeHead};
use proto_merkle::Hash;
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
    /// Its evaluation under the bundle's policy.
    pub evaluation: Option<Evaluation>,
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

/// Verifies `bundle` with the log's public key (and `report` against it). Never panics on
/// any input; every problem is a finding.
pub fn verify(bundle: &Bundle, log_key: &PublicKey, report: Option<ReportCheck<'_>>) -> Outcome {
    let mut out = Outcome {
        failures: Vec::new(),
        suppressed: BTreeMap::new(),
        notes: Vec::new(),
        leaves: bundle.leaves.len(),
        attestations: 0,
        keys: 0,
        hosts: 0,
        distribution: Distribution::new(),
        evaluation: None,
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

    // Heads: each signed by the log key.
    let mut roots: BTreeMap<u64, Hash> = BTreeMap::new();
    for head in &bundle.heads {
        match open_head(head, log_key) {
            Ok(signed) => {
                roots.insert(signed.tree_size, signed.root);
            }
            Err(detail) => out.fail(
                "head_signature",
                format!("tree head of size {}: {detail}", head.tree_size),
            ),
        }
    }
    let (start, end) = (manifest.start_tree_size, manifest.end_tree_size);
    if !roots.contains_key(&end) {
        out.fail(
            "head_missing",
            format!("no valid signed head of size {end} (the range's end)"),
        );
    }
    if start > 0 && !roots.contains_key(&start) {
        out.fail(
            "head_missing",
            format!("no valid signed head of size {start} (the range's start)"),
        );
    }
    if start > end {
        out.fail(
            "heads_inconsistent",
            format!("the range starts at size {start}, after its end {end}"),
        );
    }
    // Consistency: the end head extends the start head (nothing was removed or rewritten).
    let mut proven = BTreeSet::new();
    for record in &bundle.consistency {
        let (first, second) = (record.first_tree_size, record.second_tree_size);
        let (Some(old), Some(new)) = (roots.get(&first), roots.get(&second)) else {
            continue;
        };
        let proof: Option<Vec<Hash>> = record.proof.iter().map(|h| hash32(h)).collect();
        let result = proof
            .ok_or_else(|| "a proof hash is not 32 bytes of hex".to_owned())
            .and_then(|proof| {
                proto_merkle::verify_consistency(first, second, old, new, &proof)
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(()) => {
                proven.insert((first, second));
            }
            Err(detail) => out.fail(
                "heads_inconsistent",
                format!("heads {first} -> {second}: {detail}"),
            ),
        }
    }
    if start > 0 && roots.contains_key(&start) && !proven.contains(&(start, end)) {
        out.fail(
            "heads_inconsistent",
            format!("no valid consistency proof from head {start} to head {end}"),
        );
    }

    // Leaves: each included in its head; the range complete.
    let mut entries: BTreeMap<u64, (LogEntry, Option<Vec<u8>>)> = BTreeMap::new();
    for leaf in &bundle.leaves {
        let index = leaf.log_index;
        let Some(bytes) = from_hex(&leaf.entry) else {
            out.fail("leaf_malformed", format!("leaf {index}: entry is not hex"));
            continue;
        };
        let included = match (roots.get(&leaf.tree_size), path(&leaf.path)) {
            (Some(root), Some(path)) => proto_merkle::verify_inclusion(
                &proto_merkle::leaf_hash(&bytes),
                index,
                leaf.tree_size,
                &path,
                root,
            )
            .map_err(|e| e.to_string()),
            (None, _) => Err(format!("no valid signed head of size {}", leaf.tree_size)),
            (_, None) => Err("a path hash is not 32 bytes of hex".to_owned()),
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
    }
    for index in start..end {
        if !entries.contains_key(&index) {
            out.fail(
                "leaf_missing",
                format!("leaf {index} of the range {start}..{end} is missing"),
            );
        }
    }

    let policy = Policy::from_toml(&bundle.policy_toml);
    let catalogue = Catalogue::from_toml(&bundle.catalogue_toml);
    if let Err(e) = &policy {
        out.fail("policy", format!("policy.toml: {e}"));
    }
    if let Err(e) = &catalogue {
        out.fail("catalogue", format!("catalogue.toml: {e}"));
    }

    // Replay in log order through the ledger, the collector's own definition of the books.
    let prices = match (&policy, &catalogue) {
        (Ok(policy), Ok(catalogue)) => Some((policy, catalogue)),
        _ => None,
    };
    let replayed = crate::replay::replay(
        entries
            .iter()
            .map(|(&index, (entry, envelope))| (index, entry, envelope.as_deref())),
        prices,
    );
    for finding in replayed.failures {
        out.fail(finding.code, finding.detail);
    }
    out.notes.extend(replayed.notes);
    out.attestations = replayed.attestations;
    out.keys = replayed.ledger.keys().count();
    out.hosts = replayed.ledger.hosts().count();
    out.distribution = replayed.ledger.distribution().clone();
    if let Ok(policy) = &policy {
        out.evaluation = Some(evaluate(policy, &out.distribution));
    }
    let changes = replayed
        .changes
        .into_iter()
        .zip(replayed.change_leaves)
        .collect();
    if let Some(report) = report
        && let (Ok(policy), Ok(catalogue)) = (&policy, &catalogue)
    {
        crate::report_check::check_report(
            &mut out, bundle, log_key, report, policy, catalogue, changes,
        );
    }
    out
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
