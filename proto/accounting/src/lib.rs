//! The accounting rules every party shares: the accelerator catalogue (TPP per device), the
//! compliance policy as data, and the exact evaluation of a compute distribution against it.
//!
//! Invariant: pure logic on integers. No I/O beyond parsing bytes handed in, no NVML, crypto
//! library, gRPC or SQL; shares are compared by cross-multiplication, never with floats.

pub mod catalogue;
pub mod country;
pub mod digest;
pub mod evaluation;
pub mod fleet;
pub mod percent;
pub mod policy;

pub use catalogue::{Accelerator, Catalogue, CatalogueError, PciId};
pub use country::{CountryCode, CountryError};
pub use digest::Digest;
pub use evaluation::{
    Action, Change, Distribution, Evaluation, Place, Remediation, Remedy, Rule, Tier, Verdict,
    Violation, evaluate, evaluate_located, remediation,
};
pub use fleet::{Fleet, FleetError, FleetRow};
pub use percent::Percent;
pub use policy::{EvidenceRule, LocationTerms, Policy, PolicyError, RequireHardware};

/// An error in a data file, located by its key path (`tiers.tier1[3]`) or line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where: a key path for TOML files.
    pub key: String,
    /// What is wrong, in words.
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Joins errors one per line, for error types that carry every problem found at once.
pub(crate) fn join_lines<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|item| format!("  {item}"))
        .collect::<Vec<_>>()
        .join("\n")
}
