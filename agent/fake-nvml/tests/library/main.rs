//! The built `libveu_fake_nvml.so`, loaded and called the way nvml-wrapper calls NVML.
//!
//! `cargo test -p agent-fake-nvml` builds the library before running this binary: the test
//! depends on the crate, whose lib target is built with both crate types, so the cdylib lands in
//! `target/debug/deps/` (cargo copies it up to `target/debug/` only for `cargo build`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod failures;
mod fixtures;
mod harness;
mod lifecycle;
mod queries;
