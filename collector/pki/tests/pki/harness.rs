//! Fixed clock, a fresh PKI per test, and readers for what the certificates say.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use collector_pki::{PkiPaths, init};
use rcgen::string::Ia5String;
use rcgen::{CertificateParams, KeyPair, SanType};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

pub const DAY: i64 = 86_400;
pub const BACKDATE: i64 = 3_600;

/// A fixed instant (2025-10-09), so that validity arithmetic is exact.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_760_000_000)
}

pub fn now_secs() -> i64 {
    1_760_000_000
}

pub fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub fn fresh() -> (tempfile::TempDir, PkiPaths) {
    let tmp = tempfile::tempdir().unwrap();
    let paths = init(
        &tmp.path().join("pki"),
        &names(&["collector.test", "127.0.0.1", "::1"]),
        now(),
    )
    .unwrap();
    (tmp, paths)
}

pub fn der(pem: &str) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    assert_eq!(pem.label, "CERTIFICATE");
    pem.contents
}

pub fn der_file(path: &Path) -> Vec<u8> {
    der(&fs::read_to_string(path).unwrap())
}

pub fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = X509Certificate::from_der(der).unwrap();
    assert!(rest.is_empty());
    cert
}

pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

pub fn key_id(cert: &X509Certificate<'_>, authority: bool) -> Option<Vec<u8>> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) if authority => {
                aki.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            ParsedExtension::SubjectKeyIdentifier(ski) if !authority => Some(ski.0.to_vec()),
            _ => None,
        })
}

/// Everything a leaf issued by `ca` must satisfy to chain to it: issuer name, authority key id,
/// and a signature that verifies with the CA key.
pub fn assert_chains(leaf: &X509Certificate<'_>, ca: &X509Certificate<'_>) {
    assert_eq!(leaf.issuer().as_raw(), ca.subject().as_raw());
    let ski = key_id(ca, false).expect("the CA has a subject key id");
    assert_eq!(key_id(leaf, true), Some(ski));
    leaf.verify_signature(Some(ca.public_key())).unwrap();
    assert!(!leaf.is_ca());
}

pub fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Some(san) = cert.subject_alternative_name().unwrap() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::URI(uri) => format!("uri:{uri}"),
            GeneralName::DNSName(dns) => format!("dns:{dns}"),
            GeneralName::IPAddress(ip) => format!("ip:{ip:02x?}"),
            other => format!("other:{other:?}"),
        })
        .collect()
}

pub fn usages(cert: &X509Certificate<'_>) -> (bool, bool) {
    let eku = cert
        .extended_key_usage()
        .unwrap()
        .expect("an EKU extension")
        .value;
    assert!(!eku.any && eku.other.is_empty());
    (eku.server_auth, eku.client_auth)
}

pub fn lifetime(cert: &X509Certificate<'_>) -> (i64, i64) {
    let v = cert.validity();
    (v.not_before.timestamp(), v.not_after.timestamp())
}

pub fn self_signed(params: CertificateParams) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

pub fn with_sans(sans: &[SanType]) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans.to_vec();
    self_signed(params)
}

pub fn uri(s: &str) -> SanType {
    SanType::URI(Ia5String::try_from(s).unwrap())
}

pub fn dns(s: &str) -> SanType {
    SanType::DnsName(Ia5String::try_from(s).unwrap())
}
