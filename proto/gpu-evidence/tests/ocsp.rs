//! Revocation through OCSP answers: good, revoked, on hold, unknown, stale, forged and
//! delegated answers on test device chains, checked at the evidence's time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_gpu_evidence::ocsp::REASON_CERTIFICATE_HOLD;
use proto_gpu_evidence::testing::{Arch, CertStatus, TestDevice, TestDeviceCa};
use proto_gpu_evidence::{Expected, OcspCache, Reason, RevocationStatus, verify};

/// 2026-01-01T00:00:00Z, in seconds.
const AT_S: i64 = 1_767_225_600;
const DAY: i64 = 86_400;
const NONCE: [u8; 32] = [3; 32];

fn expected(at_s: i64) -> Expected<'static> {
    Expected {
        nonce: NONCE,
        at_unix_ms: at_s * 1000,
        driver_version: None,
        vbios_version: None,
    }
}

/// Answers for the four certificates below the root, the leaf's saying `leaf`.
fn answers(
    ca: &TestDeviceCa,
    device: &TestDevice,
    leaf: CertStatus,
    delegated: bool,
) -> Vec<Vec<u8>> {
    (0..4)
        .map(|position| {
            let status = if position == 0 {
                leaf
            } else {
                CertStatus::Good
            };
            ca.ocsp_response(device, position, status, AT_S - DAY, AT_S + DAY, delegated)
                .unwrap()
        })
        .collect()
}

fn outcome(
    ca: &TestDeviceCa,
    device: &TestDevice,
    responses: &[Vec<u8>],
    at_s: i64,
) -> Result<RevocationStatus, Reason> {
    let trust = ca
        .trust()
        .unwrap()
        .with_ocsp(OcspCache::from_responses(responses).unwrap());
    let report = device.report(&NONCE, "590.12", "96.00.A5.00.01").unwrap();
    verify(&report, &device.chain_pem(), &expected(at_s), &trust, None)
        .map(|verified| verified.revocation)
        .map_err(|failure| failure.reason)
}

#[test]
fn good_answers_for_every_certificate_make_the_chain_good() {
    let ca = TestDeviceCa::generate().unwrap();
    for arch in [Arch::Hopper, Arch::Blackwell] {
        let device = ca.issue(1, arch).unwrap();
        for delegated in [false, true] {
            let responses = answers(&ca, &device, CertStatus::Good, delegated);
            assert_eq!(
                outcome(&ca, &device, &responses, AT_S),
                Ok(RevocationStatus::Good)
            );
        }
    }
}

#[test]
fn revoked_and_on_hold_certificates_fail() {
    let ca = TestDeviceCa::generate().unwrap();
    let device = ca.issue(1, Arch::Hopper).unwrap();
    let hold = CertStatus::Revoked {
        reason: Some(REASON_CERTIFICATE_HOLD),
    };
    let responses = answers(&ca, &device, hold, false);
    assert_eq!(
        outcome(&ca, &device, &responses, AT_S),
        Err(Reason::CertificateOnHold)
    );
    let responses = answers(&ca, &device, CertStatus::Revoked { reason: Some(1) }, true);
    assert_eq!(
        outcome(&ca, &device, &responses, AT_S),
        Err(Reason::CertificateRevoked)
    );
    let responses = answers(&ca, &device, CertStatus::Revoked { reason: None }, false);
    assert_eq!(
        outcome(&ca, &device, &responses, AT_S),
        Err(Reason::CertificateRevoked)
    );
    // The device identity certificate revoked: a chip withdrawn by its maker.
    let mut responses = answers(&ca, &device, CertStatus::Good, false);
    responses[1] = ca
        .ocsp_response(
            &device,
            1,
            CertStatus::Revoked { reason: Some(1) },
            AT_S - DAY,
            AT_S + DAY,
            false,
        )
        .unwrap();
    assert_eq!(
        outcome(&ca, &device, &responses, AT_S),
        Err(Reason::CertificateRevoked)
    );
}

#[test]
fn missing_stale_unknown_and_foreign_answers_leave_the_status_incomplete() {
    let ca = TestDeviceCa::generate().unwrap();
    let device = ca.issue(1, Arch::Hopper).unwrap();
    let leaf_subject = |status: Result<RevocationStatus, Reason>| match status {
        Ok(RevocationStatus::Incomplete { unanswered }) => {
            assert_eq!(unanswered.len(), 1, "{unanswered:?}");
            assert!(unanswered[0].contains("FMC LF"), "{unanswered:?}");
        }
        other => panic!("expected incomplete, got {other:?}"),
    };
    let responses = answers(&ca, &device, CertStatus::Good, false);
    // No answer for the leaf.
    leaf_subject(outcome(&ca, &device, &responses[1..], AT_S));
    // The responder does not know it.
    leaf_subject(outcome(
        &ca,
        &device,
        &answers(&ca, &device, CertStatus::Unknown, false),
        AT_S,
    ));
    // Answers are current for a day around AT_S: two days later all are stale.
    assert!(matches!(
        outcome(&ca, &device, &responses, AT_S + 2 * DAY),
        Ok(RevocationStatus::Incomplete { unanswered }) if unanswered.len() == 4
    ));
    // An on-hold answer signed by another CA's key for the same names is ignored.
    let forger = TestDeviceCa::generate().unwrap();
    let twin = forger.issue(1, Arch::Hopper).unwrap();
    let mut forged = responses.clone();
    forged[0] = answers(
        &forger,
        &twin,
        CertStatus::Revoked { reason: Some(6) },
        false,
    )
    .remove(0);
    leaf_subject(outcome(&ca, &device, &forged, AT_S));
    // An on-hold answer with the right CertID but a damaged signature is ignored.
    let mut damaged = responses.clone();
    damaged[0] = answers(&ca, &device, CertStatus::Revoked { reason: Some(6) }, false).remove(0);
    let last = damaged[0].len() - 1;
    damaged[0][last] ^= 0x01;
    leaf_subject(outcome(&ca, &device, &damaged, AT_S));
}

#[test]
fn a_revocation_outweighs_a_good_answer() {
    let ca = TestDeviceCa::generate().unwrap();
    let device = ca.issue(1, Arch::Hopper).unwrap();
    let mut responses = answers(&ca, &device, CertStatus::Good, false);
    responses.push(answers(&ca, &device, CertStatus::Revoked { reason: Some(1) }, false).remove(0));
    assert_eq!(
        outcome(&ca, &device, &responses, AT_S),
        Err(Reason::CertificateRevoked)
    );
}

#[test]
fn malformed_answers_are_refused_when_loaded() {
    let ca = TestDeviceCa::generate().unwrap();
    let device = ca.issue(1, Arch::Hopper).unwrap();
    let good = answers(&ca, &device, CertStatus::Good, true).remove(0);
    for len in 0..good.len() {
        assert!(
            OcspCache::from_responses([&good[..len]]).is_err(),
            "prefix {len}"
        );
    }
    let error = OcspCache::from_responses([&good[..], b"\x30\x03\x0a\x01\x01"]).unwrap_err();
    assert_eq!(error.index, 1);
    assert!(
        error.problem.contains("not successful"),
        "{}",
        error.problem
    );
}
