//! What can go wrong making, loading or using the CA.

use std::io;
use std::path::PathBuf;

use crate::identity::IdentityError;

/// Why a PKI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a PKI file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// `init` found a CA key already there; replacing it would orphan every enrolled agent.
    #[error("{0} already exists; refusing to replace a CA that agents may trust")]
    CaKeyExists(PathBuf),
    /// The CA files do not make a usable CA.
    #[error("{path}: {reason}")]
    BadCa {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A server name is neither an IP address nor a DNS name.
    #[error("bad server name {0:?}; expected a DNS name or an IP address")]
    BadServerName(String),
    /// `init` was given no server names.
    #[error("at least one server name is needed")]
    NoServerNames,
    /// The role or name to certify is not a valid identity.
    #[error("bad identity: {0}")]
    BadIdentity(#[from] IdentityError),
    /// The CSR is malformed, its signature does not verify, or it asks for an extension that
    /// cannot be parsed.
    #[error("certificate signing request refused: {0}")]
    BadCsr(rcgen::Error),
    /// The CSR's key is not one the collector certifies.
    #[error("certificate signing request refused: {0}")]
    UnsupportedKey(&'static str),
    /// The clock is before 1970 or too far ahead to express a certificate's validity.
    #[error("the clock is out of the range certificates can express")]
    ClockOutOfRange,
    /// Building or signing a certificate or key failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[source] rcgen::Error),
}

impl PkiError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> PkiError {
        let path = path.into();
        move |source| PkiError::Io { path, source }
    }
}
