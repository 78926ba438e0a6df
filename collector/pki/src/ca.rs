//! The collector's issuing CA: client certificates for admins and auditors, and enrollment
//! certificates for agents whose identity the collector chooses, never the requester.

use std::fmt;
use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, SanType, SerialNumber,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::error::PkiError;
use crate::identity::{PeerIdentity, Role};
use crate::init::{CA_CERT, CA_KEY};

/// The development CA's common name.
pub const CA_COMMON_NAME: &str = "veu-attest development CA";

const DAY: u64 = 86_400;
/// About ten years (3,652 days).
pub(crate) const CA_LIFETIME: Duration = Duration::from_secs(3_652 * DAY);
/// One year, for every leaf.
pub(crate) const LEAF_LIFETIME: Duration = Duration::from_secs(365 * DAY);
/// Certificates start this long before `now`, so that a peer whose clock lags a little does not
/// reject a certificate issued a moment ago.
pub(crate) const BACKDATE: Duration = Duration::from_secs(3_600);
/// The latest `now` accepted (about the year 8900): keeps every validity end below the year
/// 9999, which neither X.509 nor the date library can go past.
const LATEST_NOW: Duration = Duration::from_secs(220_000_000_000);
/// X.520's upper bound on a common name; longer identities get no CN.
const CN_MAX: usize = 64;

/// A client certificate with its freshly made private key.
#[derive(Clone)]
pub struct ClientCredential {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its PKCS#8 private key, PEM.
    pub key_pem: String,
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredential")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[elided]")
            .finish()
    }
}

/// An issuing CA: its certificate and signing key.
pub struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Issuer's own Debug already elides the key.
        f.debug_struct("Ca")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Loads `ca.pem` and `ca.key` from `dir`, refusing a certificate that is not a CA or a key
    /// that is not the certificate's.
    pub fn load(dir: &Path) -> Result<Ca, PkiError> {
        let cert_path = dir.join(CA_CERT);
        let key_path = dir.join(CA_KEY);
        let cert_pem = fs::read_to_string(&cert_path).map_err(PkiError::io(&cert_path))?;
        let key_pem = fs::read_to_string(&key_path).map_err(PkiError::io(&key_path))?;
        let bad_cert = |reason| PkiError::BadCa {
            path: cert_path.clone(),
            reason,
        };
        let bad_key = |reason| PkiError::BadCa {
            path: key_path.clone(),
            reason,
        };

        let der = pem_certificate(&cert_pem).ok_or_else(|| bad_cert("not a PEM certificate"))?;
        let (_, cert) =
            X509Certificate::from_der(&der).map_err(|_| bad_cert("not an X.509 certificate"))?;
        if !cert.is_ca() {
            return Err(bad_cert(
                "not a CA certificate (basicConstraints cA is not set)",
            ));
        }
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|_| bad_key("not a PKCS#8 private key of a supported algorithm"))?;
        if key.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
            return Err(bad_key("this key is not the one certified by ca.pem"));
        }
        let issuer = Issuer::from_ca_cert_der(&der.into(), key)
            .map_err(|_| bad_cert("the certificate cannot serve as an issuer"))?;
        Ok(Ca { cert_pem, issuer })
    }

    /// The CA certificate, PEM: what peers put in their trust store.
    pub fn ca_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A client certificate for `urn:veu:<role>:<name>`, with a new P-256 key made here. Meant
    /// for admin and auditor identities; agents enroll with [`Ca::sign_csr`] so their key never
    /// leaves the host.
    pub fn issue_client(
        &self,
        role: Role,
        name: &str,
        now: SystemTime,
    ) -> Result<ClientCredential, PkiError> {
        let identity = PeerIdentity::new(role, name)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::Generate)?;
        let cert = client_params(&identity, now)?
            .signed_by(&key, &self.issuer)
            .map_err(PkiError::Generate)?;
        Ok(ClientCredential {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Certifies the key in a PKCS#10 request as `urn:veu:<role>:<name>` for one year, with
    /// client-auth usage only. Whatever subject, SANs or usages the request asks for are
    /// ignored: the identity is the collector's decision, the request only proves possession of
    /// the key (its signature is checked).
    pub fn sign_csr(
        &self,
        csr_der: &[u8],
        role: Role,
        name: &str,
        now: SystemTime,
    ) -> Result<String, PkiError> {
        let identity = PeerIdentity::new(role, name)?;
        let requested_key = csr_public_key(csr_der)?;
        let csr =
            CertificateSigningRequestParams::from_der(&csr_der.into()).map_err(PkiError::BadCsr)?;
        let algorithm = csr.public_key.algorithm();
        if ![
            &PKCS_ECDSA_P256_SHA256,
            &PKCS_ECDSA_P384_SHA384,
            &PKCS_ED25519,
        ]
        .contains(&algorithm)
        {
            return Err(PkiError::UnsupportedKey(
                "only ECDSA P-256, P-384 and Ed25519 keys",
            ));
        }
        let cert = client_params(&identity, now)?
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(PkiError::Generate)?;
        // rcgen infers the key's algorithm from the request's signature algorithm, so a P-256
        // key signed with SHA-384 would be written out under the P-384 curve: certify only if
        // the certificate carries exactly the key the request held.
        if certified_key(cert.der()).as_deref() != Some(requested_key.as_slice()) {
            return Err(PkiError::UnsupportedKey(
                "the key does not match its signature algorithm",
            ));
        }
        Ok(cert.pem())
    }

    /// A new self-signed CA, returned with its private key PEM.
    pub(crate) fn generate(now: SystemTime) -> Result<(Ca, String), PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, CA_COMMON_NAME);
        set_validity(&mut params, now, CA_LIFETIME)?;
        params.serial_number = Some(fresh_serial()?);
        // Path length 0: this CA signs leaves only, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::Generate)?;
        let cert = params.self_signed(&key).map_err(PkiError::Generate)?;
        let key_pem = key.serialize_pem();
        let ca = Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        };
        Ok((ca, key_pem))
    }

    /// A server certificate for DNS names and IP addresses, returned as (cert PEM, key PEM).
    pub(crate) fn issue_server(
        &self,
        names: &[String],
        now: SystemTime,
    ) -> Result<(String, String), PkiError> {
        if names.is_empty() {
            return Err(PkiError::NoServerNames);
        }
        let mut params = leaf_params(now)?;
        params.subject_alt_names = names
            .iter()
            .map(|name| server_san(name))
            .collect::<Result<_, _>>()?;
        params
            .distinguished_name
            .push(DnType::CommonName, "veu-attest collector");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::Generate)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(PkiError::Generate)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// Agent side of enrollment: a new P-256 key and a CSR for it with CN = `name`, returned as
/// (CSR DER, private key PEM). The collector decides the identity; the CN is only a hint.
pub fn make_csr(name: &str) -> Result<(Vec<u8>, String), PkiError> {
    crate::identity::check_name(name)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::Generate)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    let csr = params.serialize_request(&key).map_err(PkiError::Generate)?;
    Ok((csr.der().to_vec(), key.serialize_pem()))
}

/// Parameters shared by every leaf: fresh serial, backdated one-year validity, not a CA,
/// signature usage, authority key id pointing at the CA.
fn leaf_params(now: SystemTime) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    set_validity(&mut params, now, LEAF_LIFETIME)?;
    params.serial_number = Some(fresh_serial()?);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn client_params(identity: &PeerIdentity, now: SystemTime) -> Result<CertificateParams, PkiError> {
    let uri = identity.to_string();
    let mut params = leaf_params(now)?;
    // The CN is for people reading the certificate; nothing authorises on it. An identity too
    // long for a CN leaves the subject empty, and rcgen then marks the SAN critical as RFC 5280
    // requires.
    if uri.len() <= CN_MAX {
        params
            .distinguished_name
            .push(DnType::CommonName, uri.as_str());
    }
    let uri = Ia5String::try_from(uri).map_err(PkiError::Generate)?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}

fn set_validity(
    params: &mut CertificateParams,
    now: SystemTime,
    lifetime: Duration,
) -> Result<(), PkiError> {
    let since_epoch = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| PkiError::ClockOutOfRange)?;
    if since_epoch > LATEST_NOW {
        return Err(PkiError::ClockOutOfRange);
    }
    let not_before = now.checked_sub(BACKDATE).ok_or(PkiError::ClockOutOfRange)?;
    let not_after = now.checked_add(lifetime).ok_or(PkiError::ClockOutOfRange)?;
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    Ok(())
}

/// 20 unpredictable bytes as a serial number. rcgen's default serial is a hash of the subject
/// key, which repeats when one key is certified twice and so breaks RFC 5280's unique
/// (issuer, serial). No RNG is reachable through rcgen's API, but key generation draws from
/// ring's system RNG, so the hashed public key of a throwaway key serves.
fn fresh_serial() -> Result<SerialNumber, PkiError> {
    let throwaway = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::Generate)?;
    let mut bytes = CertificateParams::default().key_identifier(&throwaway);
    // Serials are positive INTEGERs of at most 20 octets: clear the sign bit.
    if let Some(first) = bytes.first_mut() {
        *first &= 0x7f;
    }
    Ok(SerialNumber::from_slice(&bytes))
}

fn server_san(name: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(PkiError::BadServerName(name.to_owned()));
    }
    let dns = Ia5String::try_from(name).map_err(|_| PkiError::BadServerName(name.to_owned()))?;
    Ok(SanType::DnsName(dns))
}

/// Whether the request `csr_der` asks to certify the key `cert_der` certifies (a renewal for
/// the same key).
pub fn same_key(csr_der: &[u8], cert_der: &[u8]) -> bool {
    match (csr_public_key(csr_der), certified_key(cert_der)) {
        (Ok(requested), Some(certified)) => requested == certified,
        _ => false,
    }
}

/// The DER SubjectPublicKeyInfo a CSR asks to have certified.
fn csr_public_key(csr_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    match X509CertificationRequest::from_der(csr_der) {
        Ok(([], csr)) => Ok(csr.certification_request_info.subject_pki.raw.to_vec()),
        _ => Err(PkiError::BadCsr(
            rcgen::Error::CouldNotParseCertificationRequest,
        )),
    }
}

/// The DER SubjectPublicKeyInfo a certificate certifies.
fn certified_key(cert_der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    Some(cert.public_key().raw.to_vec())
}

fn pem_certificate(pem: &str) -> Option<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    (pem.label == "CERTIFICATE").then_some(pem.contents)
}
