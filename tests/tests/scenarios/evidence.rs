//! Evidence for auditors end to end: a collector process, agents streaming signed attestations,
//! then `veuctl report`, `veuctl evidence export` and `veuctl verify` as an auditor runs them,
//! and each tampering of the bundle or report failing with its reason.

use std::path::Path;

use crate::support::{Collector, date_of, month_of, now_ms, ok};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn an_auditor_reports_exports_and_verifies_and_every_tampering_fails() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(dir.path());
    // Five US hosts and one Malaysian host: 1/6 of the compute in a Tier-2 country.
    collector.loadgen(6, "us-va-1,us-va-1,us-va-1,us-va-1,us-va-1,my-jhb-1", 4);
    let (month, _, _) = month_of(now_ms());
    let log_key = collector.log_pub();
    let log_key = log_key.to_str().unwrap();

    // The report of this month: signed, verified, rendered, and partial: it speaks of the
    // time up to the instant it was made, and of no day after it.
    let first = dir.path().join("report-1");
    let asked = now_ms();
    ok(&collector.veuctl(&[
        "report",
        "--month",
        &month,
        "--out",
        first.to_str().unwrap(),
        "--log-key",
        log_key,
    ]));
    let json = std::fs::read(first.join("report.json")).unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(report["partial"], true);
    let as_of = report["as_of_ms"].as_i64().unwrap();
    assert!(asked <= as_of && as_of <= now_ms(), "{as_of}");
    let daily = report["daily"].as_array().unwrap();
    let (today, month_start) = date_of(as_of);
    assert_eq!(daily.last().unwrap()["date"], today.as_str());
    assert_eq!(
        daily.len() as i64,
        (as_of - month_start) / 86_400_000 + 1,
        "one row per day so far"
    );
    assert_eq!(daily.last().unwrap()["partial"], true);
    assert_eq!(report["verdict"]["state"], "not_compliant");
    assert_eq!(report["verdict"]["at_end"], "not_compliant");
    assert!(report["log"]["end"]["timestamp_ms"].as_i64().unwrap() >= as_of);
    assert_eq!(report["end_of_month"]["total_tpp"], 6 * 8 * 15_840);

    // Last month is over and before any evidence: no evidence, and byte-identical when asked
    // again. Next month has not started: refused.
    let last_month = month_of(month_start - 1).0;
    let mut closed = Vec::new();
    for out in ["last-1", "last-2"] {
        let out = dir.path().join(out);
        ok(&collector.veuctl(&[
            "report",
            "--month",
            &last_month,
            "--out",
            out.to_str().unwrap(),
            "--log-key",
            log_key,
        ]));
        closed.push(std::fs::read(out.join("report.json")).unwrap());
    }
    assert_eq!(closed[0], closed[1]);
    let last: serde_json::Value = serde_json::from_slice(&closed[0]).unwrap();
    assert_eq!(last["partial"], false);
    assert_eq!(last["verdict"]["state"], "no_evidence");
    let (_, _, next_month_start) = month_of(now_ms());
    let next_month = &next_month_start[..7];
    let refused = collector.veuctl(&[
        "report",
        "--month",
        next_month,
        "--out",
        dir.path().join("next").to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("the month {next_month} has not started")),
        "{stderr}"
    );
    assert!(!dir.path().join("next/report.json").exists());

    let html = std::fs::read_to_string(first.join("report.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("https://"));
    assert!(
        std::fs::read_to_string(first.join("report.csv"))
            .unwrap()
            .starts_with("date,country,tier")
    );

    // The evidence of the month, verified offline with the report.
    let bundle = dir.path().join("bundle");
    let exported = collector.export_month(&bundle);
    assert!(exported.contains("leaves"), "{exported}");
    let report_json = first.join("report.json");
    let (status, stdout) = collector.verify(&bundle, &["--report", report_json.to_str().unwrap()]);
    assert_eq!(status, 0, "{stdout}");
    assert!(
        stdout.contains("PASS") && stdout.contains("24 attestations"),
        "{stdout}"
    );

    let leaves = std::fs::read_to_string(bundle.join("leaves.jsonl")).unwrap();
    let lines: Vec<&str> = leaves.lines().collect();
    let attestation = lines
        .iter()
        .position(|l| l.contains("\"envelope\""))
        .unwrap();

    // One attestation removed.
    let removed = dir.path().join("removed");
    copy_dir(&bundle, &removed);
    let mut kept = lines.clone();
    kept.remove(attestation);
    std::fs::write(removed.join("leaves.jsonl"), kept.join("\n") + "\n").unwrap();
    let (status, stdout) = collector.verify(&removed, &["--report", report_json.to_str().unwrap()]);
    assert_eq!(status, 1, "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("leaf_missing"),
        "{stdout}"
    );

    // One byte of an envelope changed.
    let changed = dir.path().join("changed");
    copy_dir(&bundle, &changed);
    let mut leaf: serde_json::Value = serde_json::from_str(lines[attestation]).unwrap();
    let envelope = leaf["envelope"].as_str().unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        &envelope[..envelope.len() - 1],
        if envelope.ends_with('0') { '1' } else { '0' }
    );
    leaf["envelope"] = serde_json::Value::String(flipped);
    let mut edited = lines.clone();
    let leaf_line = leaf.to_string();
    edited[attestation] = &leaf_line;
    std::fs::write(changed.join("leaves.jsonl"), edited.join("\n") + "\n").unwrap();
    let (status, stdout) = collector.verify(&changed, &["--report", report_json.to_str().unwrap()]);
    assert_eq!(status, 1, "{stdout}");
    assert!(stdout.contains("envelope_mismatch"), "{stdout}");

    // A tree head swapped for one claiming another root.
    let swapped = dir.path().join("swapped");
    copy_dir(&bundle, &swapped);
    let mut heads: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("heads.json")).unwrap()).unwrap();
    let last = heads.as_array().unwrap().len() - 1;
    heads[last]["root"] = serde_json::Value::String("00".repeat(32));
    std::fs::write(swapped.join("heads.json"), heads.to_string()).unwrap();
    let (status, stdout) = collector.verify(&swapped, &["--report", report_json.to_str().unwrap()]);
    assert_eq!(status, 1, "{stdout}");
    assert!(stdout.contains("head_signature"), "{stdout}");

    // One GPU added to the report's end-of-month figures.
    let inflated = dir.path().join("inflated");
    copy_dir(&first, &inflated);
    let text = String::from_utf8(json.clone()).unwrap();
    let total = (6 * 8 * 15_840).to_string();
    let more = (6 * 8 * 15_840 + 15_840).to_string();
    std::fs::write(
        inflated.join("report.json"),
        text.replacen(&total, &more, 1),
    )
    .unwrap();
    let (status, stdout) = collector.verify(
        &bundle,
        &["--report", inflated.join("report.json").to_str().unwrap()],
    );
    assert_eq!(status, 1, "{stdout}");
    assert!(
        stdout.contains("report_signature") && stdout.contains("report_mismatch"),
        "{stdout}"
    );

    // A pinned key that is not the collector's fails everything.
    let stranger = "11".repeat(32);
    let output = collector.veuctl(&["verify", bundle.to_str().unwrap(), "--log-key", &stranger]);
    assert_eq!(output.status.code(), Some(1));
}

/// What a hostile operator would try on an auditor who pins only the log key, and what the
/// auditor's pins catch: the period, the rules and a head seen earlier.
#[test]
fn an_auditor_pins_the_period_the_rules_and_a_head_seen_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(dir.path());
    collector.loadgen(3, "us-va-1,us-va-1,my-jhb-1", 2);
    let log_key = collector.log_pub();
    let log_key = log_key.to_str().unwrap();

    // A head the auditor keeps from an earlier visit.
    let kept = dir.path().join("head.json");
    let output = collector.veuctl(&[
        "log",
        "head",
        "--sign-now",
        "--log-key",
        log_key,
        "--format",
        "json",
    ]);
    ok(&output);
    std::fs::write(&kept, &output.stdout).unwrap();

    collector.loadgen(2, "us-va-1,us-va-1", 2);
    let bundle = dir.path().join("bundle");
    collector.export_month(&bundle);
    let kept = kept.to_str().unwrap();
    let (status, stdout) = collector.verify(&bundle, &["--known-head", kept]);
    assert_eq!(status, 0, "{stdout}");
    assert!(
        stdout.contains("Policy    uveu-2025-us-simulated")
            && stdout.contains("NOT pinned")
            && stdout.contains("Covers"),
        "{stdout}"
    );

    // The auditor requires time the bundle's end head does not cover.
    let (status, stdout) = collector.verify(&bundle, &["--to", "2999-01-01"]);
    assert_eq!(status, 1, "{stdout}");
    assert!(stdout.contains("not_covered"), "{stdout}");

    // The collector ran the simulated-evidence policy; an auditor pinning production fails it.
    let production = format!(
        "{}/../deploy/policies/uveu-2025-us.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let (status, stdout) = collector.verify(&bundle, &["--policy", &production]);
    assert_eq!(status, 1, "{stdout}");
    assert!(stdout.contains("policy_not_pinned"), "{stdout}");
    let simulated = production.replace("uveu-2025-us.toml", "uveu-2025-us-simulated.toml");
    let (status, stdout) = collector.verify(&bundle, &["--policy", &simulated]);
    assert_eq!(status, 0, "{stdout}");
    assert!(stdout.contains("(pinned)"), "{stdout}");

    // The operator swaps in the production policy to look strict: its simulated evidence
    // would have been refused, so the recomputed books fail.
    let strict = dir.path().join("strict");
    copy_dir(&bundle, &strict);
    std::fs::copy(&production, strict.join("policy.toml")).unwrap();
    let (status, stdout) = collector.verify(&strict, &[]);
    assert_eq!(status, 1, "{stdout}");
    assert!(stdout.contains("simulated_evidence"), "{stdout}");

    // The operator loosens the Tier-2 limit to 50 % under the shipped id.
    let lenient = dir.path().join("lenient");
    copy_dir(&bundle, &lenient);
    let text = std::fs::read_to_string(bundle.join("policy.toml")).unwrap();
    let loosened = text.replace(
        "tier2_country_max_share = 7",
        "tier2_country_max_share = 50",
    );
    assert_ne!(loosened, text);
    std::fs::write(lenient.join("policy.toml"), loosened).unwrap();
    let (status, stdout) = collector.verify(&lenient, &[]);
    assert_eq!(status, 1, "{stdout}");
    assert!(stdout.contains("policy_altered"), "{stdout}");

    // The bundle claims to end later than its end head, or to be larger than any head.
    let stretched = dir.path().join("stretched");
    copy_dir(&bundle, &stretched);
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("manifest.json")).unwrap())
            .unwrap();
    manifest["end_tree_size"] = serde_json::json!(1u64 << 40);
    std::fs::write(stretched.join("manifest.json"), manifest.to_string()).unwrap();
    let (status, stdout) = collector.verify(&stretched, &[]);
    assert_eq!(status, 1, "{stdout}");
    assert!(stdout.contains("head_missing"), "{stdout}");

    // A kept head whose signed bytes were tampered with is refused as bad input.
    let mut forged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kept).unwrap()).unwrap();
    forged["envelope"] = serde_json::json!("00");
    let forged_path = dir.path().join("forged.json");
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    let output = collector.veuctl(&[
        "verify",
        bundle.to_str().unwrap(),
        "--log-key",
        log_key,
        "--known-head",
        forged_path.to_str().unwrap(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a head that is not signed is bad input"
    );
}
