//! A monthly report checked against a bundle: its signature, its heads, and its verdicts
//! recomputed from the bundle's evidence with the report builder itself, over the period the
//! report speaks of (`[period_start_ms, as_of_ms)`), which its signed end head must cover:
//! signed at or after `as_of_ms`, and holding every leaf the recomputation used.

use collector_report::month::format_timestamp;
use collector_report::{HostChange, Report, ReportInput};
use proto_accounting::{Catalogue, Policy};
use proto_evidence::{Envelope, TreeHead};
use proto_seal::PublicKey;

use crate::hex::from_hex;
use crate::verify::{Outcome, ReportCheck, hash32};

/// The report's verdicts recomputed from the bundle's attestations, its heads and signature.
/// `changes` are the replay's host changes, each with the log index of the entry that made it;
/// `location` recomputes the hosts' location verdicts at an instant (and, when the policy
/// requires location verification for Tier 1, their changes since the period's start) from
/// the bundle's leaves.
#[allow(clippy::too_many_arguments)] // each is one input of the check
pub(crate) fn check_report(
    out: &mut Outcome,
    tree: Option<&proto_merkle::MemoryTree>,
    log_key: &PublicKey,
    check: ReportCheck<'_>,
    policy: &Policy,
    catalogue: &Catalogue,
    mut changes: Vec<(HostChange, u64)>,
    location: &dyn Fn(i64, i64) -> Option<collector_report::LocationInput>,
) {
    if let Some(signature) = check.signature
        && let Err(e) = proto_seal::check_report(check.json, signature, log_key)
    {
        out.fail(
            "report_signature",
            format!("report.sig does not verify with the log key: {e}"),
        );
    }
    let report: Report = match serde_json::from_slice(check.json) {
        Ok(report) => report,
        Err(e) => {
            out.fail("report_malformed", format!("report.json: {e}"));
            return;
        }
    };
    if report.policy_digest != policy.digest().to_string() {
        out.fail(
            "report_policy",
            format!(
                "the report was evaluated under policy {}, the bundle carries {}",
                report.policy_digest,
                policy.digest()
            ),
        );
    }
    if report.catalogue_digest != catalogue.digest().to_string() {
        out.fail(
            "report_catalogue",
            format!(
                "the report priced with catalogue {}, the bundle carries {}",
                report.catalogue_digest,
                catalogue.digest()
            ),
        );
    }
    let as_of = report.as_of_ms;
    if as_of <= report.period_start_ms || as_of > report.period_end_ms {
        out.fail(
            "report_as_of",
            format!(
                "the report speaks up to {as_of} ms, outside its month ({}, {}]",
                report.period_start_ms, report.period_end_ms
            ),
        );
        return;
    }
    // What the report speaks of, `[period_start_ms, as_of_ms)`, must be in the bundle: the
    // bundle always starts at the log's first leaf, and its end head proves it complete up to
    // that head's time.
    let covered_to = out.coverage.map_or(i64::MIN, |c| c.to_ms);
    if covered_to < as_of {
        out.fail(
            "report_not_covered",
            format!(
                "the bundle proves the log complete up to {covered_to}, the report speaks of [{}, {as_of})",
                report.period_start_ms
            ),
        );
        return;
    }
    // The report's end head must be a head of the bundle's log (its root is the root of as
    // many of the bundle's leaves), or the report rests on evidence the bundle lacks.
    if let (Some(head), Some(tree)) = (&report.log.end, tree) {
        let root = (head.tree_size <= tree.size())
            .then(|| proto_merkle::root(tree, head.tree_size).ok())
            .flatten();
        if root.map(|r| crate::hex::to_hex(&r)) != Some(head.root.to_ascii_lowercase()) {
            out.fail(
                "report_not_covered",
                format!(
                    "the report's end head (size {}) is not a head of the bundle's log of {} leaves",
                    head.tree_size,
                    tree.size()
                ),
            );
        }
    }
    // The report's own heads must be the log's.
    for (name, head) in [("start", &report.log.start), ("end", &report.log.end)] {
        if let Some(head) = head
            && let Err(detail) = report_head(head, log_key)
        {
            out.fail(
                "report_head",
                format!("the report's {name} tree head: {detail}"),
            );
        }
    }
    // The end head as a checkpoint, when the report carries one: the log's, and that head.
    if let Some(text) = &report.log.checkpoint {
        let head = report.log.end.as_ref().and_then(|h| {
            Some(TreeHead {
                tree_size: h.tree_size,
                root: hash32(&h.root)?,
                timestamp_ms: h.timestamp_ms,
            })
        });
        match head {
            None => out.fail(
                "report_head",
                "the report carries a checkpoint but no end tree head".to_owned(),
            ),
            Some(head) => {
                if let Err((_, detail)) = crate::verify::open_checkpoint(text, log_key, &head, &[])
                {
                    out.fail("report_head", format!("the report's checkpoint: {detail}"));
                }
            }
        }
    }
    // The end head must cover the period: signed at or after its end, with every leaf the
    // recomputation uses. Otherwise the report claims time or evidence its head does not.
    changes.retain(|(change, _)| change.at_ms < as_of);
    changes.sort_by_key(|(change, _)| change.at_ms);
    let needed = changes
        .iter()
        .map(|(_, index)| index + 1)
        .max()
        .unwrap_or(0);
    match &report.log.end {
        None => out.fail(
            "report_as_of",
            "the report has no end tree head: no signed head covers its period".to_owned(),
        ),
        Some(end) => {
            if end.timestamp_ms < as_of {
                out.fail(
                    "report_as_of",
                    format!(
                        "the report speaks up to {} but its end tree head was signed at {}: it \
                         claims time its signed head does not cover",
                        format_timestamp(as_of),
                        format_timestamp(end.timestamp_ms)
                    ),
                );
            }
            if end.tree_size < needed {
                out.fail(
                    "report_head_coverage",
                    format!(
                        "the report's end tree head holds {} leaves, but its period's evidence \
                         runs to leaf {}: evidence the head does not cover",
                        end.tree_size,
                        needed - 1
                    ),
                );
            }
        }
    }
    let input = ReportInput {
        month: report.month,
        as_of_ms: as_of,
        policy: policy.clone(),
        policy_id: report.policy_id.clone(),
        policy_digest: report.policy_digest.clone(),
        catalogue_digest: report.catalogue_digest.clone(),
        collector: report.collector.clone(),
        organisation: report.organisation.clone(),
        changes: changes.into_iter().map(|(change, _)| change).collect(),
        stale: Vec::new(),
        gaps: Vec::new(),
        conflicts: Vec::new(),
        rejections: Vec::new(),
        location: location(report.period_start_ms, as_of),
        log: report.log.clone(),
    };
    if policy.location.required_for_tier1 && out.landmarks_from == "pinned" {
        out.notes.push(
            "the policy counts Tier-1 compute only where landmarks verify it, and this \
             verification judges measurements with the --landmarks registry: verdicts, \
             violations and series recomputed here are what those landmarks support, and may \
             differ from the report's"
                .to_owned(),
        );
    }
    let recomputed = match collector_report::build(&input) {
        Ok(recomputed) => recomputed,
        Err(e) => {
            out.fail(
                "report_mismatch",
                format!("the month cannot be recomputed: {e}"),
            );
            return;
        }
    };
    let period = |r: &Report| (r.period_start_ms, r.period_end_ms, r.as_of_ms, r.partial);
    if period(&recomputed) != period(&report) {
        out.fail(
            "report_mismatch",
            format!(
                "period: the report says (start, end, as_of, partial) = {:?}, its month gives {:?}",
                period(&report),
                period(&recomputed)
            ),
        );
    }
    if recomputed.verdict != report.verdict {
        out.fail(
            "report_mismatch",
            format!(
                "verdict: the report says {:?}, the evidence gives {:?}",
                report.verdict, recomputed.verdict
            ),
        );
    }
    let hardware = |r: &Report| {
        (
            r.end_of_month.hardware_tpp,
            r.end_of_month
                .countries
                .iter()
                .map(|c| (c.country, c.hardware_tpp))
                .collect::<Vec<_>>(),
        )
    };
    if hardware(&recomputed) != hardware(&report) {
        out.fail(
            "report_mismatch",
            format!(
                "hardware-attested TPP at the period's end: the report says {}, the GPU reports re-verified here give {}",
                report.end_of_month.hardware_tpp, recomputed.end_of_month.hardware_tpp
            ),
        );
    }
    let located = |r: &Report| {
        (
            r.end_of_month.location_verified_tpp,
            r.end_of_month
                .countries
                .iter()
                .map(|c| (c.country, c.location_verified_tpp))
                .collect::<Vec<_>>(),
            r.location.clone(),
        )
    };
    if located(&recomputed) != located(&report) {
        let detail = format!(
            "location-verified TPP at the period's end: the report says {}, the measurements re-judged here with {} give {}",
            report.end_of_month.location_verified_tpp,
            match out.landmarks_from {
                "pinned" => "the --landmarks registry",
                _ => "the bundle's landmarks",
            },
            recomputed.end_of_month.location_verified_tpp
        );
        if out.landmarks_from == "pinned" {
            // Judged by other landmarks than the collector's: a difference is expected, and
            // what the auditor's own landmarks show is in the verifier's location lines.
            out.notes.push(detail);
        } else {
            out.fail("report_mismatch", detail);
        }
    }
    if recomputed.violations != report.violations {
        let differs = report
            .violations
            .iter()
            .zip(&recomputed.violations)
            .find(|(reported, evidence)| reported != evidence);
        let detail = match differs {
            Some((reported, evidence)) => format!(
                "violations: the report has {} {} from {} to {:?}, the evidence gives {} {} from {} to {:?}",
                reported.rule.as_str(),
                reported.country.map(|c| c.to_string()).unwrap_or_default(),
                reported.start_ms,
                reported.end_ms,
                evidence.rule.as_str(),
                evidence.country.map(|c| c.to_string()).unwrap_or_default(),
                evidence.start_ms,
                evidence.end_ms
            ),
            None => format!(
                "violations: the report lists {}, the evidence gives {}",
                report.violations.len(),
                recomputed.violations.len()
            ),
        };
        out.fail("report_mismatch", detail);
    }
    let mut series = recomputed.series.clone();
    if report.series.no_compute.is_empty() {
        // Reports made before the field existed leave the blank spans out; they are drawing
        // aids (the days' and the month's states say the same), so only a report that lists
        // them is held to them.
        series.no_compute.clear();
    }
    if series != report.series {
        out.fail(
            "report_mismatch",
            "series: the charts' points differ from the evidence's".to_owned(),
        );
    }
    if recomputed.inventory_changes != report.inventory_changes {
        out.fail(
            "report_mismatch",
            "inventory_changes: differ from the evidence's".to_owned(),
        );
    }
    if recomputed.end_of_month != report.end_of_month {
        out.fail(
            "report_mismatch",
            "end_of_month: the distribution differs from the evidence's".to_owned(),
        );
    }
    for (reported, evidence) in report.daily.iter().zip(&recomputed.daily) {
        if reported != evidence {
            out.fail(
                "report_mismatch",
                format!("daily {}: differs from the evidence", reported.date),
            );
        }
    }
    if report.daily.len() != recomputed.daily.len() {
        out.fail(
            "report_mismatch",
            format!(
                "daily: {} days reported, {} in the period",
                report.daily.len(),
                recomputed.daily.len()
            ),
        );
    }
}

fn report_head(head: &collector_report::SignedHead, log_key: &PublicKey) -> Result<(), String> {
    let root = hash32(&head.root).ok_or("the root is not 32 bytes of hex")?;
    let signature = from_hex(&head.signature).ok_or("the signature is not hex")?;
    let signed = TreeHead {
        tree_size: head.tree_size,
        root,
        timestamp_ms: head.timestamp_ms,
    };
    let envelope = Envelope {
        payload: signed.encode(),
        key_id: log_key.key_id(),
        algorithm: proto_evidence::Algorithm::Ed25519,
        signature,
    };
    proto_seal::open_tree_head(&envelope, log_key)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
