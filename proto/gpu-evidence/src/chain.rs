//! The GPU's certificate chain: parsing (PEM or concatenated DER, leaf first) and path
//! validation to a pinned root, with x509-parser for the structure and ring for signatures.
//!
//! NVIDIA's Hopper chain, leaf first:
//!
//! ```text
//! GH100 A01 GSP FMC LF            leaf: the firmware's alias key; TCG DICE extension with the FWID;
//!                                 SAN otherName 1.3.6.1.4.1.412.274.1 "NVIDIA:GH100:<chip id>"
//! GH100 A01 GSP BROM              device identity: key derived in boot ROM from fused secrets,
//!                                 certified once at manufacture (CA, signs the leaf)
//! NVIDIA GH100 Provisioner ICA 1  NVIDIA's provisioning CA
//! NVIDIA GH100 Identity           NVIDIA's per-architecture CA
//! NVIDIA Device Identity CA       the root (pinned)
//! ```
//!
//! The rules: every certificate's issuer name equals the next one's subject and its signature
//! (ECDSA P-384 with SHA-384) verifies with the next one's key; every signer is a CA (basic
//! constraints, `keyCertSign` when key usage is present, path length); every certificate is
//! valid at the evidence's time; no certificate carries a critical extension this code does not
//! understand; the chain ends at a pinned root, by exact DER, or at a certificate a pinned root
//! signed. The leaf must be allowed to sign (`digitalSignature` when key usage is present).

use ring::signature::{ECDSA_P384_SHA384_ASN1, UnparsedPublicKey};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_SIG_ECDSA_WITH_SHA384,
};

use crate::der;
use crate::{Failure, Reason};

/// The most certificates a chain may hold (NVIDIA's have five).
pub const MAX_CHAIN_CERTIFICATES: usize = 8;

/// TCG DICE TcbInfo as Hopper firmware writes it (tcg-dice-TcbInfo, 2.23.133.5.4.1).
pub const OID_DICE_TCB_INFO: &[u64] = &[2, 23, 133, 5, 4, 1];
/// The form Blackwell firmware writes (2.23.133.5.4.1.1): a TcbInfo with `fwids [6]`.
pub const OID_DICE_TCB_INFO_BLACKWELL: &[u64] = &[2, 23, 133, 5, 4, 1, 1];
/// NVIDIA's subject-alternative-name otherName carrying `NVIDIA:<chip>:<chip id>`.
pub const OID_NVIDIA_DEVICE_NAME: &[u64] = &[1, 3, 6, 1, 4, 1, 412, 274, 1];
/// SHA-384, the FWID hash algorithm.
const OID_SHA384: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 2];

/// Which GPU this is, from its certificate chain.
///
/// [`HardwareIdentity::key`] is the SHA-256 of the device identity certificate's public key
/// (the chain's second certificate, `GH100 A01 GSP BROM` on Hopper). That key is derived in the
/// boot ROM from secrets fused into the chip and NVIDIA certified it once, at manufacture, under
/// its provisioning CA: it is the same on every boot and under every firmware, and differs
/// between chips (the eight GPUs of one 8×H100 machine give eight keys). The leaf, by contrast,
/// is the firmware's alias key: the boot ROM derives it from the measured firmware, so its key,
/// serial number and FWID change with every firmware update and are no identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HardwareIdentity {
    /// The chip from the leaf's NVIDIA otherName, e.g. `GH100`.
    pub chip: String,
    /// The chip id from the leaf's NVIDIA otherName, e.g. `48B02DF44660DA06`.
    pub chip_id: String,
    /// The device identity certificate's serial number, upper-case hex.
    pub device_certificate_serial: String,
    /// SHA-256 of the device identity certificate's SubjectPublicKeyInfo (DER).
    pub device_key_sha256: [u8; 32],
    /// The leaf certificate's serial number, upper-case hex (changes with the firmware).
    pub leaf_serial: String,
}

impl HardwareIdentity {
    /// The canonical identity, stable per chip: `nvidia-gpu:` and the lower-case hex SHA-256 of
    /// the device identity certificate's SubjectPublicKeyInfo.
    pub fn key(&self) -> String {
        format!("nvidia-gpu:{}", hex_lower(&self.device_key_sha256))
    }
}

/// What a validated chain yields; cached by [`crate::ChainCache`].
#[derive(Debug, Clone)]
pub(crate) struct ChainFacts {
    /// The leaf's public key: an uncompressed P-384 point.
    pub leaf_key: Vec<u8>,
    pub identity: HardwareIdentity,
    /// The FWID in the leaf's DICE extension.
    pub dice_fwid: Vec<u8>,
    /// Each certificate's subject and validity (seconds since the epoch), root included.
    pub validity: Vec<(String, i64, i64)>,
    /// Every certificate but the root, with its issuer, for revocation.
    pub links: Vec<crate::ocsp::Link>,
}

impl ChainFacts {
    /// Refuses the chain if a certificate is not valid at `at_s`.
    pub fn check_time(&self, at_s: i64) -> Result<(), Failure> {
        for (subject, not_before, not_after) in &self.validity {
            if at_s < *not_before {
                return Err(Failure::new(
                    Reason::CertificateNotYetValid,
                    format!(
                        "certificate \"{subject}\" is valid from {not_before} (unix seconds), the evidence's time is {at_s}"
                    ),
                ));
            }
            if at_s > *not_after {
                return Err(Failure::new(
                    Reason::CertificateExpired,
                    format!(
                        "certificate \"{subject}\" expired at {not_after} (unix seconds), the evidence's time is {at_s}"
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn malformed(detail: String) -> Failure {
    Failure::new(Reason::MalformedChain, detail)
}

/// Splits a chain into DER certificates: PEM, or DER certificates one after the other.
pub fn split_chain(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Failure> {
    if bytes.len() > crate::MAX_CHAIN_BYTES {
        return Err(Failure::new(
            Reason::ChainTooLarge,
            format!(
                "certificate chain has {} bytes, at most {} are accepted",
                bytes.len(),
                crate::MAX_CHAIN_BYTES
            ),
        ));
    }
    let certificates = if der::is_pem(bytes) {
        der::pem_certificates(bytes).map_err(malformed)?
    } else {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let offset = bytes.len() - rest.len();
            let Some((element, after)) = der::read(rest) else {
                return Err(malformed(format!(
                    "chain is neither PEM nor DER: no DER certificate at offset {offset}"
                )));
            };
            if element.tag != der::SEQUENCE {
                return Err(malformed(format!(
                    "DER element at offset {offset} is not a certificate (tag {:#04x})",
                    element.tag
                )));
            }
            out.push(element.encoded.to_vec());
            rest = after;
            if out.len() > MAX_CHAIN_CERTIFICATES {
                break;
            }
        }
        out
    };
    if certificates.is_empty() {
        return Err(malformed("certificate chain is empty".to_owned()));
    }
    if certificates.len() > MAX_CHAIN_CERTIFICATES {
        return Err(malformed(format!(
            "certificate chain holds more than {MAX_CHAIN_CERTIFICATES} certificates"
        )));
    }
    Ok(certificates)
}

pub(crate) fn parse_certificate(
    der_bytes: &[u8],
    position: usize,
) -> Result<X509Certificate<'_>, Failure> {
    check_outer_structure(der_bytes)
        .map_err(|problem| malformed(format!("certificate {position} is not X.509: {problem}")))?;
    match x509_parser::parse_x509_certificate(der_bytes) {
        Ok(([], certificate)) => Ok(certificate),
        Ok((rest, _)) => Err(malformed(format!(
            "certificate {position} has {} bytes after its end",
            rest.len()
        ))),
        Err(error) => Err(malformed(format!(
            "certificate {position} is not X.509: {error}"
        ))),
    }
}

/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE,
/// signatureValue BIT STRING }`, with the outer signature algorithm equal to the one inside the
/// signed part (RFC 5280, 4.1.1.2). x509-parser tolerates a wrong tag on the outer algorithm,
/// which would let one certificate travel as many byte strings.
fn check_outer_structure(der_bytes: &[u8]) -> Result<(), &'static str> {
    let (outer, rest) = der::read(der_bytes).ok_or("not DER")?;
    if outer.tag != der::SEQUENCE || !rest.is_empty() {
        return Err("not one SEQUENCE");
    }
    let parts = der::children(outer.contents).ok_or("malformed contents")?;
    let [tbs, algorithm, signature] = parts.as_slice() else {
        return Err("not three parts");
    };
    if tbs.tag != der::SEQUENCE || algorithm.tag != der::SEQUENCE || signature.tag != 0x03 {
        return Err("parts are not SEQUENCE, SEQUENCE, BIT STRING");
    }
    if signature.contents.first() != Some(&0) {
        return Err("the signature BIT STRING has unused bits");
    }
    let fields = der::children(tbs.contents).ok_or("malformed tbsCertificate")?;
    let inner = fields
        .iter()
        .skip_while(|field| field.tag == 0xA0)
        .nth(1)
        .ok_or("tbsCertificate has no signature algorithm")?;
    if inner.encoded != algorithm.encoded {
        return Err("the signature algorithm differs inside and outside the signed part");
    }
    Ok(())
}

/// The uncompressed P-384 point of a certificate's key, or why not.
pub(crate) fn p384_key<'a>(
    certificate: &'a X509Certificate<'_>,
    position: usize,
) -> Result<&'a [u8], Failure> {
    let spki = certificate.public_key();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|parameters| parameters.as_oid().ok());
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY || curve != Some(OID_NIST_EC_P384) {
        return Err(Failure::new(
            Reason::UnsupportedCertificate,
            format!(
                "certificate {position} (\"{}\") has a key other than ECDSA P-384",
                certificate.subject()
            ),
        ));
    }
    let point = &*spki.subject_public_key.data;
    if point.len() != 97 || point[0] != 0x04 {
        return Err(Failure::new(
            Reason::UnsupportedCertificate,
            format!(
                "certificate {position} (\"{}\") has a P-384 key that is not an uncompressed point",
                certificate.subject()
            ),
        ));
    }
    Ok(point)
}

fn check_extensions(certificate: &X509Certificate<'_>, position: usize) -> Result<(), Failure> {
    for extension in certificate.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::ParseError { error } => {
                return Err(malformed(format!(
                    "certificate {position} has a malformed extension {}: {error}",
                    extension.oid
                )));
            }
            ParsedExtension::UnsupportedExtension { .. } if extension.critical => {
                return Err(Failure::new(
                    Reason::UnsupportedCertificate,
                    format!(
                        "certificate {position} has the unknown critical extension {}",
                        extension.oid
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks that `issuer` (at `issuer_position`) may sign and did sign `subject`.
fn check_issued(
    subject: &X509Certificate<'_>,
    subject_position: usize,
    issuer: &X509Certificate<'_>,
    issuer_position: usize,
    cas_below: usize,
) -> Result<(), Failure> {
    if subject.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(Failure::new(
            Reason::ChainSignatureInvalid,
            format!(
                "certificate {subject_position} names issuer \"{}\" but certificate {issuer_position} is \"{}\"",
                subject.issuer(),
                issuer.subject()
            ),
        ));
    }
    let constraints = issuer.basic_constraints().map_err(|error| {
        malformed(format!(
            "certificate {issuer_position} basic constraints: {error}"
        ))
    })?;
    let Some(constraints) = constraints.filter(|constraints| constraints.value.ca) else {
        return Err(Failure::new(
            Reason::IssuerNotCa,
            format!(
                "certificate {issuer_position} (\"{}\") signs certificate {subject_position} but is not a CA",
                issuer.subject()
            ),
        ));
    };
    if let Some(limit) = constraints.value.path_len_constraint
        && usize::try_from(limit).is_ok_and(|limit| cas_below > limit)
    {
        return Err(Failure::new(
            Reason::IssuerNotCa,
            format!(
                "certificate {issuer_position} (\"{}\") allows {limit} CAs below it, the chain has {cas_below}",
                issuer.subject()
            ),
        ));
    }
    let usage = issuer
        .key_usage()
        .map_err(|error| malformed(format!("certificate {issuer_position} key usage: {error}")))?;
    if usage.is_some_and(|usage| !usage.value.key_cert_sign()) {
        return Err(Failure::new(
            Reason::IssuerNotCa,
            format!(
                "certificate {issuer_position} (\"{}\") may not sign certificates (key usage)",
                issuer.subject()
            ),
        ));
    }
    if subject.signature_algorithm.algorithm != OID_SIG_ECDSA_WITH_SHA384 {
        return Err(Failure::new(
            Reason::UnsupportedCertificate,
            format!(
                "certificate {subject_position} is signed with {}, only ecdsa-with-SHA384 is accepted",
                subject.signature_algorithm.algorithm
            ),
        ));
    }
    let key = p384_key(issuer, issuer_position)?;
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, key)
        .verify(
            subject.tbs_certificate.as_ref(),
            &subject.signature_value.data,
        )
        .map_err(|_| {
            Failure::new(
                Reason::ChainSignatureInvalid,
                format!(
                    "certificate {subject_position} (\"{}\") is not signed by certificate {issuer_position} (\"{}\")",
                    subject.subject(),
                    issuer.subject()
                ),
            )
        })
}

/// Validates `certificates` (leaf first) to one of `roots` (DER) and reads what the verifier
/// needs. Time is not checked here (see [`ChainFacts::check_time`]) so that facts can be cached.
pub(crate) fn validate(certificates: &[Vec<u8>], roots: &[Vec<u8>]) -> Result<ChainFacts, Failure> {
    if certificates.len() < 2 {
        return Err(malformed(
            "certificate chain needs the leaf and the device identity certificate".to_owned(),
        ));
    }
    let mut parsed = Vec::with_capacity(certificates.len() + 1);
    for (position, der_bytes) in certificates.iter().enumerate() {
        parsed.push(parse_certificate(der_bytes, position)?);
    }
    // Anchor: the last certificate is a pinned root, or a pinned root signed it.
    let last = certificates.len() - 1;
    let anchored_in_chain = roots.iter().any(|root| *root == certificates[last]);
    if !anchored_in_chain && parsed[last].issuer().as_raw() == parsed[last].subject().as_raw() {
        return Err(Failure::new(
            Reason::UntrustedRoot,
            format!(
                "chain ends at the self-issued \"{}\", which is no pinned root",
                parsed[last].subject()
            ),
        ));
    }
    if !anchored_in_chain {
        let mut anchor = None;
        for root in roots {
            let root_certificate = parse_certificate(root, certificates.len())?;
            if parsed[last].issuer().as_raw() == root_certificate.subject().as_raw() {
                anchor = Some(root_certificate);
                break;
            }
        }
        let Some(anchor) = anchor else {
            return Err(Failure::new(
                Reason::UntrustedRoot,
                format!(
                    "chain ends at \"{}\" (issuer \"{}\"), which is no pinned root",
                    parsed[last].subject(),
                    parsed[last].issuer()
                ),
            ));
        };
        parsed.push(anchor);
    }
    for (position, certificate) in parsed.iter().enumerate() {
        check_extensions(certificate, position)?;
    }
    for position in 0..parsed.len() - 1 {
        let result = check_issued(
            &parsed[position],
            position,
            &parsed[position + 1],
            position + 1,
            position,
        );
        if let Err(failure) = result {
            // A chain that only borrows a pinned root's name ends at a foreign root.
            if !anchored_in_chain && position + 1 == parsed.len() - 1 {
                return Err(Failure::new(
                    Reason::UntrustedRoot,
                    format!(
                        "chain ends at a certificate the pinned root did not sign: {}",
                        failure.detail
                    ),
                ));
            }
            return Err(failure);
        }
    }
    let leaf = &parsed[0];
    let usage = leaf
        .key_usage()
        .map_err(|error| malformed(format!("certificate 0 key usage: {error}")))?;
    if usage.is_some_and(|usage| !usage.value.digital_signature()) {
        return Err(Failure::new(
            Reason::UnsupportedCertificate,
            "the leaf certificate may not sign (key usage lacks digitalSignature)".to_owned(),
        ));
    }
    let leaf_key = p384_key(leaf, 0)?.to_vec();
    let dice_fwid = dice_fwid(leaf)?;
    let identity = identity(leaf, &parsed[1])?;
    let validity = parsed
        .iter()
        .map(|certificate| {
            (
                certificate.subject().to_string(),
                certificate.validity().not_before.timestamp(),
                certificate.validity().not_after.timestamp(),
            )
        })
        .collect();
    let mut links = Vec::with_capacity(parsed.len() - 1);
    for position in 0..parsed.len() - 1 {
        let issuer = &parsed[position + 1];
        links.push(crate::ocsp::Link {
            subject: parsed[position].subject().to_string(),
            serial: parsed[position].raw_serial().to_vec(),
            issuer_name: issuer.subject().as_raw().to_vec(),
            issuer_key: p384_key(issuer, position + 1)?.to_vec(),
        });
    }
    Ok(ChainFacts {
        leaf_key,
        identity,
        dice_fwid,
        validity,
        links,
    })
}

fn extension_value<'a>(certificate: &'a X509Certificate<'_>, arcs: &[u64]) -> Option<&'a [u8]> {
    let wanted = der::oid_contents(arcs);
    certificate
        .extensions()
        .iter()
        .find(|extension| extension.oid.as_bytes() == wanted.as_slice())
        .map(|extension| extension.value)
}

/// The FWID of the leaf's TCG DICE extension: on Hopper the FWID (`SEQUENCE { sha384, OCTET
/// STRING }`) of 2.23.133.5.4.1, on Blackwell `fwids[0]` of the TcbInfo in 2.23.133.5.4.1.1.
pub(crate) fn dice_fwid(leaf: &X509Certificate<'_>) -> Result<Vec<u8>, Failure> {
    let missing = |what: &str| {
        Failure::new(
            Reason::FwidMissing,
            format!("leaf certificate \"{}\": {what}", leaf.subject()),
        )
    };
    let fwid_of = |element: &der::Element<'_>| -> Option<Vec<u8>> {
        if element.tag != der::SEQUENCE {
            return None;
        }
        let parts = der::children(element.contents)?;
        match parts.as_slice() {
            [algorithm, digest]
                if algorithm.tag == der::OID
                    && algorithm.contents == der::oid_contents(OID_SHA384).as_slice()
                    && digest.tag == der::OCTET_STRING
                    && digest.contents.len() == 48 =>
            {
                Some(digest.contents.to_vec())
            }
            _ => None,
        }
    };
    let top = |value: &[u8]| -> Option<Vec<u8>> {
        let (outer, rest) = der::read(value)?;
        (outer.tag == der::SEQUENCE && rest.is_empty()).then_some(())?;
        Some(outer.contents.to_vec())
    };
    if let Some(value) = extension_value(leaf, OID_DICE_TCB_INFO_BLACKWELL) {
        let contents = top(value)
            .ok_or_else(|| missing("DICE TcbInfo (2.23.133.5.4.1.1) is not a SEQUENCE"))?;
        let fields =
            der::children(&contents).ok_or_else(|| missing("DICE TcbInfo is malformed"))?;
        let fwids = fields
            .iter()
            .find(|field| field.tag == 0xA6)
            .ok_or_else(|| missing("DICE TcbInfo has no fwids [6]"))?;
        let list =
            der::children(fwids.contents).ok_or_else(|| missing("DICE fwids are malformed"))?;
        return list
            .first()
            .and_then(fwid_of)
            .ok_or_else(|| missing("DICE fwids[0] is not a SHA-384 FWID"));
    }
    if let Some(value) = extension_value(leaf, OID_DICE_TCB_INFO) {
        let contents = top(value)
            .ok_or_else(|| missing("DICE extension (2.23.133.5.4.1) is not a SEQUENCE"))?;
        let fields =
            der::children(&contents).ok_or_else(|| missing("DICE extension is malformed"))?;
        let fwids: Vec<Vec<u8>> = fields.iter().filter_map(fwid_of).collect();
        return match fwids.as_slice() {
            [fwid] => Ok(fwid.clone()),
            _ => Err(missing(
                "DICE extension (2.23.133.5.4.1) does not hold exactly one SHA-384 FWID",
            )),
        };
    }
    Err(missing(
        "no TCG DICE extension (2.23.133.5.4.1 or 2.23.133.5.4.1.1)",
    ))
}

/// NVIDIA's otherName in the leaf: `(chip, chip id)` from `NVIDIA:<chip>:<chip id>`.
pub(crate) fn nvidia_device_name(leaf: &X509Certificate<'_>) -> Result<(String, String), Failure> {
    let missing = |what: String| Failure::new(Reason::IdentityMissing, what);
    let san = leaf
        .subject_alternative_name()
        .map_err(|error| malformed(format!("leaf subject alternative name: {error}")))?
        .ok_or_else(|| missing("leaf certificate has no subject alternative name".to_owned()))?;
    let wanted = der::oid_contents(OID_NVIDIA_DEVICE_NAME);
    for name in &san.value.general_names {
        let x509_parser::extensions::GeneralName::OtherName(oid, value) = name else {
            continue;
        };
        if oid.as_bytes() != wanted.as_slice() {
            continue;
        }
        // [0] EXPLICIT UTF8String
        let text = der::read(value)
            .filter(|(explicit, rest)| explicit.tag == 0xA0 && rest.is_empty())
            .and_then(|(explicit, _)| der::read(explicit.contents))
            .filter(|(string, rest)| string.tag == der::UTF8_STRING && rest.is_empty())
            .and_then(|(string, _)| std::str::from_utf8(string.contents).ok())
            .ok_or_else(|| {
                missing("NVIDIA otherName 1.3.6.1.4.1.412.274.1 is not a UTF8String".to_owned())
            })?;
        let mut parts = text.split(':');
        return match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("NVIDIA"), Some(chip), Some(id), None) if !chip.is_empty() && !id.is_empty() => {
                Ok((chip.to_owned(), id.to_owned()))
            }
            _ => Err(missing(format!(
                "NVIDIA otherName \"{text}\" is not NVIDIA:<chip>:<chip id>"
            ))),
        };
    }
    Err(missing(
        "leaf certificate has no NVIDIA otherName 1.3.6.1.4.1.412.274.1".to_owned(),
    ))
}

fn identity(
    leaf: &X509Certificate<'_>,
    device: &X509Certificate<'_>,
) -> Result<HardwareIdentity, Failure> {
    let (chip, chip_id) = nvidia_device_name(leaf)?;
    Ok(HardwareIdentity {
        chip,
        chip_id,
        device_certificate_serial: hex_upper(device.raw_serial()),
        device_key_sha256: Sha256::digest(device.public_key().raw).into(),
        leaf_serial: hex_upper(leaf.raw_serial()),
    })
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02X}")).collect()
}
