//! The agent's signing identity: an Ed25519 key (ring) made on first start and stored as
//! PKCS#8 with mode 0600. A key file others can read is refused: whoever reads it can sign
//! attestations in this host's name. The file handling is `proto_seal::keyfile`, which the
//! collector's log key shares.
//!
//! Invariant: the signing key is never the TLS key and never leaves its file unencrypted
//! except into memory.

pub use proto_seal::keyfile::{KeyFileError, KeyOrigin, load, load_or_create};
