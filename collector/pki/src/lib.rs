//! The collector's PKI: who a peer is (`urn:veu:<role>:<name>` in its certificate), the
//! development CA that `veu-collector pki init` writes, and certificate issuing for enrollment.
//!
//! Invariant: an identity comes from exactly one `urn:veu:` SAN URI and nothing else (never the
//! CN); an enrollment certificate names the identity the collector chose, never the one the
//! request asked for; no private key is ever written readable by anyone but its owner.

mod ca;
mod error;
mod identity;
mod init;

pub use ca::{CA_COMMON_NAME, Ca, ClientCredential, make_csr, same_key};
pub use error::PkiError;
pub use identity::{IdentityError, MAX_NAME_LEN, PeerIdentity, Role, identity_of};
pub use init::{INIT_ADMIN_NAME, INIT_AUDITOR_NAME, PkiPaths, init, issue};
