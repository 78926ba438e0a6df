//! A monthly report checked against a bundle: its signature, its heads, and its verdicts
//! recomputed from the bundle's evidence with the report builder itself.

use collector_report::{HostChange, Report, ReportInput};
use proto_accounting::{Catalogue, Policy};
use proto_evidence::{Envelope, TreeHead};
use proto_seal::PublicKey;

use crate::hex::from_hex;
use crate::verify::{Outcome, ReportCheck, hash32};

/// The report's verdicts recomputed from the bundle's attestations, its heads and signature.
pub(crate) fn check_report(
    out: &mut Outcome,
    tree: Option<&proto_merkle::MemoryTree>,
    log_key: &PublicKey,
    check: ReportCheck<'_>,
    policy: &Policy,
    catalogue: &Catalogue,
    mut changes: Vec<HostChange>,
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
    // The report speaks of its month up to its end head (a month still running ends there);
    // the bundle must prove the log complete at least that far. It always starts at the
    // log's first leaf.
    let claimed_to = report.log.end.as_ref().map_or(report.period_end_ms, |h| {
        h.timestamp_ms.min(report.period_end_ms)
    });
    let covered_to = out.coverage.map_or(i64::MIN, |c| c.to_ms);
    if covered_to < claimed_to {
        out.fail(
            "report_not_covered",
            format!(
                "the bundle proves the log complete up to {covered_to}, the report speaks of [{}, {claimed_to})",
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
    changes.retain(|c| c.at_ms < report.period_end_ms);
    changes.sort_by_key(|c| c.at_ms);
    let input = ReportInput {
        month: report.month,
        policy: policy.clone(),
        policy_id: report.policy_id.clone(),
        policy_digest: report.policy_digest.clone(),
        catalogue_digest: report.catalogue_digest.clone(),
        collector: report.collector.clone(),
        changes,
        stale: Vec::new(),
        gaps: Vec::new(),
        conflicts: Vec::new(),
        rejections: Vec::new(),
        log: report.log.clone(),
    };
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
    if recomputed.verdict != report.verdict {
        out.fail(
            "report_mismatch",
            format!(
                "verdict: the report says {:?}, the evidence gives {:?}",
                report.verdict, recomputed.verdict
            ),
        );
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
                "daily: {} days reported, {} in the month",
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
