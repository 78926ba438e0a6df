//! The collector's application: every business operation of the collector, with no transport
//! in it. Ingest (verify, admit under the rules of the moment and the ledger, commit, then
//! acknowledge), enrollment, registration, revocation and decommissioning, measurement
//! admission, the distribution at an instant, evidence export, the monthly report, the transparency log and its
//! witnesses, refusal windows, throttles and metrics. The gRPC services (`collector-server`)
//! convert the wire to these types and these results and errors back.
//!
//! Invariant: no tonic, prost or generated protobuf types here; an attestation is acknowledged
//! only after the store committed it.

pub mod distribution;
pub mod enrollment;
pub mod export;
pub mod ingest;
pub mod landmark;
pub mod log;
pub mod metrics;
pub mod nonce;
pub mod refusals;
pub mod report;
pub mod throttle;
pub mod witnesses;

pub use ingest::{Collector, Outcome, Rules};
