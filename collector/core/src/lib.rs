//! The collector's domain: the site registry, the admission rules every verified attestation
//! must pass (identity, revocation, chain, clock, nonce, site, catalogue, simulated evidence),
//! GPU identity conflicts, and the live distribution evaluated incrementally per attestation.
//!
//! Invariant: pure. Signature checks, storage, time and network are adapters; this crate sees
//! decoded payloads that a verifier already opened, and the clock as an argument.

pub mod admission;
pub mod conflicts;
pub mod live;
pub mod reason;
pub mod sites;

pub use admission::{Admission, AdmissionContext, AgentBinding, NonceCheck, admit};
pub use conflicts::{Conflict, GpuIndex};
pub use live::{HostEntry, LiveDistribution};
pub use reason::Reason;
pub use sites::{Site, SiteError, SiteRegistry};
