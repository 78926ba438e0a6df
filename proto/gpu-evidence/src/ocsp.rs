//! Revocation from OCSP answers (RFC 6960) the caller fetched and hands in as bytes: NVIDIA's
//! responder (`ocsp.ndis.nvidia.com`, named in the chain's CA certificates) says whether each
//! certificate of a GPU's chain is good, revoked or on hold.
//!
//! An [`OcspCache`] holds parsed responses. At verification every certificate of the chain but
//! the root is looked up by its CertID (issuer name hash, issuer key hash, serial number; SHA-1,
//! SHA-256 or SHA-384). An answer counts only if its signature verifies with the issuer's key,
//! or with a responder certificate the issuer signed for OCSP signing, and if the evidence's
//! time lies between its thisUpdate and nextUpdate. Revoked fails verification
//! (`certificate_on_hold` for reason certificateHold, `certificate_revoked` otherwise); a
//! certificate without a current answer leaves the status incomplete.
//!
//! Parsing is bounded by the input ([`MAX_OCSP_RESPONSE_BYTES`]) and never panics.

use ring::digest;
use ring::signature::{ECDSA_P384_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, UnparsedPublicKey};

use crate::der::{self, Element};

/// The largest OCSP response accepted.
pub const MAX_OCSP_RESPONSE_BYTES: usize = 16 * 1024;
/// CRLReason certificateHold (RFC 5280).
pub const REASON_CERTIFICATE_HOLD: u8 = 6;

const OID_OCSP_BASIC: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 1];
const OID_SHA1: &[u64] = &[1, 3, 14, 3, 2, 26];
const OID_SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
const OID_SHA384: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 2];
const OID_ECDSA_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
const OID_ECDSA_SHA384: &[u64] = &[1, 2, 840, 10045, 4, 3, 3];

/// What a responder says of one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Not revoked.
    Good,
    /// Revoked, with the CRLReason if given ([`REASON_CERTIFICATE_HOLD`]: on hold).
    Revoked {
        /// The CRLReason code.
        reason: Option<u8>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// An OCSP response that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OCSP response {index}: {problem}")]
pub struct OcspError {
    /// Its position among the responses given.
    pub index: usize,
    /// What is wrong.
    pub problem: String,
}

#[derive(Debug, Clone)]
struct Single {
    hash: &'static digest::Algorithm,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
    serial: Vec<u8>,
    status: CertStatus,
    this_update: i64,
    next_update: Option<i64>,
}

#[derive(Debug, Clone)]
struct Response {
    tbs: Vec<u8>,
    signature_algorithm: Vec<u8>,
    signature: Vec<u8>,
    responder_certificates: Vec<Vec<u8>>,
    singles: Vec<Single>,
}

/// OCSP responses, parsed once; consulted at every verification.
#[derive(Debug, Clone, Default)]
pub struct OcspCache {
    responses: Vec<Response>,
}

/// A certificate of the chain, as revocation needs it.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub subject: String,
    pub serial: Vec<u8>,
    /// The issuer's subject name (DER).
    pub issuer_name: Vec<u8>,
    /// The issuer's public key (the BIT STRING's contents: an uncompressed P-384 point).
    pub issuer_key: Vec<u8>,
}

/// What the cache says of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every certificate has a current, good answer.
    Good,
    /// Some certificates have no current answer (their subjects).
    Incomplete(Vec<String>),
    /// A certificate is revoked: its subject and the reason.
    Revoked(String, Option<u8>),
}

impl OcspCache {
    /// Parses DER OCSP responses (each an `OCSPResponse` with a basic response).
    pub fn from_responses<B: AsRef<[u8]>>(
        responses: impl IntoIterator<Item = B>,
    ) -> Result<OcspCache, OcspError> {
        let mut cache = OcspCache::default();
        for (index, bytes) in responses.into_iter().enumerate() {
            let response =
                parse_response(bytes.as_ref()).map_err(|problem| OcspError { index, problem })?;
            cache.responses.push(response);
        }
        Ok(cache)
    }

    /// How many responses it holds.
    pub fn len(&self) -> usize {
        self.responses.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.responses.is_empty()
    }

    pub(crate) fn check(&self, links: &[Link], at_s: i64) -> Verdict {
        let mut unanswered = Vec::new();
        for link in links {
            match self.status(link, at_s) {
                Some(CertStatus::Good) => {}
                Some(CertStatus::Revoked { reason }) => {
                    return Verdict::Revoked(link.subject.clone(), reason);
                }
                Some(CertStatus::Unknown) | None => unanswered.push(link.subject.clone()),
            }
        }
        if unanswered.is_empty() {
            Verdict::Good
        } else {
            Verdict::Incomplete(unanswered)
        }
    }

    /// The status of the freshest current, authentic answer for `link`; a revocation wins.
    fn status(&self, link: &Link, at_s: i64) -> Option<CertStatus> {
        let mut best: Option<(i64, CertStatus)> = None;
        for response in &self.responses {
            for single in &response.singles {
                let current = single.this_update <= at_s
                    && single.next_update.is_none_or(|next| at_s <= next);
                if !current || single.serial != link.serial {
                    continue;
                }
                if digest::digest(single.hash, &link.issuer_name).as_ref() != single.name_hash
                    || digest::digest(single.hash, &link.issuer_key).as_ref() != single.key_hash
                {
                    continue;
                }
                if !response.authentic(link, at_s) {
                    continue;
                }
                let revoked = matches!(single.status, CertStatus::Revoked { .. });
                let replace = match best {
                    None => true,
                    Some((_, CertStatus::Revoked { .. })) => false,
                    Some((when, _)) => revoked || single.this_update > when,
                };
                if replace {
                    best = Some((single.this_update, single.status));
                }
            }
        }
        best.map(|(_, status)| status)
    }
}

impl Response {
    fn verify_with(&self, key: &[u8]) -> bool {
        let algorithm = if self.signature_algorithm == der::oid_contents(OID_ECDSA_SHA384) {
            &ECDSA_P384_SHA384_ASN1
        } else if self.signature_algorithm == der::oid_contents(OID_ECDSA_SHA256) {
            &ECDSA_P384_SHA256_ASN1
        } else {
            return false;
        };
        UnparsedPublicKey::new(algorithm, key)
            .verify(&self.tbs, &self.signature)
            .is_ok()
    }

    /// Signed by the issuer, or by a responder certificate the issuer signed for OCSP signing
    /// and valid at `at_s`.
    fn authentic(&self, link: &Link, at_s: i64) -> bool {
        if self.verify_with(&link.issuer_key) {
            return true;
        }
        self.responder_certificates.iter().any(|der_bytes| {
            let Ok(([], responder)) = x509_parser::parse_x509_certificate(der_bytes) else {
                return false;
            };
            let delegated = responder.issuer().as_raw() == link.issuer_name.as_slice()
                && responder
                    .extended_key_usage()
                    .ok()
                    .flatten()
                    .is_some_and(|usage| usage.value.ocsp_signing)
                && responder.validity().not_before.timestamp() <= at_s
                && at_s <= responder.validity().not_after.timestamp()
                && responder.signature_algorithm.algorithm
                    == x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA384
                && UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, &link.issuer_key)
                    .verify(
                        responder.tbs_certificate.as_ref(),
                        &responder.signature_value.data,
                    )
                    .is_ok();
            delegated && self.verify_with(&responder.public_key().subject_public_key.data)
        })
    }
}

fn one<'a>(bytes: &'a [u8], tag: u8, what: &str) -> Result<(Element<'a>, &'a [u8]), String> {
    match der::read(bytes) {
        Some((element, rest)) if element.tag == tag => Ok((element, rest)),
        Some((element, _)) => Err(format!(
            "{what}: tag {:#04x}, expected {tag:#04x}",
            element.tag
        )),
        None => Err(format!("{what}: not DER")),
    }
}

fn parse_response(bytes: &[u8]) -> Result<Response, String> {
    if bytes.len() > MAX_OCSP_RESPONSE_BYTES {
        return Err(format!(
            "has {} bytes, at most {MAX_OCSP_RESPONSE_BYTES} are accepted",
            bytes.len()
        ));
    }
    let (outer, rest) = one(bytes, der::SEQUENCE, "OCSPResponse")?;
    if !rest.is_empty() {
        return Err("bytes follow the OCSPResponse".to_owned());
    }
    let (status, rest) = one(outer.contents, 0x0A, "responseStatus")?;
    if status.contents != [0] {
        return Err(format!(
            "responseStatus is {:?}, not successful",
            status.contents
        ));
    }
    let (explicit, _) = one(rest, 0xA0, "responseBytes")?;
    let (response_bytes, _) = one(explicit.contents, der::SEQUENCE, "ResponseBytes")?;
    let (kind, rest) = one(response_bytes.contents, der::OID, "responseType")?;
    if kind.contents != der::oid_contents(OID_OCSP_BASIC).as_slice() {
        return Err("responseType is not id-pkix-ocsp-basic".to_owned());
    }
    let (basic_octets, _) = one(rest, der::OCTET_STRING, "response")?;
    let (basic, _) = one(basic_octets.contents, der::SEQUENCE, "BasicOCSPResponse")?;
    let (tbs, rest) = one(basic.contents, der::SEQUENCE, "tbsResponseData")?;
    let (algorithm, rest) = one(rest, der::SEQUENCE, "signatureAlgorithm")?;
    let (algorithm_oid, _) = one(algorithm.contents, der::OID, "signatureAlgorithm OID")?;
    let (signature, rest) = one(rest, 0x03, "signature")?;
    let signature = match signature.contents.split_first() {
        Some((0, bits)) => bits.to_vec(),
        _ => return Err("signature BIT STRING has unused bits".to_owned()),
    };
    let mut responder_certificates = Vec::new();
    if !rest.is_empty() {
        let (certs, _) = one(rest, 0xA0, "certs")?;
        let (list, _) = one(certs.contents, der::SEQUENCE, "certs")?;
        for certificate in der::children(list.contents).ok_or("certs: not DER")? {
            responder_certificates.push(certificate.encoded.to_vec());
        }
    }
    // ResponseData: [0] version?, responderID, producedAt, responses, [1] extensions?
    let fields = der::children(tbs.contents).ok_or("tbsResponseData: not DER")?;
    let mut fields = fields.iter().peekable();
    if fields.peek().is_some_and(|field| field.tag == 0xA0) {
        fields.next();
    }
    fields
        .next()
        .filter(|field| field.tag == 0xA1 || field.tag == 0xA2)
        .ok_or("responderID missing")?;
    fields
        .next()
        .filter(|field| field.tag == 0x18)
        .ok_or("producedAt missing")?;
    let responses = fields
        .next()
        .filter(|field| field.tag == der::SEQUENCE)
        .ok_or("responses missing")?;
    let mut singles = Vec::new();
    for single in der::children(responses.contents).ok_or("responses: not DER")? {
        singles.push(parse_single(&single)?);
    }
    Ok(Response {
        tbs: tbs.encoded.to_vec(),
        signature_algorithm: algorithm_oid.contents.to_vec(),
        signature,
        responder_certificates,
        singles,
    })
}

fn parse_single(single: &Element<'_>) -> Result<Single, String> {
    if single.tag != der::SEQUENCE {
        return Err("SingleResponse is not a SEQUENCE".to_owned());
    }
    let (cert_id, rest) = one(single.contents, der::SEQUENCE, "certID")?;
    let (algorithm, id_rest) = one(cert_id.contents, der::SEQUENCE, "hashAlgorithm")?;
    let (oid, _) = one(algorithm.contents, der::OID, "hashAlgorithm OID")?;
    let hash = if oid.contents == der::oid_contents(OID_SHA1).as_slice() {
        &digest::SHA1_FOR_LEGACY_USE_ONLY
    } else if oid.contents == der::oid_contents(OID_SHA256).as_slice() {
        &digest::SHA256
    } else if oid.contents == der::oid_contents(OID_SHA384).as_slice() {
        &digest::SHA384
    } else {
        return Err("certID hash is not SHA-1, SHA-256 or SHA-384".to_owned());
    };
    let (name_hash, id_rest) = one(id_rest, der::OCTET_STRING, "issuerNameHash")?;
    let (key_hash, id_rest) = one(id_rest, der::OCTET_STRING, "issuerKeyHash")?;
    let (serial, _) = one(id_rest, 0x02, "serialNumber")?;
    let (status_element, rest) = der::read(rest).ok_or("certStatus: not DER")?;
    let status = match status_element.tag {
        0x80 => CertStatus::Good,
        0x82 => CertStatus::Unknown,
        0xA1 => {
            let (_, reason_rest) = one(status_element.contents, 0x18, "revocationTime")?;
            let reason = match der::read(reason_rest) {
                Some((explicit, _)) if explicit.tag == 0xA0 => {
                    let (code, _) = one(explicit.contents, 0x0A, "revocationReason")?;
                    code.contents.first().copied()
                }
                _ => None,
            };
            CertStatus::Revoked { reason }
        }
        other => return Err(format!("certStatus has tag {other:#04x}")),
    };
    let (this_update, rest) = one(rest, 0x18, "thisUpdate")?;
    let this_update = generalized_time(this_update.contents).ok_or("thisUpdate is not a time")?;
    let next_update = match der::read(rest) {
        Some((explicit, _)) if explicit.tag == 0xA0 => {
            let (time, _) = one(explicit.contents, 0x18, "nextUpdate")?;
            Some(generalized_time(time.contents).ok_or("nextUpdate is not a time")?)
        }
        _ => None,
    };
    Ok(Single {
        hash,
        name_hash: name_hash.contents.to_vec(),
        key_hash: key_hash.contents.to_vec(),
        serial: serial.contents.to_vec(),
        status,
        this_update,
        next_update,
    })
}

/// `YYYYMMDDHHMMSSZ` (what RFC 5280 requires of GeneralizedTime) to unix seconds.
fn generalized_time(text: &[u8]) -> Option<i64> {
    if text.len() != 15 || text[14] != b'Z' || !text[..14].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> i64 {
        text[range]
            .iter()
            .fold(0, |acc, digit| acc * 10 + i64::from(digit - b'0'))
    };
    let (year, month, day) = (number(0..4), number(4..6), number(6..8));
    let (hour, minute, second) = (number(8..10), number(10..12), number(12..14));
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_times_convert() {
        assert_eq!(generalized_time(b"19700101000000Z"), Some(0));
        assert_eq!(generalized_time(b"20260101000000Z"), Some(1_767_225_600));
        assert_eq!(generalized_time(b"20000229123456Z"), Some(951_827_696));
        assert_eq!(generalized_time(b"20261301000000Z"), None);
        assert_eq!(generalized_time(b"2026010100000Z"), None);
    }
}
