//! Enrollment: `sign_csr`, `make_csr` and `issue_client`.

use std::fs;
use std::path::Path;

use collector_pki::{Ca, IdentityError, PeerIdentity, PkiError, Role, identity_of, make_csr};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519,
};

use crate::harness::*;

/// A CSR that asks for everything an attacker would like: the admin identity, a DNS name,
/// server auth and CA powers.
fn greedy_csr(key: &KeyPair) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "urn:veu:admin:admin");
    params.subject_alt_names = vec![uri("urn:veu:admin:admin"), dns("collector.test")];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.serialize_request(key).unwrap().der().to_vec()
}

#[test]
fn sign_csr_certifies_the_identity_the_collector_chose_not_the_requested_one() {
    let (_tmp, paths) = fresh();
    let ca = Ca::load(&paths.dir).unwrap();
    let key = KeyPair::generate().unwrap();
    let pem = ca
        .sign_csr(&greedy_csr(&key), Role::Agent, "gpu-node-1", now())
        .unwrap();
    let leaf_der = der(&pem);
    let leaf = parse(&leaf_der);

    assert_eq!(
        identity_of(&leaf_der).unwrap(),
        PeerIdentity {
            role: Role::Agent,
            name: "gpu-node-1".into()
        }
    );
    assert_eq!(
        sans(&leaf),
        ["uri:urn:veu:agent:gpu-node-1"],
        "nothing requested survives"
    );
    let cn = leaf
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    assert_eq!(cn, "urn:veu:agent:gpu-node-1");
    assert_eq!(usages(&leaf), (false, true));
    let bc = leaf
        .basic_constraints()
        .unwrap()
        .expect("explicit CA:false")
        .value;
    assert!(!bc.ca);
    assert_eq!(
        key.public_key_raw(),
        leaf.public_key().subject_public_key.data.as_ref()
    );
    assert_eq!(
        lifetime(&leaf),
        (now_secs() - BACKDATE, now_secs() + 365 * DAY)
    );
    assert_chains(&leaf, &parse(&der_file(&paths.ca_cert())));
}

#[test]
fn issued_certificates_do_not_chain_to_another_ca() {
    let (_tmp, paths) = fresh();
    let (_tmp2, other) = fresh();
    let ca = Ca::load(&paths.dir).unwrap();
    let (csr, _) = make_csr("gpu-node-1").unwrap();
    let leaf_der = der(&ca.sign_csr(&csr, Role::Agent, "gpu-node-1", now()).unwrap());
    let leaf = parse(&leaf_der);
    let other_der = der_file(&other.ca_cert());
    let other_ca = parse(&other_der);
    assert!(leaf.verify_signature(Some(other_ca.public_key())).is_err());
}

#[test]
fn make_csr_round_trips_through_enrollment() {
    let (_tmp, paths) = fresh();
    let ca = Ca::load(&paths.dir).unwrap();
    assert_eq!(ca.ca_pem(), fs::read_to_string(paths.ca_cert()).unwrap());
    let (csr, key_pem) = make_csr("gpu-node-1").unwrap();
    let key = KeyPair::from_pem(&key_pem).unwrap();
    assert_eq!(key.algorithm(), &PKCS_ECDSA_P256_SHA256);
    let leaf_der = der(&ca.sign_csr(&csr, Role::Agent, "gpu-node-1", now()).unwrap());
    assert_eq!(
        key.public_key_raw(),
        parse(&leaf_der)
            .public_key()
            .subject_public_key
            .data
            .as_ref()
    );
    assert!(matches!(
        make_csr("bad name"),
        Err(PkiError::BadIdentity(IdentityError::BadName(_)))
    ));
}

#[test]
fn the_same_key_certified_twice_gets_distinct_positive_serials() {
    let (_tmp, paths) = fresh();
    let ca = Ca::load(&paths.dir).unwrap();
    let (csr, _) = make_csr("gpu-node-1").unwrap();
    let a = der(&ca.sign_csr(&csr, Role::Agent, "gpu-node-1", now()).unwrap());
    let b = der(&ca.sign_csr(&csr, Role::Agent, "gpu-node-1", now()).unwrap());
    let (a, b) = (parse(&a), parse(&b));
    assert_ne!(a.raw_serial(), b.raw_serial());
    for serial in [a.raw_serial(), b.raw_serial()] {
        assert!(serial.len() <= 20 && serial[0] & 0x80 == 0, "{serial:02x?}");
    }
}

#[test]
fn p384_and_ed25519_keys_are_certified() {
    let (_tmp, paths) = fresh();
    let ca = Ca::load(&paths.dir).unwrap();
    for alg in [&PKCS_ECDSA_P384_SHA384, &PKCS_ED25519] {
        let key = KeyPair::generate_for(alg).unwrap();
        let csr = CertificateParams::default()
            .serialize_request(&key)
            .unwrap();
        let leaf_der = der(&ca.sign_csr(csr.der(), Role::Agent, "n", now()).unwrap());
        assert_eq!(
            key.public_key_raw(),
            parse(&leaf_der)
                .public_key()
                .subject_public_key
                .data
                .as_ref()
        );
    }
}

#[test]
fn bad_csrs_are_refused() {
    let (_tmp, paths) = fresh();
    let ca = Ca::load(&paths.dir).unwrap();
    let (good, _) = make_csr("gpu-node-1").unwrap();

    let mut forged = good.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x01; // inside the signature
    let mut trailing = good.clone();
    trailing.push(0);
    let cert = der_file(&paths.admin_cert());
    for (what, csr) in [
        ("forged signature", &forged[..]),
        ("trailing bytes", &trailing[..]),
        ("empty", &[][..]),
        ("a certificate", &cert[..]),
        ("truncated", &good[..good.len() / 2]),
    ] {
        let err = ca
            .sign_csr(csr, Role::Agent, "gpu-node-1", now())
            .unwrap_err();
        assert!(matches!(err, PkiError::BadCsr(_)), "{what}: {err:?}");
    }

    let mut params = CertificateParams::default();
    params.custom_extensions = vec![CustomExtension::from_oid_content(&[1, 2, 3, 4], vec![5, 0])];
    let odd = params
        .serialize_request(&KeyPair::generate().unwrap())
        .unwrap();
    let err = ca.sign_csr(odd.der(), Role::Agent, "n", now()).unwrap_err();
    assert!(
        matches!(err, PkiError::BadCsr(_)),
        "unknown extension: {err:?}"
    );

    for (role, name) in [
        (Role::Agent, ""),
        (Role::Agent, "a b"),
        (Role::Admin, "x/y"),
    ] {
        let err = ca.sign_csr(&good, role, name, now()).unwrap_err();
        assert!(
            matches!(err, PkiError::BadIdentity(IdentityError::BadName(_))),
            "{err:?}"
        );
    }
}

#[test]
fn keys_the_collector_does_not_certify_are_refused() {
    let (_tmp, paths) = fresh();
    let ca = Ca::load(&paths.dir).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (fixture, why) in [
        ("rsa2048.csr.der", "only ECDSA P-256, P-384 and Ed25519"),
        // Valid and correctly signed, but rcgen would write it out under the P-384 curve.
        (
            "p256-sha384.csr.der",
            "does not match its signature algorithm",
        ),
    ] {
        let csr = fs::read(fixtures.join(fixture)).unwrap();
        match ca.sign_csr(&csr, Role::Agent, "gpu-node-1", now()) {
            Err(PkiError::UnsupportedKey(reason)) => assert!(reason.contains(why), "{fixture}"),
            other => panic!("{fixture}: {other:?}"),
        }
    }
}

#[test]
fn issue_client_makes_a_fresh_key_and_hides_it_from_debug() {
    let (_tmp, paths) = fresh();
    let ca = Ca::load(&paths.dir).unwrap();
    let cred = ca.issue_client(Role::Auditor, "bafa-1", now()).unwrap();
    let leaf_der = der(&cred.cert_pem);
    let leaf = parse(&leaf_der);
    assert_eq!(
        identity_of(&leaf_der).unwrap(),
        PeerIdentity {
            role: Role::Auditor,
            name: "bafa-1".into()
        }
    );
    assert_chains(&leaf, &parse(&der_file(&paths.ca_cert())));
    let key = KeyPair::from_pem(&cred.key_pem).unwrap();
    assert_eq!(
        key.public_key_raw(),
        leaf.public_key().subject_public_key.data.as_ref()
    );
    assert!(!format!("{cred:?}").contains("PRIVATE KEY"));
    assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
    assert!(matches!(
        ca.issue_client(Role::Admin, "", now()),
        Err(PkiError::BadIdentity(IdentityError::BadName(_)))
    ));
}

#[test]
fn long_identities_get_no_common_name_and_a_critical_san() {
    let (_tmp, paths) = fresh();
    let ca = Ca::load(&paths.dir).unwrap();
    let name = "n".repeat(256);
    let cred = ca.issue_client(Role::Agent, &name, now()).unwrap();
    let leaf_der = der(&cred.cert_pem);
    let leaf = parse(&leaf_der);
    assert_eq!(identity_of(&leaf_der).unwrap().name, name);
    assert_eq!(leaf.subject().iter().count(), 0);
    assert!(leaf.subject_alternative_name().unwrap().unwrap().critical);
}
