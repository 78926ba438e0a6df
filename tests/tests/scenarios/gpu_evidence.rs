//! GPU hardware evidence end to end, with the real binaries: the fake NVML library signs
//! attestation reports with device keys of a test device CA made here, `veu-agent` answers the
//! collector's challenges with them, the collector (trusting that CA's root) counts the US
//! host's compute as hardware-attested, the monthly report says so, and the auditor's offline
//! verifier agrees only when given the same root: with NVIDIA's, the report's hardware claim
//! fails.

use std::time::Duration;

use proto_gpu_evidence::testing::{Arch, TestDevice, TestDeviceCa};
use serde_json::{Value, json};

use crate::support::{Agent, Collector, eventually, month_of, now_ms, ok};

const H100_TPP: u64 = 15_840;

/// `country`'s (counted, hardware-attested) TPP in `veuctl audit distribution`.
fn hardware_of(collector: &Collector, country: &str) -> (u64, u64) {
    let output = collector.veuctl(&["audit", "distribution", "--format", "json"]);
    if !output.status.success() {
        return (0, 0);
    }
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    value["hardware"]["countries"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["country"] == country)
        .map_or((0, 0), |c| {
            (
                c["tpp"].as_u64().unwrap_or(0),
                c["hardware_tpp"].as_u64().unwrap_or(0),
            )
        })
}

#[test]
fn gpu_reports_travel_from_the_silicon_to_the_auditors_verifier() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestDeviceCa::generate().unwrap();
    let root = dir.path().join("gpu-root.pem");
    std::fs::write(&root, ca.root_pem()).unwrap();
    let collector = Collector::start_with(
        dir.path(),
        None,
        &format!("\n[gpu_evidence]\nroots = \"{}\"\n", root.display()),
    );
    let chips: Vec<TestDevice> = (0..8)
        .map(|chip| ca.issue(0x5000 + chip, Arch::Hopper).unwrap())
        .collect();
    let _us = Agent::start_edited(
        &collector,
        "gpu-us",
        "us-va-1",
        "dgx-h100.json",
        1000,
        collector.port,
        &|dir, index, device| {
            let (key, chain) = chips[index].to_pkcs8_and_chain();
            let (key_path, chain_path) = (
                dir.join(format!("gpu{index}.pk8")),
                dir.join(format!("gpu{index}-chain.pem")),
            );
            std::fs::write(&key_path, key).unwrap();
            std::fs::write(&chain_path, chain).unwrap();
            device["gpu_evidence"] = json!({
                "device_key_pkcs8": key_path.to_str().unwrap(),
                "chain_pem": chain_path.to_str().unwrap(),
            });
        },
    );
    // A host whose GPUs sign nothing: its compute rests on NVML alone.
    let _my = Agent::start(&collector, "gpu-my", "my-jhb-1", "dgx-h100.json", 1000);
    eventually(
        Duration::from_secs(60),
        "the US host's eight GPUs at the hardware level, the Malaysian host counted",
        || {
            hardware_of(&collector, "US") == (8 * H100_TPP, 8 * H100_TPP)
                && hardware_of(&collector, "MY") == (8 * H100_TPP, 0)
        },
    );
    let status = ok(&collector.veuctl(&["status"]));
    assert!(
        status.contains("Hardware-attested") && status.contains("US: 126,720 TPP of 126,720 TPP"),
        "{status}"
    );

    // The month's report carries the hardware-attested TPP, per country and in total.
    let (month, _, _) = month_of(now_ms());
    let log_key = collector.log_pub();
    let report_dir = dir.path().join("report");
    ok(&collector.veuctl(&[
        "report",
        "--month",
        &month,
        "--out",
        report_dir.to_str().unwrap(),
        "--log-key",
        log_key.to_str().unwrap(),
    ]));
    let report: Value =
        serde_json::from_slice(&std::fs::read(report_dir.join("report.json")).unwrap()).unwrap();
    let end = &report["end_of_month"];
    assert_eq!(end["hardware_tpp"], 8 * H100_TPP, "{end}");
    let html = std::fs::read_to_string(report_dir.join("report.html")).unwrap();
    assert!(html.contains("Hardware-attested"), "the HTML report shows it");

    // The auditor re-verifies every GPU report offline.
    let bundle = dir.path().join("bundle");
    collector.export_month(&bundle);
    let report_json = report_dir.join("report.json");
    let report_json = report_json.to_str().unwrap();
    let (status, stdout) = collector.verify(
        &bundle,
        &["--report", report_json, "--gpu-root", root.to_str().unwrap()],
    );
    assert_eq!(status, 0, "{stdout}");
    assert!(stdout.contains("PASS"), "{stdout}");
    assert!(
        stdout.contains("Hardware  126,720 TPP"),
        "the verifier recomputes the hardware-attested TPP: {stdout}"
    );
    // Trusting only NVIDIA's root, the same evidence holds no hardware-attested compute, and a
    // report claiming some fails.
    let (status, stdout) = collector.verify(&bundle, &["--report", report_json]);
    assert_eq!(status, 1, "{stdout}");
    assert!(
        stdout.contains("report_mismatch") && stdout.contains("hardware-attested"),
        "{stdout}"
    );
    assert!(stdout.contains("Hardware  0 TPP"), "{stdout}");
}
