//! Untrusted bytes never panic: every truncation of real reports and chains, random bytes and
//! random damage fail with a reason; oversized inputs are refused by size.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use proptest::prelude::*;
use proto_gpu_evidence::{
    ChainCache, Expected, MAX_CHAIN_BYTES, MAX_REPORT_BYTES, Reason, Trust, spdm, verify,
};

const AT_MS: i64 = 1_767_225_600_000;

fn read(path: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(path),
    )
    .unwrap()
}

fn unhex(text: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(text).unwrap().trim();
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

/// The nvtrust Hopper sample: report and chain.
fn sample() -> (Vec<u8>, Vec<u8>, [u8; 32]) {
    let report = unhex(&read("nvtrust-samples/hopperAttestationReport.txt"));
    let nonce = spdm::parse_report(&report).unwrap().nonce;
    (report, read("nvtrust-samples/hopperCertChain.txt"), nonce)
}

fn expected(nonce: [u8; 32]) -> Expected<'static> {
    Expected {
        nonce,
        at_unix_ms: AT_MS,
        driver_version: None,
        vbios_version: None,
    }
}

/// DER of a PEM chain; DER passes through.
fn chain_der(pem: &[u8]) -> Vec<u8> {
    if !pem.starts_with(b"-----") {
        return pem.to_vec();
    }
    let text = std::str::from_utf8(pem).unwrap();
    let mut out = Vec::new();
    for block in text.split("-----END CERTIFICATE-----") {
        let Some((_, body)) = block.split_once("-----BEGIN CERTIFICATE-----") else {
            continue;
        };
        let clean: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        use base64::Engine as _;
        out.extend(
            base64::engine::general_purpose::STANDARD
                .decode(clean)
                .unwrap(),
        );
    }
    out
}

#[test]
fn every_truncated_report_fails_as_malformed() {
    let (report, chain, nonce) = sample();
    verify(&report, &chain, &expected(nonce), &Trust::nvidia(), None).unwrap();
    let cache = ChainCache::default();
    for len in 0..report.len() {
        let failure = verify(
            &report[..len],
            &chain,
            &expected(nonce),
            &Trust::nvidia(),
            Some(&cache),
        )
        .expect_err("a truncated report must fail");
        assert!(
            matches!(
                failure.reason,
                Reason::MalformedReport | Reason::UnsupportedSpdmVersion
            ),
            "{len}: {failure}"
        );
    }
    // A byte too many.
    let mut longer = report.clone();
    longer.push(0);
    assert_eq!(
        verify(&longer, &chain, &expected(nonce), &Trust::nvidia(), None)
            .unwrap_err()
            .reason,
        Reason::MalformedReport
    );
}

#[test]
fn every_truncated_chain_fails_in_both_forms() {
    let (report, pem, nonce) = sample();
    let der = chain_der(&pem);
    verify(&report, &der, &expected(nonce), &Trust::nvidia(), None).unwrap();
    for chain in [&pem, &der] {
        let mut reasons = BTreeSet::new();
        for len in 0..chain.len() {
            // Whitespace after the last END line changes nothing.
            if chain[len..].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match verify(
                &report,
                &chain[..len],
                &expected(nonce),
                &Trust::nvidia(),
                None,
            ) {
                Err(failure) => {
                    reasons.insert(failure.reason.code());
                }
                // Only the chain without its root verifies: the pinned root signed its end.
                Ok(_) => assert_eq!(
                    chain_der(&chain[..len]),
                    der[..der.len() - proto_gpu_evidence::NVIDIA_DEVICE_IDENTITY_ROOT_DER.len()],
                    "prefix of {len} bytes verified"
                ),
            }
        }
        // Cutting at a certificate boundary leaves a chain that ends at no pinned root.
        assert!(reasons.contains("malformed_chain"), "{reasons:?}");
        assert!(reasons.contains("untrusted_root"), "{reasons:?}");
    }
}

#[test]
fn oversized_inputs_are_refused_by_size() {
    let (report, chain, nonce) = sample();
    let mut big = report.clone();
    big.resize(MAX_REPORT_BYTES + 1, 0);
    assert_eq!(
        verify(&big, &chain, &expected(nonce), &Trust::nvidia(), None)
            .unwrap_err()
            .reason,
        Reason::ReportTooLarge
    );
    let mut big = chain.clone();
    big.resize(MAX_CHAIN_BYTES + 1, b'\n');
    assert_eq!(
        verify(&report, &big, &expected(nonce), &Trust::nvidia(), None)
            .unwrap_err()
            .reason,
        Reason::ChainTooLarge
    );
}

#[test]
fn reason_codes_are_unique_snake_case() {
    let codes: BTreeSet<&str> = Reason::ALL.iter().map(Reason::code).collect();
    assert_eq!(codes.len(), Reason::ALL.len());
    for code in codes {
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(report in prop::collection::vec(any::<u8>(), 0..600),
                                chain in prop::collection::vec(any::<u8>(), 0..600)) {
        let (_, real_chain, nonce) = sample();
        prop_assert!(verify(&report, &chain, &expected(nonce), &Trust::nvidia(), None).is_err());
        prop_assert!(verify(&report, &real_chain, &expected(nonce), &Trust::nvidia(), None).is_err());
    }

    #[test]
    fn random_bytes_never_panic_the_ocsp_reader(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = proto_gpu_evidence::OcspCache::from_responses([bytes]);
    }

    #[test]
    fn random_markup_never_panics_the_rim_reader(text in "[<>=\"' a-zA-Z0-9:!?/-]{0,300}") {
        let _ = proto_gpu_evidence::RimSet::from_files([("random", text.as_bytes())]);
    }

    #[test]
    fn damaged_reports_and_chains_fail(at in any::<prop::sample::Index>(), bits in 1u8..=255,
                                       damage_chain in any::<bool>()) {
        let (mut report, pem, nonce) = sample();
        let mut chain = chain_der(&pem);
        let target = if damage_chain { &mut chain } else { &mut report };
        let offset = at.index(target.len());
        target[offset] ^= bits;
        // Damage to a chain may hit bytes no check reads (e.g. an unverified root signature
        // bit is still covered: the root must equal the pinned DER exactly).
        prop_assert!(verify(&report, &chain, &expected(nonce), &Trust::nvidia(), None).is_err());
    }
}

#[test]
fn every_change_to_the_unsigned_bytes_of_a_der_chain_fails() {
    // Bytes inside each signed part are covered by the signatures (and by the random-damage
    // property above); here every byte outside them: the outer header, the outer signature
    // algorithm and the signature, changed in several ways. x509-parser alone accepts a wrong
    // tag on the outer algorithm and unused bits in the signature, which would let one chain
    // travel as many byte strings; the chain parser refuses both.
    let (report, pem, nonce) = sample();
    let chain = chain_der(&pem);
    let mut unsigned = Vec::new();
    let mut start = 0;
    while start < chain.len() {
        let outer_len = usize::from(chain[start + 2]) << 8 | usize::from(chain[start + 3]);
        let tbs_len = usize::from(chain[start + 6]) << 8 | usize::from(chain[start + 7]);
        assert_eq!(
            (chain[start + 1], chain[start + 5]),
            (0x82, 0x82),
            "two-byte lengths"
        );
        let end = start + 4 + outer_len;
        unsigned.extend(start..start + 4);
        unsigned.extend(start + 8 + tbs_len..end);
        start = end;
    }
    assert!(unsigned.len() > 400, "{}", unsigned.len());
    for pattern in [0x01, 0x60, 0xFF] {
        for &offset in &unsigned {
            let mut damaged = chain.clone();
            damaged[offset] ^= pattern;
            assert!(
                verify(&report, &damaged, &expected(nonce), &Trust::nvidia(), None).is_err(),
                "byte {offset} ^ {pattern:#04x}"
            );
        }
    }
}
