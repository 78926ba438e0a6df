//! The differential, model-based check of the books on the embedded store: many random
//! sequences (`collector_testkit::differential`), each on a fresh SQLite store; after every
//! step the live view, the audit replay, the log replay and a restart agree exactly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use collector_store::AttestationStore;
use collector_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use collector_testkit::differential;

/// Sequences per run, and steps per sequence; `VEU_DIFFERENTIAL_SEQUENCES` raises the first
/// for a longer soak.
const SEQUENCES: u64 = 120;
const STEPS: usize = 40;

#[test]
fn live_audit_log_replay_and_restart_agree_on_sqlite() {
    let sequences = std::env::var("VEU_DIFFERENTIAL_SEQUENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SEQUENCES);
    let mut total = differential::Tally::default();
    for seed in 0..sequences {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn AttestationStore> = Arc::new(
            SqliteStore::open(
                &dir.path().join("books.db"),
                SqliteOptions {
                    synchronous: Synchronous::Normal,
                    ..SqliteOptions::default()
                },
            )
            .unwrap(),
        );
        let tally = differential::run(store, 0x5eed_0000 + seed, STEPS);
        total.steps += tally.steps;
        total.acked += tally.acked;
        total.refused += tally.refused;
        total.enrolments_refused += tally.enrolments_refused;
        total.restarts += tally.restarts;
    }
    eprintln!("{sequences} sequences: {total:?}");
    // The generator reaches every kind of outcome.
    assert!(total.acked > total.steps / 10, "{total:?}");
    assert!(
        total.refused > 0 && total.enrolments_refused > 0 && total.restarts > 0,
        "{total:?}"
    );
}
