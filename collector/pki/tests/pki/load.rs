//! `Ca::load` refusing CA files that are not what they say.

use std::fs;

use collector_pki::{Ca, PkiError, Role};

use crate::harness::*;

#[test]
fn load_refuses_a_key_that_is_not_the_cas() {
    let (_tmp, paths) = fresh();
    fs::copy(paths.admin_key(), paths.ca_key()).unwrap();
    match Ca::load(&paths.dir).unwrap_err() {
        PkiError::BadCa { path, .. } => assert_eq!(path, paths.ca_key()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn load_refuses_a_leaf_posing_as_the_ca() {
    let (_tmp, paths) = fresh();
    fs::copy(paths.server_cert(), paths.ca_cert()).unwrap();
    fs::copy(paths.server_key(), paths.ca_key()).unwrap();
    match Ca::load(&paths.dir).unwrap_err() {
        PkiError::BadCa { path, .. } => assert_eq!(path, paths.ca_cert()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn load_reports_missing_and_garbled_files() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        Ca::load(tmp.path()).unwrap_err(),
        PkiError::Io { .. }
    ));
    let (_tmp, paths) = fresh();
    fs::write(paths.ca_cert(), "not pem").unwrap();
    assert!(matches!(
        Ca::load(&paths.dir).unwrap_err(),
        PkiError::BadCa { .. }
    ));
    let (_tmp, paths) = fresh();
    fs::write(
        paths.ca_key(),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    assert!(matches!(
        Ca::load(&paths.dir).unwrap_err(),
        PkiError::BadCa { .. }
    ));
}

#[test]
fn a_loaded_ca_issues_like_the_one_init_made() {
    // The Issuer rebuilt from ca.pem must sign with the same name and key id as at init.
    let (_tmp, paths) = fresh();
    let ca = Ca::load(&paths.dir).unwrap();
    let fresh_leaf = der(&ca.issue_client(Role::Admin, "ops", now()).unwrap().cert_pem);
    let init_leaf = der_file(&paths.admin_cert());
    let (a, b) = (parse(&fresh_leaf), parse(&init_leaf));
    assert_eq!(a.issuer().as_raw(), b.issuer().as_raw());
    assert_eq!(key_id(&a, true), key_id(&b, true));
}
