//! Why a report was refused: a closed set of reasons with stable codes, and a detail naming what
//! and where.

use std::fmt;

/// Why a report or its certificate chain was refused. [`Reason::code`] is stable: it is stored
/// with outcomes and shown to operators, so a code is never renamed or reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The report is longer than [`crate::MAX_REPORT_BYTES`].
    ReportTooLarge,
    /// The certificate chain is longer than [`crate::MAX_CHAIN_BYTES`].
    ChainTooLarge,
    /// The report is not a well-formed SPDM GET_MEASUREMENTS request and MEASUREMENTS response.
    MalformedReport,
    /// The request or response speaks an SPDM version other than 1.1.
    UnsupportedSpdmVersion,
    /// The chain is not PEM or concatenated DER X.509 certificates, or lacks a required part.
    MalformedChain,
    /// A certificate uses a key or signature algorithm other than ECDSA P-384 with SHA-384, or
    /// carries a critical extension this verifier does not understand.
    UnsupportedCertificate,
    /// A certificate is not signed by the next one in the chain, or names another issuer.
    ChainSignatureInvalid,
    /// A certificate that signs another is not a certificate authority (basic constraints, key
    /// usage or path length).
    IssuerNotCa,
    /// The chain does not end at a pinned root.
    UntrustedRoot,
    /// A certificate of the chain expired before the evidence's time.
    CertificateExpired,
    /// A certificate of the chain is not yet valid at the evidence's time.
    CertificateNotYetValid,
    /// The report's signature does not verify with the leaf certificate's key.
    ReportSignatureInvalid,
    /// The report answers another nonce than the one expected.
    NonceMismatch,
    /// The leaf certificate carries no TCG DICE firmware identity.
    FwidMissing,
    /// The report's firmware identity differs from the one in the leaf certificate.
    FwidMismatch,
    /// The report's driver version differs from the expected one.
    DriverVersionMismatch,
    /// The report's VBIOS version differs from the expected one.
    VbiosVersionMismatch,
    /// The chain carries no device identity (NVIDIA's subject-alternative-name otherName).
    IdentityMissing,
    /// A measurement differs from every value its reference integrity manifest accepts.
    MeasurementMismatch,
    /// An OCSP answer says a certificate of the chain is revoked.
    CertificateRevoked,
    /// An OCSP answer says a certificate of the chain is on hold (revoked, certificateHold).
    CertificateOnHold,
}

impl Reason {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::ReportTooLarge => "report_too_large",
            Reason::ChainTooLarge => "chain_too_large",
            Reason::MalformedReport => "malformed_report",
            Reason::UnsupportedSpdmVersion => "unsupported_spdm_version",
            Reason::MalformedChain => "malformed_chain",
            Reason::UnsupportedCertificate => "unsupported_certificate",
            Reason::ChainSignatureInvalid => "chain_signature_invalid",
            Reason::IssuerNotCa => "issuer_not_ca",
            Reason::UntrustedRoot => "untrusted_root",
            Reason::CertificateExpired => "certificate_expired",
            Reason::CertificateNotYetValid => "certificate_not_yet_valid",
            Reason::ReportSignatureInvalid => "report_signature_invalid",
            Reason::NonceMismatch => "nonce_mismatch",
            Reason::FwidMissing => "fwid_missing",
            Reason::FwidMismatch => "fwid_mismatch",
            Reason::DriverVersionMismatch => "driver_version_mismatch",
            Reason::VbiosVersionMismatch => "vbios_version_mismatch",
            Reason::IdentityMissing => "identity_missing",
            Reason::MeasurementMismatch => "measurement_mismatch",
            Reason::CertificateRevoked => "certificate_revoked",
            Reason::CertificateOnHold => "certificate_on_hold",
        }
    }

    /// Every reason, for tests and documentation of the codes.
    pub const ALL: &'static [Reason] = &[
        Reason::ReportTooLarge,
        Reason::ChainTooLarge,
        Reason::MalformedReport,
        Reason::UnsupportedSpdmVersion,
        Reason::MalformedChain,
        Reason::UnsupportedCertificate,
        Reason::ChainSignatureInvalid,
        Reason::IssuerNotCa,
        Reason::UntrustedRoot,
        Reason::CertificateExpired,
        Reason::CertificateNotYetValid,
        Reason::ReportSignatureInvalid,
        Reason::NonceMismatch,
        Reason::FwidMissing,
        Reason::FwidMismatch,
        Reason::DriverVersionMismatch,
        Reason::VbiosVersionMismatch,
        Reason::IdentityMissing,
        Reason::MeasurementMismatch,
        Reason::CertificateRevoked,
        Reason::CertificateOnHold,
    ];
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refused report: the reason and a detail naming what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Failure {
    /// Why.
    pub reason: Reason,
    /// What and where, for people.
    pub detail: String,
}

impl Failure {
    pub(crate) fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Failure {
            reason,
            detail: detail.into(),
        }
    }
}

/// Roots that cannot be pinned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot pin GPU device roots: {0}")]
pub struct TrustError(pub String);
