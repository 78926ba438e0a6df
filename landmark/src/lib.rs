//! veu-landmark: a landmark at surveyed coordinates that measures how fast agents' attestation
//! keys answer its nonces (agents connect out to it; `proto_location::probe`), signs the
//! fastest round of each session as a `proto_evidence::Measurement`, and submits it to the
//! collector's `veu.v1.Landmark` service over mutual TLS.
//!
//! Invariant: a statement is signed only over rounds whose every answer verified with the key
//! the agent named; the landmark's clock runs only from a Challenge's write to its Answer's
//! last byte; every read is bounded by its frame's size and a deadline; generated protobuf
//! types stay in `submit`.

pub mod config;
pub mod daemon;
pub mod registry;
pub mod server;
pub mod session;
pub mod submit;

pub use config::{Config, Loaded};
pub use server::serve;
pub use session::{Identity, Limits, SessionError, measure};
