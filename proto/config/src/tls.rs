//! Checks of the TLS files a configuration names, so that a daemon never starts to find out:
//! PEM that holds what its key says (a private key where a certificate is expected is named as
//! swapped), certificates within their validity, and a key that is the one its certificate
//! certifies.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::document::Problems;
use crate::files;

/// A configuration key and the file it names.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a> {
    /// The key, as written in problems (`tls.certificate`).
    pub key: &'a str,
    /// The file.
    pub path: &'a Path,
}

/// A certificate and its private key, checked; PEM as read.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate chain, leaf first.
    pub certificate_pem: Vec<u8>,
    /// The private key.
    pub key_pem: Vec<u8>,
}

/// A client's mutual-TLS material, checked; PEM as read.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// The CA that signs the server's certificate.
    pub ca_pem: Vec<u8>,
    /// The client's certificate chain, leaf first.
    pub certificate_pem: Vec<u8>,
    /// Its private key.
    pub key_pem: Vec<u8>,
}

impl ClientTls {
    /// The server's CA and the client's `identity`.
    pub fn new(ca_pem: Vec<u8>, identity: Identity) -> Self {
        Self {
            ca_pem,
            certificate_pem: identity.certificate_pem,
            key_pem: identity.key_pem,
        }
    }
}

/// Reads and checks a certificate (chain) and its private key: each file holds what its key
/// says, the leaf is valid at `now`, and the key is the leaf's. Problems are recorded at the
/// key of the file at fault. Where either key has a problem already (its value is not known),
/// neither file is read: `None`.
pub fn identity(
    certificate: Named<'_>,
    key: Named<'_>,
    now: SystemTime,
    problems: &Problems,
) -> Option<Identity> {
    if problems.has(certificate.key) || problems.has(key.key) {
        return None;
    }
    let certificate_pem = files::read(certificate.key, certificate.path, problems);
    let key_pem = files::read(key.key, key.path, problems);
    let certificates = certificate_pem
        .as_deref()
        .and_then(|pem| certificates(certificate, Some(key), pem, problems));
    let private = key_pem.as_deref().and_then(|pem| {
        let sections = sections(key, pem, problems)?;
        let mut keys = sections.iter().filter(|(kind, _)| is_private(*kind));
        match keys.next() {
            Some((kind, der)) => PrivateKeyDer::from_pem(*kind, der.clone()),
            None => {
                problems.push(
                    key.key,
                    if sections
                        .iter()
                        .any(|(kind, _)| *kind == SectionKind::Certificate)
                    {
                        format!(
                            "{} holds a certificate, not a private key: are {} and {} swapped?",
                            key.path.display(),
                            certificate.key,
                            key.key
                        )
                    } else {
                        format!("{} holds no PEM private key", key.path.display())
                    },
                );
                None
            }
        }
    });
    let certificates = certificates?;
    let leaf = certificates.first()?;
    let valid = valid_at(certificate, leaf, now, problems);
    let private = private?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = match provider.key_provider.load_private_key(private) {
        Ok(signing) => signing,
        Err(error) => {
            problems.push(
                key.key,
                format!(
                    "{} is not a usable private key: {error}",
                    key.path.display()
                ),
            );
            return None;
        }
    };
    // A key whose public half is unknown cannot be compared: only a mismatch is refused.
    if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
        CertifiedKey::new(certificates, signing).keys_match()
    {
        problems.push(
            key.key,
            format!(
                "{} is not the key of the certificate in {} ({}): they do not belong together",
                key.path.display(),
                certificate.path.display(),
                certificate.key
            ),
        );
        return None;
    }
    valid.then(|| Identity {
        certificate_pem: certificate_pem.unwrap_or_default(),
        key_pem: key_pem.unwrap_or_default(),
    })
}

/// Reads and checks the certificates a peer's certificate must chain to: one or more PEM
/// certificates, each valid at `now`. Where its key has a problem already (its value is not
/// known), the file is not read: `None`.
pub fn trust_anchors(anchors: Named<'_>, now: SystemTime, problems: &Problems) -> Option<Vec<u8>> {
    if problems.has(anchors.key) {
        return None;
    }
    let pem = files::read(anchors.key, anchors.path, problems)?;
    let certificates = certificates(anchors, None, &pem, problems)?;
    let mut valid = true;
    for certificate in &certificates {
        valid &= valid_at(anchors, certificate, now, problems);
    }
    valid.then_some(pem)
}

/// Every certificate a PEM bundle holds, DER.
pub fn certificates_of(pem: &[u8]) -> Vec<Vec<u8>> {
    <(SectionKind, Vec<u8>)>::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| der)
        .collect()
}

fn certificates(
    file: Named<'_>,
    key: Option<Named<'_>>,
    pem: &[u8],
    problems: &Problems,
) -> Option<Vec<CertificateDer<'static>>> {
    let sections = sections(file, pem, problems)?;
    let certificates: Vec<CertificateDer<'static>> = sections
        .iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der.clone()))
        .collect();
    if certificates.is_empty() {
        let holds_key = sections.iter().any(|(kind, _)| is_private(*kind));
        problems.push(
            file.key,
            match (holds_key, key) {
                (true, Some(key)) => format!(
                    "{} holds a private key, not a certificate: are {} and {} swapped?",
                    file.path.display(),
                    file.key,
                    key.key
                ),
                (true, None) => format!(
                    "{} holds a private key, not a certificate",
                    file.path.display()
                ),
                (false, _) => format!("{} holds no PEM certificate", file.path.display()),
            },
        );
        return None;
    }
    for (index, certificate) in certificates.iter().enumerate() {
        if X509Certificate::from_der(certificate).is_err() {
            problems.push(
                file.key,
                format!(
                    "{}: certificate {} is not a valid X.509 certificate",
                    file.path.display(),
                    index + 1
                ),
            );
            return None;
        }
    }
    Some(certificates)
}

/// Every PEM section of a file; text that is not PEM is a problem.
fn sections(
    file: Named<'_>,
    pem: &[u8],
    problems: &Problems,
) -> Option<Vec<(SectionKind, Vec<u8>)>> {
    let mut found = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        match section {
            Ok(section) => found.push(section),
            Err(error) => {
                problems.push(
                    file.key,
                    format!("{} is not valid PEM: {error}", file.path.display()),
                );
                return None;
            }
        }
    }
    if found.is_empty() {
        problems.push(
            file.key,
            format!(
                "{} holds no PEM (-----BEGIN …----- block)",
                file.path.display()
            ),
        );
        return None;
    }
    Some(found)
}

fn valid_at(
    file: Named<'_>,
    certificate: &CertificateDer<'_>,
    now: SystemTime,
    problems: &Problems,
) -> bool {
    let Ok((_, parsed)) = X509Certificate::from_der(certificate) else {
        return false;
    };
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let validity = parsed.validity();
    let subject = parsed.subject().to_string();
    if now < validity.not_before.timestamp() {
        problems.push(
            file.key,
            format!(
                "{}: the certificate for {subject} is not valid before {}",
                file.path.display(),
                validity.not_before
            ),
        );
        return false;
    }
    if now > validity.not_after.timestamp() {
        problems.push(
            file.key,
            format!(
                "{}: the certificate for {subject} expired on {}",
                file.path.display(),
                validity.not_after
            ),
        );
        return false;
    }
    true
}

fn is_private(kind: SectionKind) -> bool {
    matches!(
        kind,
        SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Self {
            let files = Self {
                dir: tempfile::tempdir().unwrap(),
            };
            let one = rcgen::generate_simple_self_signed(vec!["collector.example".into()]).unwrap();
            let two = rcgen::generate_simple_self_signed(vec!["other.example".into()]).unwrap();
            files.write("cert.pem", &one.cert.pem());
            files.write("key.pem", &one.signing_key.serialize_pem());
            files.write("other.key", &two.signing_key.serialize_pem());
            files
        }

        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.dir.path().join(name), text).unwrap();
        }

        fn check(
            &self,
            certificate: &str,
            key: &str,
            now: SystemTime,
        ) -> (bool, Vec<(String, String)>) {
            let problems = Problems::new();
            let (cert_path, key_path) =
                (self.dir.path().join(certificate), self.dir.path().join(key));
            let found = identity(
                Named {
                    key: "tls.certificate",
                    path: &cert_path,
                },
                Named {
                    key: "tls.key",
                    path: &key_path,
                },
                now,
                &problems,
            );
            (found.is_some(), problems.list())
        }
    }

    #[test]
    fn a_certificate_and_its_key_pass() {
        let files = Files::new();
        assert_eq!(
            files.check("cert.pem", "key.pem", SystemTime::now()),
            (true, vec![])
        );
    }

    #[test]
    fn swapped_files_are_named_as_swapped() {
        let files = Files::new();
        let (ok, problems) = files.check("key.pem", "cert.pem", SystemTime::now());
        assert!(!ok);
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["tls.certificate", "tls.key"], "{problems:?}");
        for (_, message) in &problems {
            assert!(
                message.contains("are tls.certificate and tls.key swapped?"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let files = Files::new();
        let (ok, problems) = files.check("cert.pem", "other.key", SystemTime::now());
        assert!(!ok);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "tls.key");
        assert!(
            problems[0].1.contains("is not the key of the certificate"),
            "{problems:?}"
        );
    }

    #[test]
    fn certificates_outside_their_validity_and_files_that_are_not_pem_are_refused() {
        let files = Files::new();
        let far = SystemTime::now() + Duration::from_secs(3_000 * 365 * 86_400);
        let (_, problems) = files.check("cert.pem", "key.pem", far);
        assert!(problems[0].1.contains("expired on"), "{problems:?}");
        let (_, problems) = files.check("cert.pem", "key.pem", UNIX_EPOCH);
        assert!(
            problems[0].1.contains("is not valid before"),
            "{problems:?}"
        );
        files.write("junk.pem", "not a certificate\n");
        let (_, problems) = files.check("junk.pem", "missing.key", SystemTime::now());
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["tls.key", "tls.certificate"], "{problems:?}");
        assert!(
            problems[0].1.ends_with("missing.key does not exist"),
            "{problems:?}"
        );
        assert!(problems[1].1.contains("holds no PEM"), "{problems:?}");
    }

    #[test]
    fn trust_anchors_hold_certificates() {
        let files = Files::new();
        let problems = Problems::new();
        let path = files.dir.path().join("cert.pem");
        let anchors = Named {
            key: "tls.client_ca",
            path: &path,
        };
        assert!(trust_anchors(anchors, SystemTime::now(), &problems).is_some());
        let path = files.dir.path().join("key.pem");
        let anchors = Named {
            key: "tls.client_ca",
            path: &path,
        };
        assert!(trust_anchors(anchors, SystemTime::now(), &problems).is_none());
        assert!(
            problems.list()[0]
                .1
                .contains("holds a private key, not a certificate")
        );
    }
}
