//! `veuctl plan` as a process: its JSON against the independent reference's expectations
//! (tests/reference/plan_reference.py), its exit codes, and its handling of bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn veuctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veuctl"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("veuctl runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn plan_json(fleet: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["plan", fleet.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let output = veuctl(&args);
    assert!(
        output.status.success(),
        "{}: {}",
        fleet.display(),
        stderr(&output)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn close(a: &Value, b: &Value) -> bool {
    (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-9
}

/// Compares every field of the SPEC section 5 contract.
fn assert_matches(actual: &Value, expected: &Value, name: &str) {
    for key in [
        "compliant",
        "verdict",
        "total_tpp",
        "new_tier2_country_headroom_tpp",
    ] {
        assert_eq!(actual[key], expected[key], "{name}: {key}");
    }
    for key in ["tier1_share", "home_share"] {
        assert!(
            close(&actual[key], &expected[key]),
            "{name}: {key} {} vs {}",
            actual[key],
            expected[key]
        );
    }
    let countries = actual["countries"].as_array().unwrap();
    let expected_countries = expected["countries"].as_array().unwrap();
    assert_eq!(
        countries.len(),
        expected_countries.len(),
        "{name}: countries"
    );
    for (got, want) in countries.iter().zip(expected_countries) {
        for key in ["country", "tier", "tpp"] {
            assert_eq!(got[key], want[key], "{name}: countries.{key}");
        }
        assert!(
            close(&got["share"], &want["share"]),
            "{name}: share of {}",
            got["country"]
        );
        let h100e = got["tpp"].as_f64().unwrap() / 15840.0;
        assert!(
            (got["h100e"].as_f64().unwrap() - h100e).abs() < 1e-9,
            "{name}: h100e"
        );
    }
    // Order is not part of the contract: compare sorted.
    let pick = |value: &Value, keys: &[&str]| -> Vec<String> {
        let mut items: Vec<String> = value
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                keys.iter()
                    .map(|key| item[*key].to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        items.sort();
        items
    };
    assert_eq!(
        pick(&actual["violations"], &["rule", "country"]),
        pick(&expected["violations"], &["rule", "country"]),
        "{name}: violations"
    );
    assert_eq!(
        pick(&actual["headroom"], &["country", "tpp"]),
        pick(&expected["headroom"], &["country", "tpp"]),
        "{name}: headroom"
    );
    for headroom in actual["headroom"].as_array().unwrap() {
        let tpp = headroom["tpp"].as_u64().unwrap();
        assert_eq!(
            headroom["units"].as_u64().unwrap(),
            tpp / 15840,
            "{name}: units"
        );
    }
    // Remediation: exact TPP and whole units (rounded up) of each least change, per rule.
    let change = ["action", "place", "tpp", "units"];
    assert_eq!(
        pick(
            &actual["remediation"],
            &[
                "rule", "country", change[0], change[1], change[2], change[3]
            ]
        ),
        pick(
            &expected["remediation"],
            &[
                "rule", "country", change[0], change[1], change[2], change[3]
            ]
        ),
        "{name}: remediation"
    );
    for line in actual["remediation"].as_array().unwrap() {
        let h100e = line["tpp"].as_f64().unwrap() / 15840.0;
        assert!(
            (line["h100e"].as_f64().unwrap() - h100e).abs() < 1e-9,
            "{name}: h100e"
        );
    }
    // All at once, in order: Tier 3 emptied first, then the one addition.
    let steps = |value: &Value| -> Option<Vec<String>> {
        value.as_array().map(|plan| {
            plan.iter()
                .map(|step| change.map(|key| step[key].to_string()).join(" "))
                .collect()
        })
    };
    assert_eq!(
        steps(&actual["remediation_all_at_once"]),
        steps(&expected["remediation_all_at_once"]),
        "{name}: remediation_all_at_once"
    );
}

fn fleets_in(dir: &Path) -> Vec<PathBuf> {
    let mut fleets: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "csv"))
        .collect();
    fleets.sort();
    fleets
}

#[test]
fn fixture_fleets_match_the_independent_reference() {
    let dir = repo().join("tests/fixtures/plan");
    let fleets = fleets_in(&dir);
    assert!(fleets.len() >= 17, "fixtures missing in {}", dir.display());
    for fleet in fleets {
        let name = fleet.file_stem().unwrap().to_str().unwrap().to_owned();
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        assert_matches(&plan_json(&fleet, &[]), &expected, &name);
    }
}

#[test]
fn shipped_examples_match_the_independent_reference() {
    let fleets = fleets_in(&repo().join("deploy/examples"));
    let verdicts: Vec<(String, bool)> = fleets
        .iter()
        .map(|fleet| {
            let name = fleet.file_stem().unwrap().to_str().unwrap().to_owned();
            let expected_path =
                repo().join(format!("tests/fixtures/plan/examples/{name}.expected.json"));
            let expected: Value =
                serde_json::from_str(&std::fs::read_to_string(expected_path).unwrap()).unwrap();
            let actual = plan_json(fleet, &[]);
            assert_matches(&actual, &expected, &name);
            (name, actual["compliant"].as_bool().unwrap())
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("compliant".to_owned(), true),
            ("tier2-breach".to_owned(), false),
            ("tier3-presence".to_owned(), false),
        ]
    );
}

#[test]
fn table_shows_verdict_shares_limits_and_headroom_in_units() {
    let output = veuctl(&["plan", "deploy/examples/compliant.csv", "--unit", "H100"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for expected in [
        "Verdict   COMPLIANT",
        "Tier-1 share",
        ">= 75 %",
        "Home share (US)",
        "<= 7 %",
        "MY       Malaysia",
        "H100e more",
        "x H100-SXM5-80GB",
        "eight-GPU nodes",
        "a new Tier-2 country",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let breach = stdout(&veuctl(&["plan", "deploy/examples/tier2-breach.csv"]));
    assert!(breach.contains("NOT COMPLIANT: 1 violation(s)"), "{breach}");
    assert!(breach.contains("MY (Malaysia) holds"), "{breach}");
}

#[test]
fn a_broken_rule_gets_the_least_changes_that_restore_it() {
    let breach = stdout(&veuctl(&[
        "plan",
        "deploy/examples/tier2-breach.csv",
        "--unit",
        "B200",
    ]));
    assert!(!breach.contains("already breaks a rule"), "{breach}");
    for expected in [
        "Remediation: the least change that restores each broken rule",
        "whole units of B200,",
        "Broken rule",
        "MY above 7 %",
        "remove from MY (Malaysia)",
        "or add in any Tier-1 country",
        "Every rule at once",
        "add in US (United States)",
        "Headroom: none until every rule holds again.",
    ] {
        assert!(
            breach.contains(expected),
            "missing {expected:?} in\n{breach}"
        );
    }
    let tier3 = stdout(&veuctl(&["plan", "deploy/examples/tier3-presence.csv"]));
    assert!(tier3.contains("in Tier 3 (none allowed)"), "{tier3}");
    assert!(tier3.contains("remove all from"), "{tier3}");

    // The JSON's units follow --unit, rounded up; compliant fleets have no remediation.
    let json = plan_json(
        Path::new("deploy/examples/tier2-breach.csv"),
        &["--unit", "B200"],
    );
    let per_unit = json["unit"]["tpp"].as_u64().unwrap();
    for line in json["remediation"].as_array().unwrap() {
        let tpp = line["tpp"].as_u64().unwrap();
        assert_eq!(line["units"].as_u64().unwrap(), tpp.div_ceil(per_unit));
    }
    let compliant = plan_json(Path::new("deploy/examples/compliant.csv"), &[]);
    assert_eq!(compliant["remediation"], serde_json::json!([]));
    assert_eq!(compliant["remediation_all_at_once"], Value::Null);
}

#[test]
fn bad_lines_are_all_reported_and_nothing_is_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.csv");
    std::fs::write(
        &fleet,
        "country,count,accelerator\nUS,8,H100\nZZ,8,H100\nUS,eight,H100\nMY,8,H100X\nUS,8,H100\n",
    )
    .unwrap();
    let output = veuctl(&["plan", fleet.to_str().unwrap(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        output.stdout.is_empty(),
        "nothing is evaluated: {}",
        stdout(&output)
    );
    let errors = stderr(&output);
    let path = fleet.display().to_string();
    for expected in [
        format!("{path}:3: \"ZZ\" is not an ISO 3166-1 alpha-2 country code"),
        format!("{path}:4: count \"eight\" is not a whole number"),
        format!("{path}:5: unknown accelerator \"H100X\""),
        "3 bad lines; nothing was evaluated".to_owned(),
    ] {
        assert!(
            errors.contains(&expected),
            "missing {expected:?} in\n{errors}"
        );
    }
}

#[test]
fn a_huge_bad_file_prints_twenty_errors_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("huge.csv");
    let mut text = String::from("country,count,accelerator\n");
    for _ in 0..100_000 {
        text.push_str("ZZ,8,H100\n");
    }
    std::fs::write(&fleet, text).unwrap();
    let output = veuctl(&["plan", fleet.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "{}", stdout(&output));
    let errors = stderr(&output);
    let path = fleet.display().to_string();
    let listed = errors
        .lines()
        .filter(|line| {
            line.starts_with(&format!("{path}:"))
                && line.contains("\"ZZ\" is not an ISO 3166-1 alpha-2 country code")
        })
        .count();
    assert_eq!(listed, 20, "{errors}");
    assert!(errors.contains(&format!("{path}:21: ")), "{errors}");
    assert!(!errors.contains(&format!("{path}:22: ")), "{errors}");
    assert!(errors.contains("… and 99,980 more"), "{errors}");
    assert!(
        errors.contains("100,000 bad lines; nothing was evaluated"),
        "{errors}"
    );
    // Not a terminal: no progress.
    assert!(!errors.contains("reading the fleet"), "{errors}");
}

#[test]
fn progress_goes_to_a_terminal_only() {
    // util-linux `script` gives veuctl a terminal; without it there is nothing to test.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` to make a terminal");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("large.csv");
    let mut text = String::from("country,count,accelerator\n");
    for _ in 0..250_000 {
        text.push_str("US,8,H100\n");
    }
    std::fs::write(&fleet, text).unwrap();
    let command = format!(
        "{} plan {} >/dev/null",
        env!("CARGO_BIN_EXE_veuctl"),
        fleet.display()
    );
    let on_terminal = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(repo())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(on_terminal.status.success(), "{}", stderr(&on_terminal));
    assert!(
        stdout(&on_terminal).contains("reading the fleet: "),
        "{}",
        stdout(&on_terminal)
    );
    let piped = veuctl(&["plan", fleet.to_str().unwrap()]);
    assert!(piped.status.success());
    assert!(stderr(&piped).is_empty(), "{}", stderr(&piped));
}

#[test]
fn a_dash_reads_the_fleet_from_standard_input() {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_veuctl"))
        .args(["plan", "-", "--format", "json"])
        .current_dir(repo())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(b"country,count,accelerator\nUS,8,H100\n")
        .unwrap();
    drop(input);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["fleet"]["file"], "<stdin>");
    assert_eq!(json["fleet"]["rows"], 1);
    assert_eq!(json["verdict"], "compliant");

    let table = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'country,count,accelerator\\nUS,8,H100\\n' | {} plan -",
            env!("CARGO_BIN_EXE_veuctl")
        ))
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(table.status.success(), "{}", stderr(&table));
    assert!(
        stdout(&table).contains("<stdin> (1 row, 1 country)"),
        "{}",
        stdout(&table)
    );
}

#[test]
fn a_reader_that_stops_early_ends_veuctl_quietly() {
    // A real pipe whose reader has gone before veuctl writes, as after `veuctl … | head`.
    for args in [
        &["catalogue"][..],
        &["plan", "deploy/examples/tier2-breach.csv"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = Command::new(env!("CARGO_BIN_EXE_veuctl"))
            .args(args)
            .current_dir(repo())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(141), "{}", stderr(&output));
        assert!(stderr(&output).is_empty(), "{}", stderr(&output));
    }
}

#[test]
fn check_flag_turns_a_violation_into_exit_status_1() {
    assert_eq!(
        veuctl(&["plan", "deploy/examples/tier2-breach.csv"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        veuctl(&["plan", "deploy/examples/tier2-breach.csv", "--check"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        veuctl(&["plan", "deploy/examples/compliant.csv", "--check"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn a_fleet_that_counts_nothing_is_no_compute_and_fails_the_check() {
    // Every row counts 0 TPP (the hosts exist, nothing is counted), and a file with no rows:
    // no rule can be evaluated, so neither is compliant and --check fails.
    for fleet in [
        "tests/fixtures/plan/zero_count_only.csv",
        "tests/fixtures/plan/empty.csv",
    ] {
        let json = plan_json(Path::new(fleet), &[]);
        assert_eq!(json["verdict"], "no_compute", "{fleet}");
        assert_eq!(json["compliant"], false, "{fleet}");
        assert_eq!(json["violations"], serde_json::json!([]), "{fleet}");
        assert_eq!(
            veuctl(&["plan", fleet, "--check"]).status.code(),
            Some(1),
            "{fleet}"
        );
        let table = stdout(&veuctl(&["plan", fleet]));
        assert!(
            table.contains("Verdict   NO COMPUTE: no counted TPP"),
            "{fleet}: {table}"
        );
        assert!(!table.contains("COMPLIANT: all"), "{fleet}: {table}");
        assert!(table.contains("not evaluated"), "{fleet}: {table}");
    }
}

#[test]
fn policy_file_changes_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("kh.csv");
    std::fs::write(&fleet, "country,count,tpp\nUS,95,100\nKH,5,100\n").unwrap();
    let y2025 = plan_json(&fleet, &[]);
    assert_eq!(y2025["violations"][0]["rule"], "tier3_prohibited");
    let y2026 = plan_json(&fleet, &["--policy", "deploy/policies/uveu-2026-us.toml"]);
    assert_eq!(
        y2026["compliant"], true,
        "Cambodia is Tier 2 from February 2026"
    );
    assert_eq!(y2026["policy"]["id"], "uveu-2026-us");

    let german = dir.path().join("de.toml");
    let text = std::fs::read_to_string(repo().join("deploy/policies/uveu-2025-us.toml")).unwrap();
    std::fs::write(
        &german,
        text.replace("headquarters = \"US\"", "headquarters = \"DE\""),
    )
    .unwrap();
    let de = plan_json(&fleet, &["--policy", german.to_str().unwrap()]);
    assert_eq!(de["home_rule"], false);
    assert_eq!(de["home_country"], "DE");
}

#[test]
fn bad_policy_and_unit_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(repo().join("deploy/policies/uveu-2025-us.toml")).unwrap();
    std::fs::write(
        &policy,
        text.replace("\"AU\"", "\"XX\"")
            .replace("version = 1", "version = 0"),
    )
    .unwrap();
    let output = veuctl(&[
        "plan",
        "deploy/examples/compliant.csv",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let errors = stderr(&output);
    assert!(errors.contains("version: must be at least 1"), "{errors}");
    assert!(
        errors.contains("tiers.tier1[1]: \"XX\" is not an ISO 3166-1"),
        "{errors}"
    );

    let output = veuctl(&["plan", "deploy/examples/compliant.csv", "--unit", "H1000"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--unit \"H1000\" is not in the catalogue"));

    let output = veuctl(&["plan", "no/such/fleet.csv"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot read no/such/fleet.csv"));
}

#[test]
fn catalogue_and_policy_commands_describe_the_rules() {
    let catalogue: Value =
        serde_json::from_slice(&veuctl(&["catalogue", "--format", "json"]).stdout).unwrap();
    let h100 = catalogue["accelerators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "H100-SXM5-80GB")
        .unwrap();
    assert_eq!(h100["tpp"], 15840);
    assert!(catalogue["digest"].as_str().unwrap().starts_with("sha256:"));

    let output = veuctl(&["policy", "check", "deploy/policies/uveu-2026-us.toml"]);
    assert!(output.status.success());
    assert!(stdout(&output).contains("uveu-2026-us v1: valid"));
}
