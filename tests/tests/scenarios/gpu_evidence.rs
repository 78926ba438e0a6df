//! GPU hardware evidence with real processes: an agent on GPUs whose fake NVML signs reports
//! with test device keys answers the collector's challenge with one report per GPU, each over
//! the nonce derived from that challenge, its key and the GPU's index, and each verifying
//! against the test CA's root; later attestations under the same challenge carry none.
//!
//! End to end: the fake NVML library signs attestation reports with device keys of a test device CA made here, `veu-agent` answers the
//! collector's challenges with them, the collector (trusting that CA's root) counts the US
//! host's compute as hardware-attested, the monthly report says so, and the auditor's offline
//! verifier agrees only when given the same root: with NVIDIA's, the report's hardware claim
//! fails.

use std::collections::BTreeMap;
use std::time::Duration;

use proto_evidence::{GpuEvidence, report_nonce};
use proto_gpu_evidence::testing::{Arch, TestDevice, TestDeviceCa};
use proto_gpu_evidence::{Expected, verify};
use serde_json::{Value, json};

use crate::support::{Agent, Collector, eventually, month_of, now_ms, ok};

#[test]
fn an_agent_answers_each_challenge_once_with_reports_that_verify() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(dir.path());
    let ca = TestDeviceCa::generate().unwrap();
    let agent = Agent::start_edited(
        &collector,
        "cc-01",
        "us-va-1",
        "dgx-h100.json",
        300,
        collector.port,
        |agent_dir, gpus| {
            gpus["confidential_compute"] = true.into();
            for (index, device) in gpus["devices"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .enumerate()
            {
                let gpu = ca.issue(0x5000 + index as u64, Arch::Hopper).unwrap();
                let (key, chain) = gpu.to_pkcs8_and_chain();
                let key_file = format!("gpu{index}.pk8");
                std::fs::write(agent_dir.join(&key_file), key).unwrap();
                device["gpu_evidence"] = serde_json::json!({
                    "device_key_pkcs8": key_file,
                    "chain_pem": String::from_utf8(chain).unwrap(),
                });
            }
        },
    );
    eventually(Duration::from_secs(30), "four attestations", || {
        collector.history(&agent.host).len() >= 4
    });

    let fixture: Value =
        serde_json::from_slice(&std::fs::read(agent.dir().join("nvml.json")).unwrap()).unwrap();
    let trust = ca.trust().unwrap();
    // Per challenge nonce: the sequences that carried reports, and those that did not.
    let mut answered: BTreeMap<Vec<u8>, Vec<u64>> = BTreeMap::new();
    let mut silent: BTreeMap<Vec<u8>, Vec<u64>> = BTreeMap::new();
    for envelope in collector.stored(dir.path(), &agent.host) {
        let payload = proto_seal::decode_payload_unverified(&envelope).unwrap();
        let reports = payload
            .devices
            .iter()
            .filter(|d| matches!(d.gpu_evidence, GpuEvidence::Report { .. }))
            .count();
        if reports == 0 {
            assert!(
                payload
                    .devices
                    .iter()
                    .all(|d| d.gpu_evidence == GpuEvidence::NotCollected),
                "sequence {}: {:?}",
                payload.sequence,
                payload.devices[0].gpu_evidence
            );
            silent
                .entry(payload.collector_nonce.clone())
                .or_default()
                .push(payload.sequence);
            continue;
        }
        assert_eq!(reports, 8, "every GPU signs: {}", agent.log());
        assert!(!payload.collector_nonce.is_empty());
        for device in &payload.devices {
            let GpuEvidence::Report {
                report,
                certificate_chain,
            } = &device.gpu_evidence
            else {
                unreachable!()
            };
            let vbios = fixture["devices"][device.index as usize]["vbios_version"]
                .as_str()
                .unwrap();
            let expected = Expected {
                nonce: report_nonce(&payload.collector_nonce, &payload.key_id, device.index),
                at_unix_ms: payload.issued_at_unix_ms,
                driver_version: fixture["driver_version"].as_str(),
                vbios_version: Some(vbios),
            };
            verify(report, certificate_chain, &expected, &trust, None).unwrap_or_else(|failure| {
                panic!(
                    "sequence {}, device {}: {failure:?}",
                    payload.sequence, device.index
                )
            });
            // Bound to its place: the same report does not answer for the next device.
            let elsewhere = Expected {
                nonce: report_nonce(&payload.collector_nonce, &payload.key_id, device.index + 1),
                ..expected
            };
            assert!(verify(report, certificate_chain, &elsewhere, &trust, None).is_err());
        }
        answered
            .entry(payload.collector_nonce.clone())
            .or_default()
            .push(payload.sequence);
    }
    assert!(
        !answered.is_empty(),
        "no attestation carried reports: {}",
        agent.log()
    );
    for (nonce, sequences) in &answered {
        assert_eq!(
            sequences.len(),
            1,
            "one answer per challenge: {sequences:?}"
        );
        // Attestations before the challenge's answer cannot carry its nonce; those after it
        // carry no reports.
        assert!(
            silent
                .get(nonce)
                .is_none_or(|later| later.iter().all(|s| *s > sequences[0])),
            "{nonce:?}: {sequences:?} {silent:?}"
        );
    }
    assert!(
        silent.iter().any(|(nonce, _)| answered.contains_key(nonce)),
        "some attestation after an answer repeats the challenge without reports: {answered:?} {silent:?}"
    );
}

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
        |dir, fixture| {
            fixture["confidential_compute"] = true.into();
            let devices = fixture["devices"].as_array_mut().unwrap();
            for (index, device) in devices.iter_mut().enumerate() {
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
            }
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
    assert!(
        html.contains("Hardware-attested"),
        "the HTML report shows it"
    );

    // The auditor re-verifies every GPU report offline.
    let bundle = dir.path().join("bundle");
    collector.export_month(&bundle);
    let report_json = report_dir.join("report.json");
    let report_json = report_json.to_str().unwrap();
    let (status, stdout) = collector.verify(
        &bundle,
        &[
            "--report",
            report_json,
            "--gpu-root",
            root.to_str().unwrap(),
        ],
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
