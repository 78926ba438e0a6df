//! Evidence bundles: what `veuctl evidence export` writes and `veuctl verify` checks offline,
//! with nothing but the collector's log public key.
//!
//! A bundle is a directory of plain files (JSON with hex-encoded bytes, and the policy and
//! catalogue TOML as the collector applied them), so that an auditor can read it with any
//! tool. `verify` trusts none of it: every tree head must carry the log key's signature, the
//! heads must be consistent, every leaf must be included in the end head and the range of
//! leaves must be complete, every attestation must verify under a key whose enrolment is in
//! the log, chains must link, prices must match the catalogue, and a monthly report's verdicts
//! are recomputed from the attestations themselves.
//!
//! Invariant: no network, no store; the bundle's own claims (summary counts, the report's
//! figures) are only ever compared with what the evidence proves, never used instead of it.

mod assemble;
mod format;
mod hex;
mod keys;
mod known;
pub mod live;
mod location;
mod replay;
mod report_check;
mod verify;

pub use assemble::{Assembly, AssemblyError};
pub use format::{
    Bundle, BundleError, CHECKPOINT, Consistency, FORMAT, Head, LANDMARKS, Leaf, Manifest, SITES,
};
pub use hex::{from_hex, to_hex};
pub use keys::{log_key_from_text, signature_from_text, signature_to_text};
pub use known::read_known_heads;
pub use location::{located_at, newest_of_each_pair, window_ms};
pub use replay::{Locating, Replay, Replayer, replay};
pub use verify::{
    Cosigner, Coverage, Finding, KnownHead, Outcome, ReportCheck, Requirements, RulesSeen, verify,
};
