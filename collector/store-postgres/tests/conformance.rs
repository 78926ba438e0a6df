//! The shared conformance suite against `PostgresStore`, each check in a fresh schema: with
//! the default settings, and with the ones that change the writer's behaviour most (no
//! grouping, one read connection).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::sync::atomic::{AtomicUsize, Ordering};

use collector_store::{AttestationStore, conformance};
use collector_store_postgres::{PostgresOptions, PostgresStore};
use harness::Database;

fn run(options: PostgresOptions) {
    let Some(database) = Database::from_env() else {
        return;
    };
    let opened = AtomicUsize::new(0);
    let make = || -> Box<dyn AttestationStore> {
        opened.fetch_add(1, Ordering::Relaxed);
        Box::new(database.fresh_store(options.clone()))
    };
    if let Err(failures) = conformance::run_all(&make) {
        panic!("{failures}");
    }
    assert_eq!(opened.load(Ordering::Relaxed), conformance::CHECKS.len());
}

/// The reopening checks: each database a fresh schema, connected to again by name.
fn run_reopening(options: PostgresOptions) {
    let Some(database) = Database::from_env() else {
        return;
    };
    let made = AtomicUsize::new(0);
    let make = || -> Box<conformance::Opener> {
        made.fetch_add(1, Ordering::Relaxed);
        let options = PostgresOptions {
            schema: Some(database.fresh_schema()),
            ..options.clone()
        };
        let url = database.url.clone();
        Box::new(move || -> Box<dyn AttestationStore> {
            Box::new(PostgresStore::connect(&url, options.clone()).unwrap())
        })
    };
    if let Err(failures) = conformance::run_reopening(&make) {
        panic!("{failures}");
    }
    assert_eq!(
        made.load(Ordering::Relaxed),
        conformance::REOPEN_CHECKS.len()
    );
}

#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn postgres_store_conforms_with_default_options() {
    run(PostgresOptions::default());
}

#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn postgres_store_keeps_what_it_stored_across_reopening() {
    run_reopening(PostgresOptions::default());
}

#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn postgres_store_conforms_without_grouping_and_with_one_read_connection() {
    run(PostgresOptions {
        max_group_attestations: 1,
        read_connections: 1,
        ..PostgresOptions::default()
    });
}
