//! The test device CA's reports go through the real verifier: they verify with the test root,
//! fail with NVIDIA's, and every attack on them fails with its reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use proto_gpu_evidence::testing::{Arch, TestDevice, TestDeviceCa};
use proto_gpu_evidence::{ChainCache, Expected, Reason, Trust, report_nonce, spdm, verify};

/// 2026-01-01T00:00:00Z.
const AT_MS: i64 = 1_767_225_600_000;
const DRIVER: &str = "590.12";
const VBIOS: &str = "96.00.A5.00.01";

fn expected(nonce: [u8; 32]) -> Expected<'static> {
    Expected {
        nonce,
        at_unix_ms: AT_MS,
        driver_version: Some(DRIVER),
        vbios_version: Some(VBIOS),
    }
}

fn nonce(seed: u32) -> [u8; 32] {
    report_nonce(b"collector challenge", &[7; 32], seed)
}

fn fails(report: &[u8], chain: &[u8], wanted: &Expected<'_>, trust: &Trust) -> Reason {
    verify(report, chain, wanted, trust, None)
        .expect_err("must fail")
        .reason
}

#[test]
fn test_reports_verify_with_the_test_root_in_both_chain_forms_and_both_architectures() {
    let ca = TestDeviceCa::generate().unwrap();
    let trust = Trust::from_pem_roots(ca.root_pem().as_bytes()).unwrap();
    for arch in [Arch::Hopper, Arch::Blackwell] {
        let device = ca.issue(0x48B0_2D00_0000_0001, arch).unwrap();
        let report = device.report(&nonce(0), DRIVER, VBIOS).unwrap();
        for chain in [device.chain_pem(), device.chain_der()] {
            let verified = verify(&report, &chain, &expected(nonce(0)), &trust, None).unwrap();
            assert_eq!(verified.driver_version, DRIVER);
            assert_eq!(verified.vbios_version, VBIOS);
            assert_eq!(verified.fwid, device.fwid());
            assert_eq!(verified.measurements, device.measurements());
            assert_eq!(verified.identity.chip, arch.chip());
            assert_eq!(verified.identity.chip_id, "48B02D0000000001");
            assert_eq!(
                verified.identity.device_certificate_serial,
                "4148B02D0000000001"
            );
        }
    }
}

#[test]
fn test_reports_fail_with_nvidias_root() {
    let ca = TestDeviceCa::generate().unwrap();
    let device = ca.issue(1, Arch::Hopper).unwrap();
    let report = device.report(&nonce(0), DRIVER, VBIOS).unwrap();
    assert_eq!(
        fails(
            &report,
            &device.chain_pem(),
            &expected(nonce(0)),
            &Trust::nvidia()
        ),
        Reason::UntrustedRoot
    );
    // Nor with another test CA's root, even though the names are the same.
    let other = TestDeviceCa::generate().unwrap();
    assert_eq!(
        fails(
            &report,
            &device.chain_pem(),
            &expected(nonce(0)),
            &other.trust().unwrap()
        ),
        Reason::UntrustedRoot
    );
}

#[test]
fn a_chain_without_its_root_verifies_to_the_pinned_root_by_signature() {
    let ca = TestDeviceCa::generate().unwrap();
    let device = ca.issue(1, Arch::Hopper).unwrap();
    let report = device.report(&nonce(0), DRIVER, VBIOS).unwrap();
    let root = ca.root_der();
    let chain = device.chain_der();
    let without_root = &chain[..chain.len() - root.len()];
    verify(
        &report,
        without_root,
        &expected(nonce(0)),
        &ca.trust().unwrap(),
        None,
    )
    .unwrap();
    // A root that merely copies the pinned root's name is refused, in the chain or left out.
    let other_device = other_ca_device();
    assert_eq!(
        fails(
            &other_device.0,
            &other_device.1,
            &expected(nonce(0)),
            &ca.trust().unwrap()
        ),
        Reason::UntrustedRoot
    );
    let other = TestDeviceCa::generate().unwrap();
    let foreign = [without_root, &other.root_der()].concat();
    assert_eq!(
        fails(&report, &foreign, &expected(nonce(0)), &ca.trust().unwrap()),
        Reason::UntrustedRoot
    );
}

/// A report and root-less chain from another test CA, whose names equal every test CA's.
fn other_ca_device() -> (Vec<u8>, Vec<u8>) {
    let other = TestDeviceCa::generate().unwrap();
    let device = other.issue(1, Arch::Hopper).unwrap();
    let root = other.root_der();
    let chain = device.chain_der();
    let report = device.report(&nonce(0), DRIVER, VBIOS).unwrap();
    (report, chain[..chain.len() - root.len()].to_vec())
}

#[test]
fn the_identity_is_per_chip_and_survives_firmware_updates() {
    let ca = TestDeviceCa::generate().unwrap();
    let trust = ca.trust().unwrap();
    let device = ca.issue(1, Arch::Hopper).unwrap();
    let updated = device.with_firmware("test firmware 2").unwrap();
    assert_ne!(device.fwid(), updated.fwid());
    let key_of = |device: &TestDevice| {
        let report = device.report(&nonce(0), DRIVER, VBIOS).unwrap();
        verify(
            &report,
            &device.chain_pem(),
            &expected(nonce(0)),
            &trust,
            None,
        )
        .unwrap()
        .identity
    };
    let before = key_of(&device);
    let after = key_of(&updated);
    assert_eq!(before.key(), after.key());
    assert_ne!(before.leaf_serial, after.leaf_serial);
    let keys: BTreeSet<String> = (0..8)
        .map(|chip| key_of(&ca.issue(chip, Arch::Hopper).unwrap()).key())
        .collect();
    assert_eq!(keys.len(), 8);
}

#[test]
fn a_device_round_trips_through_pkcs8_and_chain() {
    let ca = TestDeviceCa::generate().unwrap();
    for arch in [Arch::Hopper, Arch::Blackwell] {
        let device = ca.issue(42, arch).unwrap();
        let (pkcs8, chain) = device.to_pkcs8_and_chain();
        let loaded = TestDevice::from_pkcs8_and_chain(&pkcs8, &chain).unwrap();
        assert_eq!(loaded.arch(), arch);
        assert_eq!(loaded.chip_id(), device.chip_id());
        assert_eq!(loaded.fwid(), device.fwid());
        assert_eq!(loaded.chain_der(), device.chain_der());
        let report = loaded.report(&nonce(3), DRIVER, VBIOS).unwrap();
        verify(
            &report,
            &chain,
            &expected(nonce(3)),
            &ca.trust().unwrap(),
            None,
        )
        .unwrap();
        assert!(loaded.with_firmware("other").is_err());
        // Another device's key does not load with this chain.
        let (other_key, _) = ca.issue(43, arch).unwrap().to_pkcs8_and_chain();
        assert!(TestDevice::from_pkcs8_and_chain(&other_key, &chain).is_err());
    }
}

#[test]
fn attacks_on_test_reports_fail_with_their_reasons() {
    let ca = TestDeviceCa::generate().unwrap();
    let trust = ca.trust().unwrap();
    let device = ca.issue(1, Arch::Hopper).unwrap();
    let chain = device.chain_pem();
    let report = device.report(&nonce(0), DRIVER, VBIOS).unwrap();

    // Another nonce: a replayed report.
    assert_eq!(
        fails(&report, &chain, &expected(nonce(1)), &trust),
        Reason::NonceMismatch
    );

    // Every measurement byte is covered by the signature.
    let parsed = spdm::parse_report(&report).unwrap();
    assert_eq!(parsed.measurements.len(), 64);
    for offset in [
        37 + 8 + 7,
        37 + 8 + 64 * 55 - 1,
        report.len() - 97,
        report.len() - 1,
    ] {
        let mut tampered = report.clone();
        tampered[offset] ^= 0x80;
        assert_eq!(
            fails(&tampered, &chain, &expected(nonce(0)), &trust),
            Reason::ReportSignatureInvalid,
            "byte {offset}"
        );
    }

    // The report of one device with the chain of another.
    let other = ca.issue(2, Arch::Hopper).unwrap();
    assert_eq!(
        fails(&report, &other.chain_pem(), &expected(nonce(0)), &trust),
        Reason::ReportSignatureInvalid
    );

    // Running firmware other than the certified one.
    let lying = device
        .report_stating_fwid(&nonce(0), DRIVER, VBIOS, &[0xAB; 48])
        .unwrap();
    assert_eq!(
        fails(&lying, &chain, &expected(nonce(0)), &trust),
        Reason::FwidMismatch
    );

    // Versions other than the expected ones.
    let old = device.report(&nonce(0), "535.86.09", VBIOS).unwrap();
    assert_eq!(
        fails(&old, &chain, &expected(nonce(0)), &trust),
        Reason::DriverVersionMismatch
    );
    let old = device.report(&nonce(0), DRIVER, "96.00.5E.00.01").unwrap();
    assert_eq!(
        fails(&old, &chain, &expected(nonce(0)), &trust),
        Reason::VbiosVersionMismatch
    );
    let any = Expected {
        driver_version: None,
        vbios_version: None,
        ..expected(nonce(0))
    };
    verify(&old, &chain, &any, &trust, None).unwrap();
}

#[test]
fn an_expired_chain_fails_at_a_later_time_and_verifies_before() {
    let ca = TestDeviceCa::generate().unwrap();
    let trust = ca.trust().unwrap();
    let device = ca.issue_valid_until(1, Arch::Blackwell, 2024).unwrap();
    let report = device.report(&nonce(0), DRIVER, VBIOS).unwrap();
    let cache = ChainCache::default();
    for cache in [None, Some(&cache)] {
        let failure = verify(
            &report,
            &device.chain_pem(),
            &expected(nonce(0)),
            &trust,
            cache,
        )
        .expect_err("expired");
        assert_eq!(failure.reason, Reason::CertificateExpired);
        assert!(
            failure.detail.contains("GB100 A01 GSP"),
            "{}",
            failure.detail
        );
        let in_2023 = Expected {
            at_unix_ms: 1_672_531_200_000,
            ..expected(nonce(0))
        };
        verify(&report, &device.chain_pem(), &in_2023, &trust, cache).unwrap();
        let in_2020 = Expected {
            at_unix_ms: 1_577_836_800_000,
            ..expected(nonce(0))
        };
        assert_eq!(
            verify(&report, &device.chain_pem(), &in_2020, &trust, cache)
                .unwrap_err()
                .reason,
            Reason::CertificateNotYetValid
        );
    }
}

#[test]
fn bad_arguments_to_the_test_ca_are_errors() {
    let ca = TestDeviceCa::generate().unwrap();
    let device = ca.issue(1, Arch::Hopper).unwrap();
    assert!(device.report(&nonce(0), "", VBIOS).is_err());
    assert!(device.report(&nonce(0), "5 90", VBIOS).is_err());
    assert!(device.report(&nonce(0), DRIVER, "96.00.A5.00").is_err());
    assert!(
        device
            .report(&nonce(0), DRIVER, "96.00.A5.00.01.02")
            .is_err()
    );
    assert!(device.report(&nonce(0), DRIVER, "96.00.G5.00.01").is_err());
    assert!(ca.issue_valid_until(1, Arch::Hopper, 2021).is_err());
    assert!(TestDevice::from_pkcs8_and_chain(b"not a key", &device.chain_pem()).is_err());
}
