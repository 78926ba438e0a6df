//! `init`: the files, their modes, what each certificate says, and refusing to replace a CA.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, UNIX_EPOCH};

use collector_pki::{
    CA_COMMON_NAME, IdentityError, PeerIdentity, PkiError, PkiPaths, Role, identity_of, init,
};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};

use crate::harness::*;

#[test]
fn init_writes_every_file_with_owner_only_keys() {
    let (_tmp, paths) = fresh();
    assert_eq!(mode(&paths.dir), 0o700);
    for key in [
        paths.ca_key(),
        paths.server_key(),
        paths.admin_key(),
        paths.auditor_key(),
    ] {
        assert_eq!(mode(&key), 0o600, "{}", key.display());
        let pem = fs::read_to_string(&key).unwrap();
        assert!(
            pem.starts_with("-----BEGIN PRIVATE KEY-----"),
            "PKCS#8: {}",
            key.display()
        );
        KeyPair::from_pem(&pem).unwrap();
    }
    for cert in [
        paths.ca_cert(),
        paths.server_cert(),
        paths.admin_cert(),
        paths.auditor_cert(),
    ] {
        assert_eq!(mode(&cert), 0o644, "{}", cert.display());
    }
    let mut listed: Vec<_> = fs::read_dir(&paths.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "admin.key",
            "admin.pem",
            "auditor.key",
            "auditor.pem",
            "ca.key",
            "ca.pem",
            "server.key",
            "server.pem"
        ]
    );
}

#[test]
fn init_makes_a_ten_year_p256_ca() {
    let (_tmp, paths) = fresh();
    let ca_der = der_file(&paths.ca_cert());
    let ca = parse(&ca_der);
    assert!(ca.is_ca());
    let cn = ca
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    assert_eq!(cn, CA_COMMON_NAME);
    assert_eq!(ca.issuer().as_raw(), ca.subject().as_raw());
    ca.verify_signature(None).unwrap();
    let bc = ca.basic_constraints().unwrap().unwrap().value;
    assert_eq!(bc.path_len_constraint, Some(0), "the CA signs leaves only");
    let ku = ca.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign());
    assert_eq!(
        lifetime(&ca),
        (now_secs() - BACKDATE, now_secs() + 3_652 * DAY)
    );
    let key = KeyPair::from_pem(&fs::read_to_string(paths.ca_key()).unwrap()).unwrap();
    assert_eq!(key.algorithm(), &PKCS_ECDSA_P256_SHA256);
    assert_eq!(
        key.public_key_raw(),
        ca.public_key().subject_public_key.data.as_ref()
    );
}

#[test]
fn init_server_certificate_has_dns_and_ip_sans_and_server_auth_only() {
    let (_tmp, paths) = fresh();
    let ca_der = der_file(&paths.ca_cert());
    let server_der = der_file(&paths.server_cert());
    let server = parse(&server_der);
    assert_chains(&server, &parse(&ca_der));
    assert_eq!(
        sans(&server),
        [
            "dns:collector.test".to_string(),
            format!("ip:{:02x?}", [127u8, 0, 0, 1]),
            format!(
                "ip:{:02x?}",
                "::1".parse::<std::net::Ipv6Addr>().unwrap().octets()
            ),
        ]
    );
    assert_eq!(usages(&server), (true, false));
    assert_eq!(identity_of(&server_der), Err(IdentityError::NoVeuUri));
    assert_eq!(
        lifetime(&server),
        (now_secs() - BACKDATE, now_secs() + 365 * DAY)
    );
}

#[test]
fn init_admin_and_auditor_certificates_carry_their_identity() {
    let (_tmp, paths) = fresh();
    let ca_der = der_file(&paths.ca_cert());
    let ca = parse(&ca_der);
    for (cert_path, key_path, role, name) in [
        (paths.admin_cert(), paths.admin_key(), Role::Admin, "admin"),
        (
            paths.auditor_cert(),
            paths.auditor_key(),
            Role::Auditor,
            "auditor",
        ),
    ] {
        let leaf_der = der_file(&cert_path);
        let leaf = parse(&leaf_der);
        assert_chains(&leaf, &ca);
        let id = identity_of(&leaf_der).unwrap();
        assert_eq!(
            id,
            PeerIdentity {
                role,
                name: name.into()
            }
        );
        assert_eq!(sans(&leaf), [format!("uri:urn:veu:{role}:{name}")]);
        assert_eq!(usages(&leaf), (false, true));
        assert_eq!(
            lifetime(&leaf),
            (now_secs() - BACKDATE, now_secs() + 365 * DAY)
        );
        let key = KeyPair::from_pem(&fs::read_to_string(key_path).unwrap()).unwrap();
        assert_eq!(
            key.public_key_raw(),
            leaf.public_key().subject_public_key.data.as_ref()
        );
    }
}

#[test]
fn rerunning_init_fails_and_leaves_the_ca_untouched() {
    let (_tmp, paths) = fresh();
    let snapshot = |p: &PkiPaths| {
        let mut files: Vec<_> = fs::read_dir(&p.dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), fs::read(e.path()).unwrap(), mode(&e.path()))
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot(&paths);
    let err = init(
        &paths.dir,
        &names(&["other.test"]),
        now() + Duration::from_secs(60),
    )
    .unwrap_err();
    let text = err.to_string();
    match err {
        PkiError::CaKeyExists(path) => assert_eq!(path, paths.ca_key()),
        other => panic!("expected CaKeyExists, got {other:?}"),
    }
    assert!(
        text.contains(&paths.ca_key().display().to_string()),
        "{text}"
    );
    assert_eq!(snapshot(&paths), before, "no file may change");
}

#[test]
fn init_refuses_even_a_dangling_ca_key_link() {
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), tmp.path().join("ca.key")).unwrap();
    let err = init(tmp.path(), &names(&["c.test"]), now()).unwrap_err();
    assert!(matches!(err, PkiError::CaKeyExists(_)), "{err:?}");
    assert!(
        !tmp.path().join("nowhere").exists(),
        "nothing written through the link"
    );
}

#[test]
fn bad_server_names_are_refused_before_anything_is_written() {
    for bad in [
        &["bad name"][..],
        &["-lead.test"],
        &["a..b"],
        &["ünï.test"],
        &[""],
        &[],
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        let err = init(&dir, &names(bad), now()).unwrap_err();
        assert!(
            matches!(err, PkiError::BadServerName(_) | PkiError::NoServerNames),
            "{bad:?}: {err:?}"
        );
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "{bad:?} left files");
        init(&dir, &names(&["good.test"]), now()).unwrap();
    }
}

#[test]
fn init_tightens_an_existing_directory_and_replaces_loose_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    // A world-readable server.key left by something else: rewriting it in place would keep
    // its mode and publish the new key.
    let leftover = dir.join("server.key");
    fs::write(&leftover, "old").unwrap();
    fs::set_permissions(&leftover, fs::Permissions::from_mode(0o644)).unwrap();

    let paths = init(&dir, &names(&["c.test"]), now()).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&paths.server_key()), 0o600);
    assert_ne!(fs::read_to_string(paths.server_key()).unwrap(), "old");
}

#[test]
fn absurd_clocks_are_errors_not_panics() {
    for when in [
        UNIX_EPOCH - Duration::from_secs(1),
        UNIX_EPOCH + Duration::from_secs(300_000_000_000),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let err = init(tmp.path(), &names(&["c.test"]), when).unwrap_err();
        assert!(matches!(err, PkiError::ClockOutOfRange), "{err:?}");
    }
}
