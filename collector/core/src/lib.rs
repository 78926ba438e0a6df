//! The collector's domain: the ledger (the one definition of how accepted evidence changes
//! a host's place and counted compute), the site registry, the admission rules a verified
//! attestation must pass before the ledger sees it (presenting identity, nonce, clock window,
//! catalogue, simulated evidence), GPU identities, and the live distribution evaluated
//! incrementally per attestation.
//!
//! Invariant: pure. Signature checks, storage, time and network are adapters; this crate sees
//! decoded payloads that a verifier already opened, and the clock as an argument.

pub mod admission;
pub mod conflicts;
pub mod ledger;
pub mod live;
pub mod location;
pub mod reason;
pub mod sites;

pub use admission::{Admission, AdmissionContext, AgentBinding, NonceCheck, admit};
pub use conflicts::{Conflict, GpuId, IdKind};
pub use ledger::{
    AdminRefusal, Applied, Binding, ChangeCause, Effect, EnrolRefusal, Entry, GpuClaim, HostChange,
    HostRecord, KeyRecord, Ledger, LedgerEvent, Refused,
};
pub use live::{HostEntry, LiveDistribution, Sums};
pub use location::{HostLocation, LocationBook, LocationSums, MeasurementRefusal};
pub use reason::Reason;
pub use sites::{Site, SiteError, SiteRegistry};
