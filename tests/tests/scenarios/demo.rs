//! The README's main job: `veuctl demo` runs the whole pipeline with the real binaries.

use crate::support::binary;

#[test]
fn the_demo_catches_the_breach_and_verifies_its_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let output = std::process::Command::new(binary("veuctl"))
        .args(["demo", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Compliant first, then the Malaysian rebuild breaks exactly the Tier-2 rule.
    assert!(stdout.contains("COMPLIANT: all 4 rules hold"), "{stdout}");
    assert!(
        stdout.contains("VIOLATION caught") && stdout.contains("tier2_country_max_share MY"),
        "{stdout}"
    );
    // Caught within two attestation intervals (the demo's agents attest every 2 s).
    let caught: f64 = stdout
        .split("VIOLATION caught ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|seconds| seconds.parse().ok())
        .unwrap();
    assert!(caught <= 4.0, "caught after {caught} s");
    assert!(stdout.contains("PASS"), "{stdout}");
    // The evidence is verified with the witness's key too, and the witness cosigned it.
    assert!(
        stdout.contains("--witness-key witness.regulator.demo+")
            && stdout.contains("Witnessed veu-attest.demo/log: witness.regulator.demo at"),
        "{stdout}"
    );
    assert!(stdout.contains("[9/9"), "{stdout}");
    for file in [
        "report/report.json",
        "report/report.sig",
        "report/report.html",
        "evidence/leaves.jsonl",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    // Six agents, each with its own key, chain and log.
    let agents = std::fs::read_dir(out.join("agents")).unwrap().count();
    assert_eq!(agents, 6);
    // A second run replaces the first one's directory.
    let again = std::process::Command::new(binary("veuctl"))
        .args(["demo", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(again.status.success());
}
