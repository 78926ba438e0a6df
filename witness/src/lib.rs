//! veu-witness: a C2SP tlog-witness that a regulator or auditor runs on their own machine. It
//! cosigns a veu-attest log's checkpoints (cosignature/v1) only after checking that each one
//! is signed by the log's key and extends, by a verified consistency proof, the last one it
//! cosigned; so a log that shows two histories, or rolls one back, is caught by any client
//! that requires the witness's cosignature. Also the client a log submits checkpoints with.
//!
//! Invariant: no cosignature leaves before the new (size, root) is durably on disk; for each
//! log, checking the old size and recording the new one happen under one lock, so two
//! requests never both extend the same size; the witness never forgets a size (a state file
//! that does not read back stops it from starting).

pub mod client;
pub mod config;
pub mod daemon;
pub mod keyfile;
pub mod server;
pub mod state;
pub mod witness;

pub use client::{AddError, add_checkpoint};
pub use server::Limits;
pub use witness::{Cosigned, Refusal, Witness, WitnessedLog};
