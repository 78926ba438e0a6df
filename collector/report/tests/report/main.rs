//! The report's tests: hand-computed months, rendering, determinism, scale, and a property
//! test against a naive replay evaluated with `proto_accounting::evaluate`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod errors;
mod harness;
mod location;
mod properties;
mod render;
mod scale;
mod scenarios;
mod screenshots;
mod states;
