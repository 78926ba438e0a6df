//! veu-loadgen's engine: simulated agents with real Ed25519 keys, real signatures and real
//! mutual TLS that enroll with one-time tokens and stream pipelined, hash-chained attestations
//! of realistic 8-GPU hosts to a running collector, counting acks, rejects and latency; and a
//! harness that starts a local `veu-collector` for the ingest benchmark and tests.
//!
//! Invariant: it reaches the collector only through the public `veu.v1` contract over TLS, as
//! real agents and admins do (and starts it only as a process); it never links the collector's
//! server, store or core, so what it measures is what a fleet would see.

pub mod attestor;
pub mod enroll;
pub mod fleet;
pub mod hold;
pub mod inventory;
pub mod local;
pub mod measure;
pub mod stats;
pub mod stream;
pub mod transport;

pub use enroll::{EnrollError, EnrolledAgent, FleetPlan, enroll_fleet};
pub use fleet::stream_fleet;
pub use stats::Summary;
pub use stream::StreamPlan;
pub use transport::{Credential, Target};

/// A random `u64` from the system generator (GPU seeds, host name prefixes).
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // On failure (no system randomness) the bytes stay zero: fine for names, not for secrets.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u64::from_be_bytes(bytes)
}
