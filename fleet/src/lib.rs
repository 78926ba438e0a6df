//! The workspace's binaries as processes on one machine: where they are, free ports, a group
//! of processes that ends with its owner, waiting for a port or a condition, a collector on a
//! development PKI, a witness, and agents on the fake NVML library. `veuctl demo` and the
//! system tests run the product through it.
//!
//! Invariant: it only runs the binaries, never links the daemons; every failure is an error
//! the caller reports (no panic), and every process it starts is killed when its handle is
//! dropped.

pub mod agent;
pub mod binaries;
pub mod calendar;
pub mod collector;
pub mod command;
pub mod daemon;
pub mod ports;
pub mod process;
pub mod wait;
pub mod witness;

pub use binaries::{Binaries, BinaryError};
pub use command::{CommandError, run_ok};
pub use daemon::{STARTUP, StartError};
pub use ports::{PortError, free_port, free_ports};
pub use process::{Group, Process, SpawnError, StopOnDrop};
pub use wait::{NotListening, TimedOut, wait_for, wait_listening};
