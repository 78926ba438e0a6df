//! The shared conformance suite against `SqliteStore`, with the default settings and with the
//! ones that change the writer's behaviour most (no grouping, a tiny queue, NORMAL sync).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use collector_store::{AttestationStore, conformance};
use collector_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};

fn run(options: SqliteOptions) {
    let dir = tempfile::tempdir().unwrap();
    let opened = AtomicUsize::new(0);
    let make = || -> Box<dyn AttestationStore> {
        let n = opened.fetch_add(1, Ordering::Relaxed);
        let path = dir.path().join(format!("store-{n}.sqlite"));
        Box::new(SqliteStore::open(&path, options.clone()).unwrap())
    };
    if let Err(failures) = conformance::run_all(&make) {
        panic!("{failures}");
    }
    assert_eq!(opened.load(Ordering::Relaxed), conformance::CHECKS.len());
}

/// The reopening checks: each database a fresh file, opened again by path.
fn run_reopening(options: SqliteOptions) {
    let dir = tempfile::tempdir().unwrap();
    let made = AtomicUsize::new(0);
    let make = || -> Box<conformance::Opener> {
        let n = made.fetch_add(1, Ordering::Relaxed);
        let path = dir.path().join(format!("reopened-{n}.sqlite"));
        let options = options.clone();
        Box::new(move || -> Box<dyn AttestationStore> {
            Box::new(SqliteStore::open(&path, options.clone()).unwrap())
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
fn sqlite_store_conforms_with_default_options() {
    run(SqliteOptions::default());
}

#[test]
fn sqlite_store_keeps_what_it_stored_across_reopening() {
    run_reopening(SqliteOptions::default());
}

#[test]
fn sqlite_store_conforms_without_grouping_and_with_a_tiny_queue() {
    run(SqliteOptions {
        synchronous: Synchronous::Normal,
        max_group_attestations: 1,
        read_connections: 0,
        ..SqliteOptions::default()
    });
}
