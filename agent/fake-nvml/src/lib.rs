//! A fake `libnvidia-ml.so.1` for CI without GPUs: exports the NVML C functions veu-agent calls
//! and answers them from the JSON fixture named by `VEU_FAKE_NVML_FIXTURE`.
//!
//! Invariant: the only crate with `unsafe` code, all of it at the C boundary. No call panics or
//! unwinds into C, no handle is ever dereferenced, and every answer comes from the fixture, so
//! a fixture reproduces a host (including its failing GPUs) exactly. Never shipped or loaded in
//! production: evidence gathered through it is marked simulated by `agent-nvml`.
//!
//! Use: build with `cargo build -p agent-fake-nvml` and point the agent at
//! `target/debug/libveu_fake_nvml.so`; `tests/fixtures/nvml/README.md` describes the fixtures.

mod attester;
mod code;
mod exports;
mod fixture;
mod handle;
mod param;
mod state;

/// The environment variable that holds the fixture's path.
pub const FIXTURE_VAR: &str = "VEU_FAKE_NVML_FIXTURE";

/// The file name cargo gives the library on Linux.
pub const LIBRARY_FILE: &str = "libveu_fake_nvml.so";
