//! X.509 from peers (collector-pki): a client certificate's identity (`identity_of`, the
//! `urn:veu:<role>:<name>` SAN every mTLS call is authorised by) and an enrolment CSR through
//! the issuing path (`Ca::sign_csr`, then `same_key`). A certificate issued from a CSR names
//! the agent it was issued to and certifies the CSR's key.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use collector_pki::{Ca, Role, identity_of, same_key};
use libfuzzer_sys::fuzz_target;

/// A fixed instant, so issuing never depends on the clock.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000)
}

fn ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        collector_pki::init(&dir, &["collector.example".to_owned()], now()).expect("a PKI");
        Ca::load(&dir).expect("its CA")
    })
}

fn der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("rcgen writes base64")
}

fuzz_target!(|data: &[u8]| {
    let _ = identity_of(data);
    if let Ok(pem) = ca().sign_csr(data, Role::Agent, "gpu-node-1", now()) {
        let cert = der(&pem);
        let identity = identity_of(&cert).expect("an issued certificate names its peer");
        assert_eq!(identity.to_string(), "urn:veu:agent:gpu-node-1");
        assert!(
            same_key(data, &cert),
            "the certificate certifies the CSR's key"
        );
    }
});
