//! GPU hardware evidence with real processes: an agent on GPUs whose fake NVML signs reports
//! with test device keys answers the collector's challenge with one report per GPU, each over
//! the nonce derived from that challenge, its key and the GPU's index, and each verifying
//! against the test CA's root; later attestations under the same challenge carry none.

use std::collections::BTreeMap;
use std::time::Duration;

use proto_evidence::{GpuEvidence, report_nonce};
use proto_gpu_evidence::testing::{Arch, TestDeviceCa};
use proto_gpu_evidence::{Expected, verify};

use crate::support::{Agent, Collector, eventually};

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

    let fixture: serde_json::Value =
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
