//! The SQLite-specific behaviour the conformance suite cannot force: batches queued together
//! share one transaction, a fork in that transaction fails alone, the settings are applied,
//! and dropping the store answers every commit.

use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::Duration;

use super::*;
use collector_store::conformance::fixture::{agent, attestation, batch, digest};

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("store.sqlite"), SqliteOptions::default()).unwrap()
}

/// Holds the writer inside a job until the returned sender is dropped or sent to, so that
/// commits sent meanwhile queue up behind it.
fn hold_writer(store: &SqliteStore) -> std_mpsc::Sender<()> {
    let (release, held) = std_mpsc::channel::<()>();
    let (started, running) = std_mpsc::channel::<()>();
    let job: WriteOp = Box::new(move |_conn, _log| {
        let _ = started.send(());
        let _ = held.recv();
    });
    store.queue.write(job).unwrap();
    running.recv().unwrap();
    release
}

#[test]
fn queued_batches_share_one_transaction_and_a_fork_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for n in 1..=4 {
        store.put_agent(&agent(n, &format!("host-{n}"))).unwrap();
    }
    store
        .commit_blocking(batch(vec![attestation(1, 1, "host-1", 1_000)]))
        .unwrap();
    let before = store.stats();

    let release = hold_writer(&store);
    let mut fork = attestation(1, 1, "host-1", 1_000);
    fork.digest = digest(9, 9);
    let batches = vec![
        batch(vec![attestation(2, 1, "host-2", 2_000)]),
        batch(vec![attestation(3, 1, "host-3", 2_000), fork]),
        batch(vec![attestation(4, 1, "host-4", 2_000)]),
    ];
    let waiters: Vec<_> = batches
        .into_iter()
        .map(|b| {
            let future = store.commit(b);
            thread::spawn(move || future.wait())
        })
        .collect();
    drop(release);
    let results: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();

    assert_eq!(results[0].as_ref().unwrap().stored, 1);
    assert!(matches!(
        results[1],
        Err(StoreError::Conflict { sequence: 1, .. })
    ));
    assert_eq!(results[2].as_ref().unwrap().stored, 1);
    let after = store.stats();
    assert_eq!(after.groups - before.groups, 1, "{after:?}");
    assert_eq!(after.isolated_groups - before.isolated_groups, 1);
    assert_eq!(after.batches - before.batches, 3);
    assert_eq!(after.failed_batches - before.failed_batches, 1);
    // The forked batch's good attestation went with it.
    assert_eq!(
        store
            .stored_digest(&collector_store::conformance::fixture::key(3), 1)
            .unwrap(),
        None
    );
    assert_eq!(store.attestations(0, i64::MAX, None, 100).unwrap().len(), 3);
}

#[test]
fn a_group_stops_at_the_attestation_bound() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        max_group_attestations: 4,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&dir.path().join("store.sqlite"), options).unwrap();
    store.put_agent(&agent(1, "host-1")).unwrap();
    let release = hold_writer(&store);
    let waiters: Vec<_> = (0..5u64)
        .map(|i| {
            let pair = vec![
                attestation(1, 2 * i + 1, "host-1", 1_000),
                attestation(1, 2 * i + 2, "host-1", 1_000),
            ];
            let future = store.commit(batch(pair));
            thread::spawn(move || future.wait())
        })
        .collect();
    drop(release);
    for waiter in waiters {
        waiter.join().unwrap().unwrap();
    }
    // Five batches of two with at most four attestations per group: 2 + 2 + 1 groups.
    let stats = store.stats();
    assert_eq!((stats.groups, stats.batches, stats.stored), (3, 5, 10));
    assert_eq!(stats.isolated_groups, 0);
}

#[test]
fn administrative_writes_keep_their_place_in_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let release = hold_writer(&store);
    // The commit needs the agent that the write queued before it enrols.
    let store = Arc::new(store);
    let enrol = {
        let store = Arc::clone(&store);
        thread::spawn(move || store.put_agent(&agent(1, "host-1")))
    };
    // Let the enrolment reach the queue first.
    thread::sleep(Duration::from_millis(50));
    let future = store.commit(batch(vec![attestation(1, 1, "host-1", 1_000)]));
    let commit = thread::spawn(move || future.wait());
    drop(release);
    enrol.join().unwrap().unwrap();
    assert_eq!(commit.join().unwrap().unwrap().stored, 1);
}

#[test]
fn dropping_the_store_answers_every_commit_and_keeps_the_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    store.put_agent(&agent(1, "host-1")).unwrap();
    let release = hold_writer(&store);
    let queued: Vec<_> = (1..=20u64)
        .map(|s| {
            let future = store.commit(batch(vec![attestation(1, s, "host-1", 1_000)]));
            thread::spawn(move || (s, future.wait()))
        })
        .collect();
    // Queued when `commit` was called, before the drop: finished like the others.
    let late = store.commit(batch(vec![attestation(1, 21, "host-1", 1_000)]));
    let dropper = thread::spawn(move || drop(store));
    thread::sleep(Duration::from_millis(20));
    drop(release);
    dropper.join().unwrap();
    assert_eq!(late.wait().unwrap().stored, 1);

    let results: Vec<_> = queued.into_iter().map(|q| q.join().unwrap()).collect();
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    for (sequence, result) in results {
        // Everything queued before the drop was finished, not refused.
        assert_eq!(result.unwrap().stored, 1, "sequence {sequence}");
        assert!(
            store
                .stored_digest(&collector_store::conformance::fixture::key(1), sequence)
                .unwrap()
                .is_some()
        );
    }
}

#[test]
fn the_durability_settings_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    for (synchronous, level) in [(Synchronous::Full, 2), (Synchronous::Normal, 1)] {
        let store = SqliteStore::open(
            &path,
            SqliteOptions {
                synchronous,
                ..SqliteOptions::default()
            },
        )
        .unwrap();
        let (mode, sync, foreign_keys, page_size) = store
            .write(|conn, _log| {
                let get = |pragma: &str| -> String {
                    conn.query_row(&format!("PRAGMA {pragma}"), [], |row| {
                        row.get::<_, rusqlite::types::Value>(0)
                    })
                    .map(|v| format!("{v:?}"))
                    .unwrap()
                };
                (
                    get("journal_mode"),
                    get("synchronous"),
                    get("foreign_keys"),
                    get("page_size"),
                )
            })
            .unwrap();
        assert_eq!(mode, "Text(\"wal\")");
        assert_eq!(sync, format!("Integer({level})"));
        assert_eq!(foreign_keys, "Integer(1)");
        assert_eq!(page_size, format!("Integer({PAGE_SIZE})"));
    }
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    drop(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE schema_version SET version = version + 1", [])
        .unwrap();
    drop(conn);
    let error = SqliteStore::open(&path, SqliteOptions::default()).unwrap_err();
    let known = SqliteStore::schema_version();
    match error {
        StoreError::SchemaTooNew { found, known: k } => assert_eq!((found, k), (known + 1, known)),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

/// A store file holding one enrolled host and its first attestation, closed again.
fn one_host_on_disk() -> (tempfile::TempDir, PathBuf, AcceptedAttestation) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let stored = attestation(1, 1, "host-1", 1_000);
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    store.put_agent(&agent(1, "host-1")).unwrap();
    store.commit_blocking(batch(vec![stored.clone()])).unwrap();
    drop(store);
    (dir, path, stored)
}

#[test]
fn reopening_keeps_everything() {
    let (_dir, path, stored) = one_host_on_disk();
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let read = store.attestations(0, i64::MAX, None, 10).unwrap();
    assert_eq!(read[0].log_index, Some(1), "after the enrolment");
    assert_eq!(
        collector_store::conformance::fixture::unindexed(read),
        vec![stored]
    );
    assert_eq!(store.agents().unwrap().len(), 1);
    assert_eq!(store.log_size().unwrap(), 2);
}

#[test]
fn a_digest_of_the_wrong_length_reads_as_corrupt_naming_its_column() {
    let (_dir, path, stored) = one_host_on_disk();
    let conn = Connection::open(&path).unwrap();
    conn.execute("UPDATE attestations SET previous_digest = zeroblob(31)", [])
        .unwrap();
    conn.execute("UPDATE chain_heads SET digest = zeroblob(33)", [])
        .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    match store.attestations(0, i64::MAX, None, 10) {
        Err(StoreError::Corrupt(what)) => assert_eq!(what, "previous_digest has 31 bytes, not 32"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    match store.chain_head(&stored.key_id) {
        Err(StoreError::Corrupt(what)) => assert_eq!(what, "digest has 33 bytes, not 32"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Rows that schema version 4 holds (GPU lists of format 2, GPUs and host changes without
/// hardware columns) read back without hardware evidence, and the host takes evidence on from
/// its next attestation.
#[test]
fn rows_stored_before_hardware_evidence_read_back_without_it() {
    use collector_store::conformance::fixture::{attested_gpu, hardware_tpp, unindexed};
    use rusqlite::params;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let agent = agent(1, "host-1");
    let mut old = attestation(1, 1, "host-1", 1_000);
    old.gpus[5].counted = false;
    {
        let mut conn = Connection::open(&path).unwrap();
        schema::migrate_to(&mut conn, 4).unwrap();
        let inventory = codec::encode_gpus_before_hardware(2, &old.gpus);
        conn.execute(
            "INSERT INTO agents (key_id, public_key, host_id, site_id, identity, enrolled_at_ms,
                 country)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                agent.key_id.0.as_bytes(),
                agent.public_key,
                agent.host_id.0,
                agent.site_id.0,
                agent.identity,
                agent.enrolled_at_ms,
                agent.country
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO inventories (id, gpus) VALUES (7, ?1)",
            [&inventory],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO attestations (key_id, sequence, digest, previous_digest, host_id,
                 site_id, country, issued_at_ms, received_at_ms, tpp, devices, simulated,
                 gap_before, fresh, inventory_id, envelope)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 7, ?15)",
            params![
                old.key_id.0.as_bytes(),
                old.sequence as i64,
                old.digest.0.as_bytes(),
                old.previous_digest.0.as_bytes(),
                old.host_id.0,
                old.site_id.0,
                old.country,
                old.issued_at_ms,
                old.received_at_ms,
                old.tpp as i64,
                old.devices,
                old.simulated,
                old.gap_before as i64,
                old.fresh,
                old.envelope
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO chain_heads (key_id, sequence, digest) VALUES (?1, 1, ?2)",
            params![old.key_id.0.as_bytes(), old.digest.0.as_bytes()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO host_state (host_id, site_id, country, key_id, last_sequence,
                 last_digest, last_issued_at_ms, last_received_at_ms, tpp, devices,
                 inventory_id)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, 7)",
            params![
                old.host_id.0,
                old.site_id.0,
                old.country,
                old.key_id.0.as_bytes(),
                old.digest.0.as_bytes(),
                old.issued_at_ms,
                old.received_at_ms,
                old.tpp as i64,
                old.devices
            ],
        )
        .unwrap();
        for (position, gpu) in old.gpus.iter().enumerate() {
            conn.execute(
                "INSERT INTO gpus (host_id, position, uuid, serial, catalogue_id, tpp, counted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    old.host_id.0,
                    position as i64,
                    gpu.uuid,
                    gpu.serial,
                    gpu.catalogue_id,
                    gpu.tpp as i64,
                    gpu.counted
                ],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO host_changes (at_ms, host_id, site_id, country, tpp, devices, kind)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'attested')",
            params![
                old.received_at_ms,
                old.host_id.0,
                old.site_id.0,
                old.country,
                old.tpp as i64,
                old.devices
            ],
        )
        .unwrap();
    }

    let store = open(&dir);
    // The fixture's GPUs have no hardware evidence: exactly what the defaults read back as.
    assert!(
        old.gpus
            .iter()
            .all(|g| g.hardware.is_empty() && g.hardware_at_ms == 0)
    );
    assert_holds(&store, &old, vec![old.clone()]);
    let changes = store.host_changes(i64::MAX).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0].tpp, changes[0].hardware_tpp), (old.tpp, 0));

    // The next attestation proves its GPUs' hardware; the old one keeps its list.
    let mut next = attestation(1, 2, "host-1", 2_000);
    next.gpus = (0..8).map(|i| attested_gpu("host-1", i, 1_900)).collect();
    store.commit_blocking(batch(vec![next.clone()])).unwrap();
    assert_holds(&store, &next, vec![old, next.clone()]);
    let changes = store.host_changes(i64::MAX).unwrap();
    assert_eq!(changes[1].hardware_tpp, hardware_tpp(&next.gpus));
    assert_eq!(changes[1].hardware_tpp, next.tpp);

    /// host-1 holds the GPUs of `latest`, and `history` is its attestations.
    fn assert_holds(
        store: &SqliteStore,
        latest: &AcceptedAttestation,
        history: Vec<AcceptedAttestation>,
    ) {
        let held: Vec<_> = latest
            .gpus
            .iter()
            .map(|g| ("host-1".to_owned(), g.clone()))
            .collect();
        assert_eq!(store.host_gpus().unwrap(), held);
        assert_eq!(
            unindexed(store.host_history("host-1", 0, i64::MAX, 10).unwrap()),
            history
        );
    }
}

/// `measurements` reads its leaves through their own index, not by scanning the log, and the
/// administrative index (the evidence export's key history) leaves them out.
#[test]
fn measurements_have_an_index_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.put_agent(&agent(1, "host-1")).unwrap();
    store
        .append_measurement("host-1", 1_500, &[7; 100])
        .unwrap();
    let conn = Connection::open(store.path()).unwrap();
    let plan = |sql: &str| -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let details: Vec<String> = stmt
            .query_map([0], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        details.join("; ")
    };
    let measurements = plan(read::MEASUREMENTS);
    assert!(
        measurements.contains("USING INDEX log_entries_measurements"),
        "{measurements}"
    );
    let indexes: Vec<String> = conn
        .prepare("SELECT sql FROM sqlite_schema WHERE name = 'log_entries_administrative'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(indexes.len(), 1);
    assert!(
        indexes[0].contains("kind <> 'measurement'"),
        "{}",
        indexes[0]
    );
}
