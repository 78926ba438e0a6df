//! The differential, model-based check of the books on PostgreSQL: random sequences
//! (`collector_testkit::differential`), each in a fresh schema; after every step the live
//! view, the audit replay, the log replay and a restart agree exactly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::sync::Arc;

use collector_store::AttestationStore;
use collector_store_postgres::PostgresOptions;
use collector_testkit::differential;
use harness::Database;

/// Sequences per run (`VEU_DIFFERENTIAL_SEQUENCES` raises it for a longer soak).
const SEQUENCES: u64 = 30;
const STEPS: usize = 40;

#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn live_audit_log_replay_and_restart_agree_on_postgres() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let sequences = std::env::var("VEU_DIFFERENTIAL_SEQUENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SEQUENCES);
    let mut acked = 0;
    for seed in 0..sequences {
        let store: Arc<dyn AttestationStore> =
            Arc::new(database.fresh_store(PostgresOptions::default()));
        acked += differential::run(store, 0x9a5e_0000 + seed, STEPS).acked;
    }
    assert!(acked > 0);
}
