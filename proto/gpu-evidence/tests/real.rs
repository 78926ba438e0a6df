//! NVIDIA's published evidence (tests/data, see its README for sources): every report verifies
//! with its recorded nonce, and every damaged one fails with its reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use base64::Engine as _;
use proto_gpu_evidence::{ChainCache, Expected, Reason, Trust, Verified, spdm, verify};

/// 2026-01-01T00:00:00Z: inside every NVIDIA chain's validity (2022 to 9999).
const AT_MS: i64 = 1_767_225_600_000;

struct Sample {
    name: String,
    report: Vec<u8>,
    chain: Vec<u8>,
    /// The nonce the evidence was made for: recorded beside it, or the one in its request.
    nonce: [u8; 32],
    driver_version: Option<String>,
    vbios_version: Option<String>,
}

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(data(path)).unwrap_or_else(|error| panic!("read {path}: {error}"))
}

fn unhex(text: &str) -> Vec<u8> {
    let text = text.trim();
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
        .collect()
}

fn nonce_of(hex: &str) -> [u8; 32] {
    unhex(hex).try_into().expect("32-byte nonce")
}

fn text_sample(report: &str, chain: &str) -> Sample {
    let report_bytes = unhex(std::str::from_utf8(&read(report)).expect("hex text"));
    let nonce = spdm::parse_report(&report_bytes).expect("parses").nonce;
    Sample {
        name: report.to_owned(),
        report: report_bytes,
        chain: read(chain),
        nonce,
        driver_version: None,
        vbios_version: None,
    }
}

fn json_samples(file: &str) -> Vec<Sample> {
    let json: serde_json::Value = serde_json::from_slice(&read(file)).expect("json");
    let base64 = base64::engine::general_purpose::STANDARD;
    json.as_array()
        .expect("array")
        .iter()
        .enumerate()
        .map(|(index, gpu)| Sample {
            name: format!("{file}[{index}]"),
            report: base64
                .decode(gpu["evidence"].as_str().expect("evidence"))
                .expect("base64"),
            chain: base64
                .decode(gpu["certificate"].as_str().expect("certificate"))
                .expect("base64"),
            nonce: nonce_of(gpu["nonce"].as_str().expect("nonce")),
            driver_version: gpu["driver_version"].as_str().map(str::to_owned),
            vbios_version: gpu["vbios_version"].as_str().map(str::to_owned),
        })
        .collect()
}

/// Every report with the chain it was made with.
fn good_samples() -> Vec<Sample> {
    let mut samples = vec![
        text_sample(
            "nvtrust-samples/hopperAttestationReport.txt",
            "nvtrust-samples/hopperCertChain.txt",
        ),
        text_sample(
            "sdk-samples/hopperAttestationReport.txt",
            "sdk-samples/hopperCertChain.txt",
        ),
        text_sample(
            "sdk-samples/blackwellAttestationReport.txt",
            "sdk-samples/blackwellCertChain.txt",
        ),
        // "Expired" names the SDK's case of an expired driver RIM (570.124.03) and an online
        // status; by their own dates this report and chain are valid until 9999.
        text_sample(
            "sdk-samples/hopperAttestationReportExpired.txt",
            "sdk-samples/hopperCertChainExpired.txt",
        ),
    ];
    for file in [
        "evidence-json/ppcie-8x-h100-gpu_evidence.json",
        "evidence-json/hopper_evidence.json",
        "evidence-json/hopper_evidence_cert_hold.json",
        "evidence-json/multi_gpu_hopper.json",
    ] {
        samples.extend(json_samples(file));
    }
    samples
}

fn expected(sample: &Sample) -> Expected<'_> {
    Expected {
        nonce: sample.nonce,
        at_unix_ms: AT_MS,
        driver_version: sample.driver_version.as_deref(),
        vbios_version: sample.vbios_version.as_deref(),
    }
}

fn check(sample: &Sample) -> Result<Verified, proto_gpu_evidence::Failure> {
    verify(
        &sample.report,
        &sample.chain,
        &expected(sample),
        &Trust::nvidia(),
        None,
    )
}

#[test]
fn every_real_report_verifies_with_its_nonce() {
    for sample in good_samples() {
        let verified =
            check(&sample).unwrap_or_else(|failure| panic!("{}: {failure}", sample.name));
        assert_eq!(verified.measurements.len(), 64, "{}", sample.name);
        assert_eq!(verified.fwid.len(), 48, "{}", sample.name);
        if let Some(driver) = &sample.driver_version {
            assert_eq!(&verified.driver_version, driver);
        }
    }
}

#[test]
fn eight_gpus_of_one_machine_have_eight_identities() {
    let samples = json_samples("evidence-json/ppcie-8x-h100-gpu_evidence.json");
    let keys: BTreeSet<String> = samples
        .iter()
        .map(|sample| check(sample).expect("verifies").identity.key())
        .collect();
    assert_eq!(keys.len(), 8);
}

#[test]
fn identity_and_versions_match_what_nvidia_recorded() {
    let samples = json_samples("evidence-json/ppcie-8x-h100-gpu_evidence.json");
    let verified = check(&samples[0]).expect("verifies");
    assert_eq!(verified.driver_version, "590.12");
    assert_eq!(verified.vbios_version, "96.00.A5.00.01");
    assert_eq!(verified.identity.chip, "GH100");
    assert_eq!(verified.identity.chip_id, "48B02DF44660DA06");
    assert_eq!(
        verified.identity.device_certificate_serial,
        "412921CE551E4EEDA3"
    );
    // The same chip in another recording (another report, same chain) has the same key.
    let again = json_samples("evidence-json/hopper_evidence.json");
    assert_eq!(
        check(&again[0]).expect("verifies").identity.key(),
        verified.identity.key()
    );
    let blackwell = check(&text_sample(
        "sdk-samples/blackwellAttestationReport.txt",
        "sdk-samples/blackwellCertChain.txt",
    ))
    .expect("verifies");
    assert_eq!(blackwell.identity.chip, "GB100");
    assert_eq!(blackwell.driver_version, "575.32");
}

#[test]
fn the_chain_cache_gives_the_same_answers() {
    let cache = ChainCache::new(2);
    for sample in good_samples() {
        let uncached = check(&sample).expect("verifies");
        let cached = verify(
            &sample.report,
            &sample.chain,
            &expected(&sample),
            &Trust::nvidia(),
            Some(&cache),
        )
        .expect("verifies");
        assert_eq!(uncached, cached);
        assert!(cache.len() <= 2);
    }
}

fn reason(sample: &Sample, expected: &Expected<'_>) -> Reason {
    verify(
        &sample.report,
        &sample.chain,
        expected,
        &Trust::nvidia(),
        None,
    )
    .expect_err("must fail")
    .reason
}

#[test]
fn invalid_signature_sample_fails() {
    let sample = text_sample(
        "sdk-samples/hopperAttestationReportInvalidSignature.txt",
        "sdk-samples/hopperCertChain.txt",
    );
    assert_eq!(
        reason(&sample, &expected(&sample)),
        Reason::ReportSignatureInvalid
    );
}

#[test]
fn wrong_nonce_fails() {
    let sample = &good_samples()[0];
    let mut wanted = expected(sample);
    wanted.nonce[0] ^= 1;
    assert_eq!(reason(sample, &wanted), Reason::NonceMismatch);
}

#[test]
fn wrong_versions_fail() {
    let samples = json_samples("evidence-json/ppcie-8x-h100-gpu_evidence.json");
    let sample = &samples[0];
    let mut wanted = expected(sample);
    wanted.driver_version = Some("590.13");
    assert_eq!(reason(sample, &wanted), Reason::DriverVersionMismatch);
    let mut wanted = expected(sample);
    wanted.vbios_version = Some("96.00.A5.00.02");
    assert_eq!(reason(sample, &wanted), Reason::VbiosVersionMismatch);
}

#[test]
fn a_tampered_measurement_fails_the_signature() {
    let mut sample = good_samples().remove(0);
    // First byte of block 1's value: request (37) + response header (8) + block header (7).
    sample.report[37 + 8 + 7] ^= 0x01;
    assert_eq!(
        reason(&sample, &expected(&sample)),
        Reason::ReportSignatureInvalid
    );
}

#[test]
fn before_the_chain_is_valid_fails() {
    let sample = &good_samples()[0];
    let mut wanted = expected(sample);
    wanted.at_unix_ms = 1_577_836_800_000; // 2020-01-01, before every notBefore
    assert_eq!(reason(sample, &wanted), Reason::CertificateNotYetValid);
}

#[test]
fn a_report_with_another_gpus_chain_fails() {
    let samples = json_samples("evidence-json/ppcie-8x-h100-gpu_evidence.json");
    let mut sample = json_samples("evidence-json/ppcie-8x-h100-gpu_evidence.json").remove(0);
    sample.chain = samples[1].chain.clone();
    assert_eq!(
        reason(&sample, &expected(&sample)),
        Reason::ReportSignatureInvalid
    );
}

#[test]
fn nvidia_chains_fail_with_a_test_root() {
    let ca = proto_gpu_evidence::testing::TestDeviceCa::generate().unwrap();
    let trust = Trust::from_pem_roots(ca.root_pem().as_bytes()).unwrap();
    for sample in good_samples() {
        let failure = verify(
            &sample.report,
            &sample.chain,
            &expected(&sample),
            &trust,
            None,
        )
        .expect_err("NVIDIA's chain does not lead to a test root");
        assert_eq!(failure.reason, Reason::UntrustedRoot, "{}", sample.name);
    }
}

#[test]
fn one_chain_cache_serves_many_threads() {
    fn shared<T: Sync + Send>(_: &T) {}
    let cache = ChainCache::new(4);
    shared(&cache);
    let samples = json_samples("evidence-json/ppcie-8x-h100-gpu_evidence.json");
    std::thread::scope(|scope| {
        for chunk in samples.chunks(2) {
            let cache = &cache;
            scope.spawn(move || {
                for sample in chunk.iter().chain(chunk) {
                    let trust = Trust::nvidia();
                    verify(
                        &sample.report,
                        &sample.chain,
                        &expected(sample),
                        &trust,
                        Some(cache),
                    )
                    .expect("verifies");
                }
            });
        }
    });
    assert_eq!(cache.len(), 4);
}

#[test]
fn the_compiled_root_is_nvidias_published_pem() {
    let pem = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("roots/nvidia-device-identity-root.pem"),
    )
    .unwrap();
    assert_eq!(
        Trust::from_pem_roots(&pem).unwrap().roots(),
        Trust::nvidia().roots()
    );
}

#[test]
fn a_malleated_signature_verifies_with_another_digest() {
    // P-384's group order n; (r, n − s) verifies wherever (r, s) does.
    let n = unhex(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    );
    let sample = &good_samples()[0];
    let original = check(sample).expect("verifies");
    let mut report = sample.report.clone();
    let s_at = report.len() - 48;
    let mut borrow = 0i16;
    for i in (0..48).rev() {
        let difference = i16::from(n[i]) - i16::from(report[s_at + i]) - borrow;
        borrow = i16::from(difference < 0);
        report[s_at + i] = difference.rem_euclid(256) as u8;
    }
    assert_ne!(report, sample.report);
    let malleated = verify(
        &report,
        &sample.chain,
        &expected(sample),
        &Trust::nvidia(),
        None,
    )
    .expect("verifies");
    assert_eq!(malleated.identity, original.identity);
    assert_ne!(malleated.report_digest, original.report_digest);
}
