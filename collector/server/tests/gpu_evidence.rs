//! GPU hardware evidence under attack, over real mutual TLS and a real SQLite store: reports
//! signed by a test device CA (a P-384 chain shaped like NVIDIA's, made at test time) for the
//! nonce each attestation must answer. What an auditor observes is judged: the audit
//! service's hardware-attested TPP per country, and the events the collector recorded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use collector_pki::Role;
use collector_store::AttestationStore as _;
use collector_testkit::{Agent, Harness, Stream, acked, h100, statement};
use proto_evidence::{ChainDigest, DeviceRecord, GpuEvidence, report_nonce};
use proto_gpu_evidence::testing::{Arch, TestDevice, TestDeviceCa};
use proto_wire::v1;
use proto_wire::v1::audit_client::AuditClient;

const DRIVER: &str = "590.12";
const VBIOS: &str = "96.00.A5.00.01";

/// `host`'s GPU `index`, carrying `device`'s report for `nonce` (or no report).
fn gpu(host: &str, index: usize, report: Option<(&TestDevice, [u8; 32])>) -> DeviceRecord {
    let mut record = h100(host, index);
    record.vbios_version = VBIOS.into();
    if let Some((device, nonce)) = report {
        record.gpu_evidence = GpuEvidence::Report {
            report: device.report(&nonce, DRIVER, VBIOS).unwrap(),
            certificate_chain: device.chain_pem(),
        };
    }
    record
}

/// The nonce `agent`'s device `index` must answer on a stream challenged with `challenge`.
fn nonce(agent: &Agent, challenge: &[u8], index: usize) -> [u8; 32] {
    report_nonce(
        challenge,
        &agent.signer.key_id(),
        u32::try_from(index).unwrap(),
    )
}

/// Sends `devices` as `agent`'s attestation `sequence` on `stream`; returns its chain digest.
async fn send(
    stream: &mut Stream,
    agent: &Agent,
    sequence: u64,
    previous: ChainDigest,
    devices: Vec<DeviceRecord>,
) -> ChainDigest {
    let mut payload = statement(
        &agent.signer,
        &agent.host,
        &agent.site,
        sequence,
        previous,
        collector_testkit::now_ms(),
        &stream.nonce,
        devices,
    );
    payload.driver_version = DRIVER.into();
    let envelope = proto_seal::seal(&payload, &agent.signer).unwrap();
    assert_eq!(acked(&stream.send(&envelope).await), sequence);
    envelope.chain_digest()
}

/// What an auditor reads: the last-known view's hardware-attested TPP, in total and for
/// `country`.
async fn hardware(h: &Harness, country: &str) -> (u64, u64) {
    let view = AuditClient::new(h.channel_as(Role::Auditor, "auditor-1").await)
        .distribution(v1::DistributionRequest::default())
        .await
        .unwrap()
        .into_inner()
        .last_known
        .unwrap();
    let of_country = view
        .countries
        .iter()
        .find(|c| c.country == country)
        .map_or(0, |c| c.hardware_tpp);
    (view.hardware_tpp, of_country)
}

/// The stored events of `kind`, as "host: detail".
fn events(h: &Harness, kind: &str) -> Vec<String> {
    h.store
        .events(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| {
            format!(
                "{}: {}",
                e.host_id.map(|host| host.0).unwrap_or_default(),
                e.detail
            )
        })
        .collect()
}

fn devices_of(ca: &TestDeviceCa, first_chip: u64, n: u64) -> Vec<TestDevice> {
    (0..n)
        .map(|i| ca.issue(first_chip + i, Arch::Hopper).unwrap())
        .collect()
}

#[tokio::test]
async fn honest_reports_put_compute_at_the_hardware_level_and_forgeries_do_not() {
    let ca = TestDeviceCa::generate().unwrap();
    let h = Harness::start_with_gpu_trust("uveu-2025-us-simulated.toml", ca.trust().unwrap()).await;
    let honest = h.enroll("gpu-us", "us-va-1", 1);
    let thief = h.enroll("gpu-my", "my-1", 2);
    let chips = devices_of(&ca, 0x100, 2);

    // The honest host answers its challenge with both GPUs' reports.
    let mut stream = Stream::open(&h, &honest, &honest).await.unwrap();
    let first_challenge = stream.nonce.clone();
    let devices = (0..2)
        .map(|i| {
            gpu(
                "gpu-us",
                i,
                Some((&chips[i], nonce(&honest, &stream.nonce, i))),
            )
        })
        .collect();
    let digest = send(&mut stream, &honest, 1, ChainDigest::GENESIS, devices).await;
    assert_eq!(hardware(&h, "US").await, (2 * 15_840, 2 * 15_840));

    // An older challenge's report, attached to a newer attestation: refused, NVML only.
    drop(stream);
    let mut stream = Stream::open(&h, &honest, &honest).await.unwrap();
    assert_ne!(stream.nonce, first_challenge);
    let stale = gpu(
        "gpu-us",
        0,
        Some((&chips[0], nonce(&honest, &first_challenge, 0))),
    );
    let mut tampered = gpu(
        "gpu-us",
        1,
        Some((&chips[1], nonce(&honest, &stream.nonce, 1))),
    );
    if let GpuEvidence::Report { report, .. } = &mut tampered.gpu_evidence {
        // A byte inside the first measurement block (after the 37-byte request and the
        // response header): the signature no longer holds.
        report[37 + 8 + 10] ^= 0x01;
    }
    send(&mut stream, &honest, 2, digest, vec![stale, tampered]).await;
    let refused = events(&h, "gpu_evidence_refused");
    assert!(
        refused.iter().any(|e| e.contains("nonce_mismatch")),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|e| e.contains("device 1") && !e.contains("nonce_mismatch")),
        "{refused:?}"
    );
    // The evidence of the first challenge still holds (it is fresh): the level stands.
    assert_eq!(hardware(&h, "US").await, (2 * 15_840, 2 * 15_840));

    // Another host replays the honest host's report (made for the honest host's nonce and key).
    let mut theirs = Stream::open(&h, &thief, &thief).await.unwrap();
    let replayed = GpuEvidence::Report {
        report: chips[0]
            .report(&nonce(&honest, &first_challenge, 0), DRIVER, VBIOS)
            .unwrap(),
        certificate_chain: chips[0].chain_pem(),
    };
    let mut device = gpu("gpu-my", 0, None);
    device.gpu_evidence = replayed;
    let previous = send(&mut theirs, &thief, 1, ChainDigest::GENESIS, vec![device]).await;
    assert_eq!(hardware(&h, "MY").await.1, 0);
    assert!(
        events(&h, "gpu_evidence_refused")
            .iter()
            .any(|e| e.starts_with("gpu-my") && e.contains("nonce_mismatch"))
    );

    // A chain to a root the collector does not trust.
    let foreign = TestDeviceCa::generate()
        .unwrap()
        .issue(0x900, Arch::Hopper)
        .unwrap();
    let device = gpu(
        "gpu-my",
        0,
        Some((&foreign, nonce(&thief, &theirs.nonce, 0))),
    );
    send(&mut theirs, &thief, 2, previous, vec![device]).await;
    assert_eq!(hardware(&h, "MY").await.1, 0);
    assert!(
        events(&h, "gpu_evidence_refused")
            .iter()
            .any(|e| e.starts_with("gpu-my") && e.contains("chain")),
        "{:?}",
        events(&h, "gpu_evidence_refused")
    );
    h.stop.cancel();
}

#[tokio::test]
async fn one_gpu_claimed_by_two_hosts_under_new_labels_counts_once() {
    let ca = TestDeviceCa::generate().unwrap();
    let h = Harness::start_with_gpu_trust("uveu-2025-us-simulated.toml", ca.trust().unwrap()).await;
    let us = h.enroll("gpu-us", "us-va-1", 1);
    let my = h.enroll("gpu-my", "my-1", 2);
    let chip = ca.issue(0x42, Arch::Hopper).unwrap();
    // The same silicon (its device key copied, as if the GPU answered both hosts).
    let (key, chain) = chip.to_pkcs8_and_chain();
    let copy = TestDevice::from_pkcs8_and_chain(&key, &chain).unwrap();

    let mut stream = Stream::open(&h, &us, &us).await.unwrap();
    let device = gpu("gpu-us", 0, Some((&chip, nonce(&us, &stream.nonce, 0))));
    send(&mut stream, &us, 1, ChainDigest::GENESIS, vec![device]).await;

    // The other host reports it under fresh NVML labels: software cannot relabel silicon.
    let mut theirs = Stream::open(&h, &my, &my).await.unwrap();
    let mut device = gpu("gpu-my", 0, Some((&copy, nonce(&my, &theirs.nonce, 0))));
    device.uuid = "GPU-relabelled".into();
    device.serial = "SN-relabelled".into();
    send(&mut theirs, &my, 1, ChainDigest::GENESIS, vec![device]).await;

    let view = AuditClient::new(h.channel_as(Role::Auditor, "auditor-1").await)
        .distribution(v1::DistributionRequest::default())
        .await
        .unwrap()
        .into_inner()
        .last_known
        .unwrap();
    let tpp = |country: &str| {
        view.countries
            .iter()
            .find(|c| c.country == country)
            .map_or(0, |c| c.tpp)
    };
    assert_eq!((tpp("US"), tpp("MY")), (15_840, 0));
    let conflicts = events(&h, "gpu_conflict");
    assert!(
        conflicts
            .iter()
            .any(|e| e.starts_with("gpu-my") && e.contains("hardware identity")),
        "{conflicts:?}"
    );
    h.stop.cancel();
}
