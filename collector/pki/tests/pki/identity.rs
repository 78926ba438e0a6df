//! `identity_of` against certificates the collector did not make.

use std::fs;

use collector_pki::{IdentityError, PeerIdentity, Role, identity_of, make_csr};
use rcgen::{CertificateParams, CustomExtension, DnType, SanType};

use crate::harness::*;

#[test]
fn identities_are_refused_for_the_right_reason() {
    let long = format!("urn:veu:agent:{}", "n".repeat(257));
    let cases: Vec<(&str, Vec<SanType>, Result<PeerIdentity, IdentityError>)> = vec![
        ("no SAN at all", vec![], Err(IdentityError::NoVeuUri)),
        (
            "DNS only",
            vec![dns("gpu-node-1")],
            Err(IdentityError::NoVeuUri),
        ),
        (
            "veu text in a DNS SAN",
            vec![dns("urn:veu:admin:admin")],
            Err(IdentityError::NoVeuUri),
        ),
        (
            "non-veu URIs",
            vec![uri("https://collector.test/"), uri("urn:other:admin:admin")],
            Err(IdentityError::NoVeuUri),
        ),
        (
            "lookalike prefix",
            vec![uri("urn:veux:admin:a")],
            Err(IdentityError::NoVeuUri),
        ),
        (
            "two veu URIs",
            vec![uri("urn:veu:agent:a"), uri("urn:veu:admin:admin")],
            Err(IdentityError::SeveralVeuUris(2)),
        ),
        (
            "the same URI twice",
            vec![uri("urn:veu:agent:a"), uri("urn:veu:agent:a")],
            Err(IdentityError::SeveralVeuUris(2)),
        ),
        (
            "a second one in capitals",
            vec![uri("urn:veu:agent:a"), uri("URN:VEU:admin:admin")],
            Err(IdentityError::SeveralVeuUris(2)),
        ),
        (
            "role root",
            vec![uri("urn:veu:root:x")],
            Err(IdentityError::BadRole("root".into())),
        ),
        (
            "role in capitals",
            vec![uri("urn:veu:ADMIN:x")],
            Err(IdentityError::BadRole("ADMIN".into())),
        ),
        (
            "empty name",
            vec![uri("urn:veu:agent:")],
            Err(IdentityError::BadName(String::new())),
        ),
        (
            "no name",
            vec![uri("urn:veu:admin")],
            Err(IdentityError::BadName(String::new())),
        ),
        (
            "slash in name",
            vec![uri("urn:veu:agent:a/b")],
            Err(IdentityError::BadName("a/b".into())),
        ),
        (
            "space in name",
            vec![uri("urn:veu:agent:a b")],
            Err(IdentityError::BadName("a b".into())),
        ),
        (
            "name too long",
            vec![uri(&long)],
            Err(IdentityError::BadName(format!("{}…", "n".repeat(64)))),
        ),
        (
            "other SANs beside one veu URI",
            vec![
                dns("gpu-node-1"),
                uri("https://x.test/"),
                uri("urn:veu:agent:gpu-node-1"),
            ],
            Ok(PeerIdentity {
                role: Role::Agent,
                name: "gpu-node-1".into(),
            }),
        ),
        (
            "name with colons and dots",
            vec![uri("urn:veu:auditor:bafa:team.1")],
            Ok(PeerIdentity {
                role: Role::Auditor,
                name: "bafa:team.1".into(),
            }),
        ),
    ];
    for (what, sans, want) in cases {
        assert_eq!(identity_of(&with_sans(&sans)), want, "{what}");
    }
}

#[test]
fn the_common_name_never_counts() {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "urn:veu:admin:admin");
    params.subject_alt_names = vec![dns("host.test")];
    assert_eq!(
        identity_of(&self_signed(params)),
        Err(IdentityError::NoVeuUri)
    );
}

#[test]
fn a_second_san_extension_is_refused() {
    // GeneralNames ::= SEQUENCE { [6] IA5String "urn:veu:admin:admin" }
    let admin = b"urn:veu:admin:admin";
    let mut general_names = vec![0x30, (admin.len() + 2) as u8, 0x86, admin.len() as u8];
    general_names.extend_from_slice(admin);
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![uri("urn:veu:agent:a")];
    params.custom_extensions = vec![CustomExtension::from_oid_content(
        &[2, 5, 29, 17],
        general_names,
    )];
    assert_eq!(
        identity_of(&self_signed(params)),
        Err(IdentityError::BadSubjectAltName)
    );
}

#[test]
fn a_malformed_san_extension_is_refused() {
    // A SAN whose GeneralNames claims 0x7f bytes but holds three.
    let mut params = CertificateParams::default();
    params.custom_extensions = vec![CustomExtension::from_oid_content(
        &[2, 5, 29, 17],
        vec![0x30, 0x7f, 0x86, 0x01, b'x'],
    )];
    assert_eq!(
        identity_of(&self_signed(params)),
        Err(IdentityError::BadSubjectAltName)
    );
}

#[test]
fn garbage_and_near_certificates_are_refused_without_panic() {
    let (_tmp, paths) = fresh();
    let good = der_file(&paths.admin_cert());
    assert!(identity_of(&good).is_ok());

    let pem = fs::read(paths.admin_cert()).unwrap();
    let (csr, _) = make_csr("gpu-node-1").unwrap();
    let mut trailing = good.clone();
    trailing.push(0);
    for bytes in [&b""[..], b"\x00", b"hello", &pem, &csr, &trailing] {
        assert_eq!(identity_of(bytes), Err(IdentityError::NotACertificate));
    }
    for cut in 0..good.len() {
        assert!(
            identity_of(&good[..cut]).is_err(),
            "a {cut}-byte prefix was accepted"
        );
    }
    // Every single-byte corruption must give an answer, never a panic. (Some, in the signature
    // for instance, still parse: identity_of reads, the TLS layer verifies.)
    for at in 0..good.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[at] ^= flip;
            let _ = identity_of(&bad);
        }
    }
}
