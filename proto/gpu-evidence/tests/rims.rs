//! Measurements against reference integrity manifests: NVIDIA's published RIMs (which match or
//! deliberately mismatch NVIDIA's sample reports) and the test device CA's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use proto_gpu_evidence::rim::RimKind;
use proto_gpu_evidence::testing::{Arch, TestDeviceCa};
use proto_gpu_evidence::{Expected, Reason, RimSet, RimStatus, Trust, spdm, verify};

const AT_MS: i64 = 1_767_225_600_000;

fn read(path: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(path),
    )
    .unwrap()
}

fn rims(names: &[&str]) -> RimSet {
    RimSet::from_files(
        names
            .iter()
            .map(|name| (*name, read(&format!("rims/{name}")))),
    )
    .unwrap()
}

/// The attestation SDK's Hopper sample: driver 535.86.09, VBIOS 96.00.5E.00.01.
fn sdk_hopper() -> (Vec<u8>, Vec<u8>, Expected<'static>) {
    let text = read("sdk-samples/hopperAttestationReport.txt");
    let text = std::str::from_utf8(&text).unwrap().trim();
    let report: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect();
    let nonce = spdm::parse_report(&report).unwrap().nonce;
    let expected = Expected {
        nonce,
        at_unix_ms: AT_MS,
        driver_version: None,
        vbios_version: None,
    };
    (report, read("sdk-samples/hopperCertChain.txt"), expected)
}

#[test]
fn every_published_rim_parses() {
    let names = [
        "1010_0200_882_96005E0001_PROD.swidtag",
        "1010_0200_882_96005E0001_test_no_gpu.swidtag",
        "1010_0205_862_96005E0002_PROD.swidtag",
        "Driver_RIM_test_no_gpu.swidtag",
        "NV_GPU_DRIVER_GH100_535.86.09_measurement_mismatch.xml",
        "NV_GPU_DRIVER_GH100_550.144.03.xml",
        "NV_GPU_DRIVER_GH100_570.124.03_expired.xml",
        "NV_GPU_VBIOS_1010_0200_882_96005E0001_measurement_mismatch.xml",
        "incorrect_cert_chain_driver_rim.xml",
        "incorrect_signature_driver_rim.xml",
    ];
    for name in names {
        let set = rims(&[name]);
        let rim = &set.rims()[0];
        assert!(!rim.measurements.is_empty(), "{name}");
        assert!(
            rim.measurements
                .iter()
                .all(|m| m.alternatives.iter().all(|a| a.len() == 48))
        );
    }
    let driver = &rims(&["NV_GPU_DRIVER_GH100_550.144.03.xml"]).rims()[0].clone();
    assert_eq!(
        (
            driver.kind,
            driver.product.as_str(),
            driver.version.as_str()
        ),
        (RimKind::Driver, "GH100", "550.144.03")
    );
    assert_eq!(driver.measurements.len(), 21);
    let vbios = &rims(&["1010_0200_882_96005E0001_PROD.swidtag"]).rims()[0].clone();
    assert_eq!(
        (vbios.kind, vbios.version.as_str()),
        (RimKind::Vbios, "96.00.5E.00.01")
    );
    // Two RIMs for the same chip, kind and version are refused.
    let twice = RimSet::from_files([
        ("a", read("rims/1010_0200_882_96005E0001_PROD.swidtag")),
        (
            "b",
            read("rims/1010_0200_882_96005E0001_test_no_gpu.swidtag"),
        ),
    ]);
    assert!(twice.unwrap_err().problem.contains("already given by a"));
}

#[test]
fn nvidias_vbios_rim_matches_its_sample_report() {
    let (report, chain, expected) = sdk_hopper();
    let trust = Trust::nvidia().with_rims(rims(&["1010_0200_882_96005E0001_PROD.swidtag"]));
    let verified = verify(&report, &chain, &expected, &trust, None).unwrap();
    assert_eq!(
        verified.rim,
        RimStatus::Incomplete {
            driver: None,
            vbios: Some("1010_0200_882_96005E0001_PROD.swidtag".to_owned())
        }
    );
}

#[test]
fn nvidias_mismatch_rims_fail_their_sample_report() {
    let (report, chain, expected) = sdk_hopper();
    for name in [
        "NV_GPU_VBIOS_1010_0200_882_96005E0001_measurement_mismatch.xml",
        "NV_GPU_DRIVER_GH100_535.86.09_measurement_mismatch.xml",
        "1010_0200_882_96005E0001_test_no_gpu.swidtag",
    ] {
        let trust = Trust::nvidia().with_rims(rims(&[name]));
        let failure = verify(&report, &chain, &expected, &trust, None).unwrap_err();
        assert_eq!(failure.reason, Reason::MeasurementMismatch, "{name}");
        assert!(failure.detail.contains(name), "{}", failure.detail);
    }
}

#[test]
fn rims_of_other_versions_leave_the_report_unjudged() {
    let (report, chain, expected) = sdk_hopper();
    let trust = Trust::nvidia().with_rims(rims(&[
        "NV_GPU_DRIVER_GH100_550.144.03.xml",
        "1010_0205_862_96005E0002_PROD.swidtag",
    ]));
    let verified = verify(&report, &chain, &expected, &trust, None).unwrap();
    assert_eq!(
        verified.rim,
        RimStatus::Incomplete {
            driver: None,
            vbios: None
        }
    );
}

#[test]
fn test_device_rims_match_and_catch_a_firmware_change() {
    let ca = TestDeviceCa::generate().unwrap();
    let device = ca.issue(5, Arch::Hopper).unwrap();
    let set = RimSet::from_files([
        ("driver.xml", device.driver_rim("590.12")),
        ("vbios.xml", device.vbios_rim("96.00.A5.00.01")),
    ])
    .unwrap();
    let trust = ca.trust().unwrap().with_rims(set);
    let nonce = [9; 32];
    let expected = Expected {
        nonce,
        at_unix_ms: AT_MS,
        driver_version: None,
        vbios_version: None,
    };
    let report = device.report(&nonce, "590.12", "96.00.A5.00.01").unwrap();
    let verified = verify(&report, &device.chain_pem(), &expected, &trust, None).unwrap();
    assert_eq!(
        verified.rim,
        RimStatus::Matched {
            driver: "driver.xml".to_owned(),
            vbios: "vbios.xml".to_owned()
        }
    );
    let updated = device.with_firmware("unreviewed firmware").unwrap();
    let report = updated.report(&nonce, "590.12", "96.00.A5.00.01").unwrap();
    let failure = verify(&report, &updated.chain_pem(), &expected, &trust, None).unwrap_err();
    assert_eq!(failure.reason, Reason::MeasurementMismatch);
    // Block 36 is not compared while NVDEC0 is disabled (test reports say so, as NVIDIA's do).
    let block_36 = device.measurements()[35]
        .value
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let driver = String::from_utf8(device.driver_rim("590.12")).unwrap();
    assert!(driver.contains(&block_36));
    let altered = driver.replace(&block_36, &"00".repeat(48));
    let set = RimSet::from_files([
        ("driver.xml", altered.into_bytes()),
        ("vbios.xml", device.vbios_rim("96.00.A5.00.01")),
    ])
    .unwrap();
    let trust_36 = ca.trust().unwrap().with_rims(set);
    let report = device.report(&nonce, "590.12", "96.00.A5.00.01").unwrap();
    verify(&report, &device.chain_pem(), &expected, &trust_36, None).unwrap();
    // RIMs that claim the same block are refused at verification.
    let overlapping = RimSet::from_files([
        ("driver.xml", device.driver_rim("590.12")),
        ("vbios.xml", device.driver_rim("96.00.A5.00.01")),
    ])
    .unwrap();
    let trust = ca.trust().unwrap().with_rims(overlapping);
    let report = device.report(&nonce, "590.12", "96.00.A5.00.01").unwrap();
    let failure = verify(&report, &device.chain_pem(), &expected, &trust, None).unwrap_err();
    assert_eq!(failure.reason, Reason::MeasurementMismatch);
    assert!(failure.detail.contains("both claim"), "{}", failure.detail);
}

#[test]
fn truncated_and_garbage_rims_are_errors_not_panics() {
    let xml = read("rims/NV_GPU_DRIVER_GH100_550.144.03.xml");
    for len in (0..xml.len()).step_by(13) {
        let _ = RimSet::from_files([("cut", &xml[..len])]);
    }
    for garbage in [
        &b""[..],
        b"<",
        b"<a b=>",
        b"<!-- ",
        b"\xff\xfe",
        b"<Meta colloquialVersion='1'/>",
    ] {
        assert!(RimSet::from_files([("garbage", garbage)]).is_err());
    }
    let big = vec![b' '; proto_gpu_evidence::rim::MAX_RIM_BYTES + 1];
    assert!(RimSet::from_files([("big", big)]).is_err());
}
