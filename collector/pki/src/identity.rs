//! Who a peer is, read from the one `urn:veu:<role>:<name>` URI in its certificate's SANs.

use std::fmt;
use std::str::FromStr;

use x509_parser::extensions::GeneralName;
use x509_parser::parse_x509_certificate;

/// The scheme and namespace every identity URI starts with. Matched without regard to case,
/// because RFC 8141 makes "urn" and the namespace id case-insensitive: `URN:VEU:admin:x` is the
/// same name as `urn:veu:admin:x` and must count as a second veu URI, not slip past as "other".
const PREFIX: &str = "urn:veu:";

/// Longest accepted name, in bytes (names are ASCII).
pub const MAX_NAME_LEN: usize = 256;

/// Longest piece of a refused role or name kept in an error, so that a hostile certificate
/// cannot fill the logs.
const ECHO_LEN: usize = 64;

/// What a certificate holder may do; the collector authorises by this and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A GPU host's agent: streams attestations; its name is the host id.
    Agent,
    /// An auditor: read-only queries and evidence bundles.
    Auditor,
    /// An operator: enrollment, revocation, sites.
    Admin,
    /// A round-trip-time landmark: delivers signed measurements; its name is the landmark id.
    Landmark,
}

impl Role {
    /// The lowercase word used in identity URIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Landmark => "landmark",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = IdentityError;

    /// Exact lowercase words only: the role is the case-sensitive part of the URN.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Role::Agent),
            "auditor" => Ok(Role::Auditor),
            "admin" => Ok(Role::Admin),
            "landmark" => Ok(Role::Landmark),
            other => Err(IdentityError::BadRole(echo(other))),
        }
    }
}

/// A peer's identity, as carried in `urn:veu:<role>:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// What the peer may do.
    pub role: Role,
    /// 1–256 characters of `A-Za-z0-9-_.:`; for agents, the host id.
    pub name: String,
}

impl PeerIdentity {
    /// An identity with a checked name.
    pub fn new(role: Role, name: &str) -> Result<Self, IdentityError> {
        check_name(name)?;
        Ok(PeerIdentity {
            role,
            name: name.to_owned(),
        })
    }
}

/// The canonical URI, always lowercase `urn:veu:`; stores and logs key on this string.
impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}:{}", self.role, self.name)
    }
}

impl FromStr for PeerIdentity {
    type Err = IdentityError;

    /// Parses `urn:veu:<role>:<name>`; the name may itself contain `:`.
    fn from_str(uri: &str) -> Result<Self, Self::Err> {
        let rest = strip_prefix(uri).ok_or(IdentityError::NoVeuUri)?;
        let (role, name) = rest.split_once(':').unwrap_or((rest, ""));
        let role = role.parse()?;
        PeerIdentity::new(role, name)
    }
}

/// Why a certificate gives no identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The bytes are not exactly one DER X.509 certificate.
    #[error("not a DER X.509 certificate")]
    NotACertificate,
    /// The SAN extension could not be read, or appears twice.
    #[error("the subject alternative name extension is malformed or repeated")]
    BadSubjectAltName,
    /// No SAN URI starts with `urn:veu:`.
    #[error("no urn:veu: URI among the certificate's subject alternative names")]
    NoVeuUri,
    /// More than one `urn:veu:` URI: the identity would be ambiguous.
    #[error("{0} urn:veu: URIs among the subject alternative names; exactly one is allowed")]
    SeveralVeuUris(usize),
    /// The role is not `agent`, `auditor`, `admin` or `landmark`.
    #[error("unknown role {0:?}; expected agent, auditor, admin or landmark")]
    BadRole(String),
    /// The name is empty, too long, or has a character outside `A-Za-z0-9-_.:`.
    #[error("bad name {0:?}; expected 1 to 256 characters of A-Za-z0-9-_.:")]
    BadName(String),
}

/// The identity in a DER leaf certificate. Only reads it: the TLS layer must already have
/// verified the chain, validity and client-auth usage before this is trusted.
pub fn identity_of(cert_der: &[u8]) -> Result<PeerIdentity, IdentityError> {
    let (rest, cert) =
        parse_x509_certificate(cert_der).map_err(|_| IdentityError::NotACertificate)?;
    // Trailing bytes mean the caller holds something other than the certificate it thinks.
    if !rest.is_empty() {
        return Err(IdentityError::NotACertificate);
    }
    let san = cert
        .subject_alternative_name()
        .map_err(|_| IdentityError::BadSubjectAltName)?;
    let veu_uris: Vec<&str> = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) if strip_prefix(uri).is_some() => Some(*uri),
            _ => None,
        })
        .collect();
    match veu_uris.as_slice() {
        [] => Err(IdentityError::NoVeuUri),
        [uri] => uri.parse(),
        several => Err(IdentityError::SeveralVeuUris(several.len())),
    }
}

/// Refuses names outside the identity alphabet.
pub(crate) fn check_name(name: &str) -> Result<(), IdentityError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(allowed) {
        return Err(IdentityError::BadName(echo(name)));
    }
    Ok(())
}

fn strip_prefix(uri: &str) -> Option<&str> {
    let head = uri.get(..PREFIX.len())?;
    head.eq_ignore_ascii_case(PREFIX)
        .then(|| &uri[PREFIX.len()..])
}

fn echo(s: &str) -> String {
    match s.char_indices().nth(ECHO_LEN) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trips_and_is_canonical() {
        let id: PeerIdentity = "urn:veu:agent:gpu-node-1".parse().unwrap();
        assert_eq!(id, PeerIdentity::new(Role::Agent, "gpu-node-1").unwrap());
        assert_eq!(id.to_string(), "urn:veu:agent:gpu-node-1");
        let shouted: PeerIdentity = "URN:VeU:admin:x".parse().unwrap();
        assert_eq!(shouted.to_string(), "urn:veu:admin:x");
    }

    #[test]
    fn names_may_contain_colons() {
        let id: PeerIdentity = "urn:veu:agent:site:rack-4:node.7".parse().unwrap();
        assert_eq!(id.name, "site:rack-4:node.7");
    }

    #[test]
    fn bad_uris_are_refused_with_their_reason() {
        let cases = [
            ("urn:other:agent:x", IdentityError::NoVeuUri),
            ("urn:veu", IdentityError::NoVeuUri),
            ("urn:veu:root:x", IdentityError::BadRole("root".into())),
            ("urn:veu:Admin:x", IdentityError::BadRole("Admin".into())),
            ("urn:veu:", IdentityError::BadRole(String::new())),
            ("urn:veu:agent", IdentityError::BadName(String::new())),
            ("urn:veu:agent:", IdentityError::BadName(String::new())),
            ("urn:veu:agent:a b", IdentityError::BadName("a b".into())),
            ("urn:veu:agent:a/b", IdentityError::BadName("a/b".into())),
            ("urn:veu:agent:é", IdentityError::BadName("é".into())),
        ];
        for (uri, want) in cases {
            assert_eq!(uri.parse::<PeerIdentity>(), Err(want), "{uri}");
        }
    }

    #[test]
    fn name_length_bounds_are_exact() {
        assert!(check_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
        let long = "a".repeat(MAX_NAME_LEN + 1);
        let Err(IdentityError::BadName(echoed)) = check_name(&long) else {
            panic!("a 257-character name was accepted");
        };
        assert!(
            echoed.chars().count() <= ECHO_LEN + 1,
            "errors must not echo huge names"
        );
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        for bytes in [
            &b""[..],
            b"\x30",
            b"\x30\x82\xff\xff",
            b"-----BEGIN CERTIFICATE-----",
        ] {
            assert_eq!(identity_of(bytes), Err(IdentityError::NotACertificate));
        }
    }
}
