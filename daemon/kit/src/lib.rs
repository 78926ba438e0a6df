//! What every veu-attest daemon (`veu-agent`, `veu-collector`, `veu-witness`,
//! `veu-landmark`) and `veuctl` share around their work: the wait for a shutdown signal
//! (`signal`), the log output (`logging`), the exit status of a failure (`exit`), and the text
//! of an error with its sources and of bytes as hex (`text`), the wall clock in Unix milliseconds
//! (`clock`); the Prometheus endpoint each
//! daemon serves (`exposition`); how `run` and `check-config` begin (`start`), accepting
//! connections until shutdown (`listen`), and the delays between retries (`backoff`). Its
//! `build/commit.rs` is the five binaries' build script. The `testing` feature adds what the
//! daemons' own tests share (module `testing`).
//!
//! Invariant: no daemon-specific knowledge and nothing of the contract; the endpoint never
//! blocks the caller's runtime on a slow client or a readiness check; without the `runtime`
//! feature the crate is std only (`hex`, `error_chain`, `now_unix_ms`, `backoff`), so libraries may use it
//! without pulling a runtime or a log subscriber.

pub mod backoff;
pub mod clock;
#[cfg(feature = "runtime")]
pub mod exit;
#[cfg(feature = "runtime")]
pub mod exposition;
#[cfg(feature = "runtime")]
pub mod listen;
#[cfg(feature = "runtime")]
pub mod logging;
#[cfg(feature = "runtime")]
pub mod signal;
#[cfg(feature = "runtime")]
pub mod start;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;

pub use clock::now_unix_ms;
#[cfg(feature = "runtime")]
pub use exit::exit_code;
#[cfg(feature = "runtime")]
pub use logging::init_logging;
#[cfg(feature = "runtime")]
pub use signal::{Hangup, Signal, Signals, cancel_on_signal, shutdown_signal};
#[cfg(feature = "runtime")]
pub use start::{create_state_dir, print_creates, start};
pub use text::{error_chain, hex};
