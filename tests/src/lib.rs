//! System-test harness: the workspace's architecture rules, checked on `cargo metadata`, and
//! (as the product grows) helpers that start the real binaries as processes.
//!
//! Invariant: tests here use the product only from the outside (processes, files, metadata).

pub mod architecture;
