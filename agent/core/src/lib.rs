//! The agent's domain: what a GPU source reports, how devices are priced in TPP, how each
//! attestation becomes the next link of the chain, and when the next one is due.
//!
//! Invariant: pure. No NVML, crypto, gRPC, file or clock access: time, randomness and devices
//! are handed in, so every decision is testable.

pub mod chain;
pub mod evidence;
pub mod fake;
pub mod inventory;
pub mod pricing;
pub mod schedule;

pub use chain::{Chain, Identity, Rules};
pub use evidence::Challenges;
pub use fake::{FakeEvidence, FakeGpuSource};
pub use inventory::{Fault, GpuSource, RawDevice, RawInventory, SourceError};
pub use pricing::{PricedDevice, PricedInventory, price};
pub use schedule::{Change, Fingerprint, Schedule};
