//! What only PostgreSQL adds to the port's behaviour: several stores (replicas) on one schema,
//! migrations at a shared start, a newer schema refused, async callers on a multi-threaded
//! runtime, values PostgreSQL refuses, and TLS to the server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Barrier;
use std::thread;

use collector_store::conformance::fixture::{
    self, agent, attestation, batch, digest, enrolled_state, key, state_of,
};
use collector_store::{
    AcceptedAttestation, AttestationStore, Batch, CommitReceipt, HostChange, HostId, LogNodes,
    StoreError, StoredHead,
};
use collector_store_postgres::{PostgresOptions, PostgresStore};
use harness::Database;
use proto_merkle::{MemoryTree, leaf_hash};

/// Links per chain in the replica test.
const LINKS: u64 = 30;

#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn two_replicas_on_one_schema_keep_one_log_and_one_copy_of_each_link() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let schema = database.fresh_schema();
    let connect = || PostgresStore::connect(&database.url, Database::options(&schema)).unwrap();
    let (a, b) = (connect(), connect());
    let replicas: [&PostgresStore; 2] = [&a, &b];

    // Keys 0..8 on hosts of their own, four through each replica; key 8 on a host both
    // replicas serve (odd links through one, even through the other); key 9's links all go
    // through both replicas at once.
    for n in 0..10u8 {
        let host = match n {
            8 => "host-shared".to_owned(),
            9 => "host-twice".to_owned(),
            n => format!("host-{n}"),
        };
        replicas[usize::from(n) % 2]
            .put_agent(&agent(n, &host))
            .unwrap();
    }
    let link = |n: u8, sequence: u64| {
        let host = match n {
            8 => "host-shared".to_owned(),
            9 => "host-twice".to_owned(),
            n => format!("host-{n}"),
        };
        attestation(n, sequence, &host, 1_000 * sequence as i64 + i64::from(n))
    };

    let start = Barrier::new(6);
    let receipts: Vec<CommitReceipt> = thread::scope(|scope| {
        let mut committers = Vec::new();
        for (r, replica) in replicas.into_iter().enumerate() {
            let (start, link) = (&start, &link);
            // Own hosts: keys r*4 .. r*4+4, in batches of three links from four keys.
            committers.push(scope.spawn(move || {
                start.wait();
                let mut total = CommitReceipt::default();
                for first in (1..=LINKS).step_by(3) {
                    let links = (0..4u8)
                        .flat_map(|k| (first..first + 3).map(move |s| (r as u8 * 4 + k, s)))
                        .map(|(n, s)| link(n, s))
                        .collect();
                    add(&mut total, replica.commit_blocking(batch(links)).unwrap());
                }
                total
            }));
            // The shared host: replica 0 sends the odd links, replica 1 the even ones.
            committers.push(scope.spawn(move || {
                start.wait();
                let mut total = CommitReceipt::default();
                for sequence in (1..=2 * LINKS).filter(|s| s % 2 == 1 - r as u64) {
                    add(
                        &mut total,
                        replica
                            .commit_blocking(batch(vec![link(8, sequence)]))
                            .unwrap(),
                    );
                }
                total
            }));
            // The same links through both replicas.
            committers.push(scope.spawn(move || {
                start.wait();
                let mut total = CommitReceipt::default();
                for sequence in 1..=LINKS {
                    add(
                        &mut total,
                        replica
                            .commit_blocking(batch(vec![link(9, sequence)]))
                            .unwrap(),
                    );
                }
                total
            }));
        }
        committers.into_iter().map(|c| c.join().unwrap()).collect()
    });

    // Every (key, sequence) stored exactly once; key 9's second copies are repeats.
    let stored: usize = receipts.iter().map(|r| r.stored).sum();
    let repeated: usize = receipts.iter().map(|r| r.repeated).sum();
    let expected = 8 * LINKS as usize + 2 * LINKS as usize + LINKS as usize;
    assert_eq!((stored, repeated), (expected, LINKS as usize));
    let all = a
        .attestations(i64::MIN, i64::MAX, None, usize::MAX)
        .unwrap();
    assert_eq!(all.len(), expected);
    let pairs: BTreeSet<_> = all.iter().map(|x| (x.key_id, x.sequence)).collect();
    assert_eq!(pairs.len(), expected, "a (key, sequence) is stored twice");
    for x in &all {
        assert_eq!(x.digest, digest(x.key_id.0.as_bytes()[1], x.sequence));
    }
    assert_eq!(a.stats().stored + b.stats().stored, expected as u64);

    // One log: every enrolment and stored attestation, indexes 0.. without a hole, each
    // attestation pointing at its own leaf; both replicas read the same.
    let size = a.log_size().unwrap();
    assert_eq!(size, 10 + expected as u64);
    assert_eq!(b.log_size().unwrap(), size);
    let records = a.log_records(0, usize::MAX).unwrap();
    assert_eq!(records, b.log_records(0, usize::MAX).unwrap());
    let indexes: Vec<u64> = records.iter().map(|r| r.log_index).collect();
    assert_eq!(indexes, (0..size).collect::<Vec<_>>());
    let mut logged: Vec<u64> = all.iter().map(|x| x.log_index.unwrap()).collect();
    logged.sort_unstable();
    logged.dedup();
    assert_eq!(logged.len(), expected);

    // The root over the stored nodes equals the root of the leaves themselves, at every size
    // (sampled) and at the end, through either replica.
    let tree = MemoryTree::from_leaves(records.iter().map(|r| leaf_hash(&r.entry)));
    assert_eq!(tree.size(), size);
    for checked in (1..=size).step_by(23).chain([size]) {
        let expected_root = proto_merkle::root(&tree, checked).unwrap();
        assert_eq!(
            proto_merkle::root(&LogNodes(&a), checked).unwrap(),
            expected_root
        );
        assert_eq!(
            proto_merkle::root(&LogNodes(&b), checked).unwrap(),
            expected_root
        );
    }

    // Host states are the updates as given, the last one committed winning: each host at the
    // last link its committers sent (the shared host's two committers race for the last
    // word). Every update's change is kept, repeats' included: 12 per link number.
    let states: BTreeMap<String, u64> = a
        .host_states()
        .unwrap()
        .into_iter()
        .map(|s| (s.host_id.0, s.last_sequence))
        .collect();
    assert_eq!(states.len(), 10);
    assert!(
        [2 * LINKS - 1, 2 * LINKS].contains(&states["host-shared"]),
        "{states:?}"
    );
    assert_eq!(states["host-twice"], LINKS);
    for n in 0..8 {
        assert_eq!(states[&format!("host-{n}")], LINKS);
    }
    assert_eq!(a.host_states().unwrap(), b.host_states().unwrap());
    let heads = a.chain_heads().unwrap();
    assert_eq!(heads.len(), 10);
    let last = link(8, 2 * LINKS);
    assert!(heads.contains(&StoredHead {
        key_id: key(8),
        sequence: 2 * LINKS,
        digest: last.digest,
        issued_at_ms: last.issued_at_ms,
    }));
    let changes = a.host_changes(i64::MAX).unwrap();
    assert_eq!(changes.len(), 12 * LINKS as usize);
    assert_eq!(a.host_gpus().unwrap().len(), 10 * 8);
}

fn add(total: &mut CommitReceipt, receipt: CommitReceipt) {
    total.stored += receipt.stored;
    total.repeated += receipt.repeated;
}

/// Measurements appended through two replicas at once, between their commits, keep the one
/// log: each gets an index of its own, and either replica reads them all back in log order.
#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn measurements_through_two_replicas_keep_one_log() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let schema = database.fresh_schema();
    let connect = || PostgresStore::connect(&database.url, Database::options(&schema)).unwrap();
    let (a, b) = (connect(), connect());
    let replicas: [&PostgresStore; 2] = [&a, &b];
    for (n, replica) in replicas.iter().enumerate() {
        replica
            .put_agent(&agent(n as u8, &format!("host-{n}")))
            .unwrap();
    }
    let start = Barrier::new(2);
    let appended: Vec<u64> = thread::scope(|scope| {
        let workers: Vec<_> = replicas
            .into_iter()
            .enumerate()
            .map(|(n, replica)| {
                let start = &start;
                scope.spawn(move || {
                    let (n, host) = (n as u8, format!("host-{n}"));
                    start.wait();
                    let mut indexes = Vec::new();
                    for sequence in 1..=10u64 {
                        let at = 1_000 * sequence as i64 + i64::from(n);
                        let link = attestation(n, sequence, &host, at);
                        replica.commit_blocking(batch(vec![link])).unwrap();
                        let measured = fixture::measurement(n, &host, at).unwrap();
                        indexes.push(
                            replica
                                .append_measurement(&host, at + 1, &measured)
                                .unwrap(),
                        );
                    }
                    indexes
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap())
            .collect()
    });
    let size = 2 + 2 * 20;
    assert_eq!(a.log_size().unwrap(), size);
    let mut appended = appended;
    appended.sort_unstable();
    appended.dedup();
    assert_eq!(
        appended.len(),
        20,
        "every measurement has an index of its own"
    );

    let measured = a.measurements(i64::MIN).unwrap();
    let indexes: Vec<u64> = measured.iter().map(|r| r.log_index).collect();
    assert_eq!(indexes, appended);
    assert_eq!(b.measurements(i64::MIN).unwrap(), measured);
    let records = b.log_records(0, usize::MAX).unwrap();
    for record in &measured {
        assert_eq!(records[record.log_index as usize], *record);
    }
    let tree = MemoryTree::from_leaves(records.iter().map(|r| leaf_hash(&r.entry)));
    assert_eq!(
        proto_merkle::root(&LogNodes(&a), size).unwrap(),
        tree.root()
    );
    assert_eq!(a.key_records(u64::MAX).unwrap().len(), 2);
}

#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn replicas_starting_together_apply_each_migration_once() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let schema = database.fresh_schema();
    let start = Barrier::new(4);
    let stores: Vec<PostgresStore> = thread::scope(|scope| {
        let starting: Vec<_> = (0..4)
            .map(|_| {
                let (start, schema, url) = (&start, &schema, &database.url);
                scope.spawn(move || {
                    start.wait();
                    PostgresStore::connect(url, Database::options(schema))
                })
            })
            .collect();
        starting
            .into_iter()
            .map(|s| s.join().unwrap().unwrap())
            .collect()
    });
    let rows = database.query(&format!("SELECT version FROM {schema}.schema_version"));
    let versions: Vec<i32> = rows.iter().map(|row| row.get(0)).collect();
    assert_eq!(versions, vec![PostgresStore::schema_version() as i32]);
    // All four work on the same tables.
    stores[0].put_agent(&agent(1, "host-a")).unwrap();
    assert_eq!(stores[3].agents().unwrap().len(), 1);
    assert_eq!(stores[2].schema(), schema);
}

#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn one_replica_at_a_time_leads_the_log_and_another_takes_over_when_it_dies() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let schema = database.fresh_schema();
    let first = PostgresStore::connect(&database.url, Database::options(&schema)).unwrap();
    let second = PostgresStore::connect(&database.url, Database::options(&schema)).unwrap();
    assert!(first.lead_log().unwrap(), "the first to ask leads");
    assert!(first.lead_log().unwrap(), "and keeps leading");
    assert!(!second.lead_log().unwrap(), "only one leads");
    // Another schema is another log, with its own leader.
    let other =
        PostgresStore::connect(&database.url, Database::options(&database.fresh_schema())).unwrap();
    assert!(other.lead_log().unwrap());
    // The leader dies: its session ends, and the next replica to ask takes over.
    drop(first);
    assert!(
        second.lead_log().unwrap(),
        "a replica takes over from a dead leader"
    );
}

/// The first schema version, as a database of that release holds it.
const VERSION_1: &str = include_str!("../src/migrations/0001_initial.sql");

/// The scripts that took version 1 to version 3, the last without hardware evidence.
const VERSION_3: [&str; 2] = [
    include_str!("../src/migrations/0002_ledger.sql"),
    include_str!("../src/migrations/0003_witness.sql"),
];

/// A `bytea` literal.
fn bytea(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("'\\x{hex}'::bytea")
}

/// A text literal (the fixtures hold no quotes).
fn text(value: &str) -> String {
    assert!(!value.contains('\''));
    format!("'{value}'")
}

/// The rows an older schema holds for `a1`, attested and its host's state: its inventory
/// (with each GPU's counted flag when the schema has it, `counted`), the attestation, its chain
/// head, the host's state, GPUs and change. Log index 4: after the enrolments.
fn attested_rows(a1: &AcceptedAttestation, counted: bool) -> String {
    let list = |field: fn(&collector_store::Gpu) -> String| -> String {
        let items: Vec<String> = a1.gpus.iter().map(field).collect();
        format!("ARRAY[{}]", items.join(", "))
    };
    let counted_column = if counted { ", counted" } else { "" };
    let counted_list = if counted {
        format!(", {}::boolean[]", list(|g| g.counted.to_string()))
    } else {
        String::new()
    };
    let hash = bytea(&[0x11; 32]);
    let inventory = format!("(SELECT id FROM inventories WHERE hash = {hash})");
    let mut sql = format!(
        "INSERT INTO inventories (hash, uuids, serials, catalogue_ids, tpps{counted_column})
         VALUES ({hash}, {}, {}, {}, {}::bigint[]{counted_list});\n",
        list(|g| text(&g.uuid)),
        list(|g| text(&g.serial)),
        list(|g| text(&g.catalogue_id)),
        list(|g| g.tpp.to_string()),
    );
    sql += &format!(
        "INSERT INTO attestations (key_id, sequence, digest, previous_digest, host_id, site_id,
             country, issued_at_ms, received_at_ms, tpp, devices, simulated, gap_before, fresh,
             inventory_id, envelope, log_index)
         VALUES ({}, 1, {}, {}, {}, {}, {}, {}, {}, {}, 8, false, 0, false,
             {inventory}, {}, 4);
         INSERT INTO chain_heads (key_id, sequence, digest) VALUES ({}, 1, {});
         INSERT INTO host_state (host_id, site_id, country, key_id, last_sequence, last_digest,
             last_issued_at_ms, last_received_at_ms, tpp, devices, inventory_id)
         VALUES ({}, {}, {}, {}, 1, {}, {}, {}, {}, 8, {inventory});
         INSERT INTO host_changes (at_ms, host_id, site_id, country, tpp, devices, kind)
         VALUES ({}, {}, {}, {}, {}, 8, 'attested');\n",
        bytea(a1.key_id.0.as_bytes()),
        bytea(a1.digest.0.as_bytes()),
        bytea(a1.previous_digest.0.as_bytes()),
        text(&a1.host_id.0),
        text(&a1.site_id.0),
        text(&a1.country),
        a1.issued_at_ms,
        a1.received_at_ms,
        a1.tpp,
        bytea(&a1.envelope),
        bytea(a1.key_id.0.as_bytes()),
        bytea(a1.digest.0.as_bytes()),
        text(&a1.host_id.0),
        text(&a1.site_id.0),
        text(&a1.country),
        bytea(a1.key_id.0.as_bytes()),
        bytea(a1.digest.0.as_bytes()),
        a1.issued_at_ms,
        a1.received_at_ms,
        a1.tpp,
        a1.issued_at_ms,
        text(&a1.host_id.0),
        text(&a1.site_id.0),
        text(&a1.country),
        a1.tpp,
    );
    for (position, gpu) in a1.gpus.iter().enumerate() {
        sql += &format!(
            "INSERT INTO gpus (host_id, position, uuid, serial, catalogue_id, tpp{counted_column})
             VALUES ({}, {position}, {}, {}, {}, {}{});\n",
            text(&a1.host_id.0),
            text(&gpu.uuid),
            text(&gpu.serial),
            text(&gpu.catalogue_id),
            gpu.tpp,
            if counted {
                format!(", {}", gpu.counted)
            } else {
                String::new()
            },
        );
    }
    sql
}

/// A database of version 1 (host states only for hosts that attested, GPUs without the counted
/// flag, two kinds of host change) is brought to the current version: every enrolled host gets
/// its state, everything stored before counts, and the ledger's writes work on it.
#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn a_schema_of_version_1_migrates_with_every_enrolled_host() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let schema = database.fresh_schema();
    let a1 = attestation(1, 1, "host-a", 1_000);
    // host-c was enrolled twice under version 1 (which allowed it) and never attested.
    let agents = [
        agent(1, "host-a"),
        agent(2, "host-b"),
        agent(3, "host-c"),
        agent(4, "host-c"),
    ];
    let mut sql = format!(
        "CREATE SCHEMA {schema}; BEGIN; SET LOCAL search_path TO {schema};
         {VERSION_1}
         CREATE TABLE schema_version (version integer NOT NULL);
         INSERT INTO schema_version (version) VALUES (1);\n"
    );
    for agent in &agents {
        sql += &format!(
            "INSERT INTO agents (key_id, public_key, host_id, site_id, country, identity,
                 enrolled_at_ms) VALUES ({}, {}, {}, {}, {}, {}, {});\n",
            bytea(agent.key_id.0.as_bytes()),
            bytea(&agent.public_key),
            text(&agent.host_id.0),
            text(&agent.site_id.0),
            text(&agent.country),
            text(&agent.identity),
            agent.enrolled_at_ms,
        );
    }
    sql += &attested_rows(&a1, false);
    sql += "COMMIT;";
    database.execute(&sql);

    let store = PostgresStore::connect(&database.url, Database::options(&schema)).unwrap();
    let rows = database.query(&format!("SELECT version FROM {schema}.schema_version"));
    assert_eq!(
        rows[0].get::<_, i32>(0),
        PostgresStore::schema_version() as i32
    );
    // Every enrolled host has its state; a host enrolled twice takes its first key.
    assert_eq!(
        store.host_states().unwrap(),
        vec![
            state_of(&a1, None),
            enrolled_state(&agents[1]),
            enrolled_state(&agents[2])
        ]
    );
    // What was stored counted.
    let owned: Vec<(String, collector_store::Gpu)> = a1
        .gpus
        .iter()
        .map(|gpu| ("host-a".to_owned(), gpu.clone()))
        .collect();
    assert_eq!(store.host_gpus().unwrap(), owned);
    let stored = store.attestations(i64::MIN, i64::MAX, None, 10).unwrap();
    assert_eq!(fixture::unindexed(stored), vec![a1.clone()]);
    assert_eq!(
        store.chain_heads().unwrap(),
        vec![StoredHead {
            key_id: key(1),
            sequence: 1,
            digest: a1.digest,
            issued_at_ms: a1.issued_at_ms,
        }]
    );
    let first = HostChange {
        at_ms: a1.issued_at_ms,
        host_id: a1.host_id.clone(),
        site_id: a1.site_id.clone(),
        country: a1.country.clone(),
        tpp: a1.tpp,
        devices: 8,
        decommissioned: false,
        // Stored before hardware evidence was kept.
        hardware_tpp: 0,
    };
    assert_eq!(store.host_changes(i64::MAX).unwrap(), vec![first.clone()]);

    // The ledger's writes work on the migrated rows.
    assert!(matches!(
        store.put_agent(&agent(5, "host-b")),
        Err(StoreError::AlreadyEnrolled { .. })
    ));
    let mut moved = agent(6, "host-c");
    moved.enrolled_at_ms = 6_000;
    store.rebind_host(&moved, None).unwrap();
    for n in [3, 4] {
        assert_eq!(
            store.agent(&key(n)).unwrap().unwrap().revoked_at_ms,
            Some(6_000)
        );
    }
    assert!(store.decommission("host-a", 7_000).unwrap());
    let released = store.host_gpus().unwrap();
    assert_eq!(released.len(), 8);
    assert!(released.iter().all(|(_, gpu)| !gpu.counted));
    let changes = store.host_changes(i64::MAX).unwrap();
    assert_eq!(changes.len(), 2);
    assert!(changes[1].decommissioned && changes[1].tpp == 0);
    // The old inventory is unchanged; the released list is a row of its own.
    assert_eq!(
        fixture::unindexed(store.attestations(i64::MIN, i64::MAX, None, 10).unwrap()),
        vec![a1]
    );
}

/// A database of version 3 (GPUs, inventories and host changes without hardware evidence) is
/// brought to the current version: what it held reads back without hardware evidence, and the
/// host takes evidence on from its next attestation.
#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn a_schema_of_version_3_migrates_without_hardware_evidence() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let schema = database.fresh_schema();
    let enrolled = agent(1, "host-a");
    let mut a1 = attestation(1, 1, "host-a", 1_000);
    a1.gpus[5].counted = false;
    let [ledger, witness] = VERSION_3;
    let mut sql = format!(
        "CREATE SCHEMA {schema}; BEGIN; SET LOCAL search_path TO {schema};
         {VERSION_1}
         {ledger}
         {witness}
         CREATE TABLE schema_version (version integer NOT NULL);
         INSERT INTO schema_version (version) VALUES (3);
         INSERT INTO agents (key_id, public_key, host_id, site_id, country, identity,
             enrolled_at_ms) VALUES ({}, {}, {}, {}, {}, {}, {});\n",
        bytea(enrolled.key_id.0.as_bytes()),
        bytea(&enrolled.public_key),
        text(&enrolled.host_id.0),
        text(&enrolled.site_id.0),
        text(&enrolled.country),
        text(&enrolled.identity),
        enrolled.enrolled_at_ms,
    );
    sql += &attested_rows(&a1, true);
    sql += "COMMIT;";
    database.execute(&sql);

    let store = PostgresStore::connect(&database.url, Database::options(&schema)).unwrap();
    // The fixture's GPUs have no hardware evidence: exactly what the defaults read back as.
    assert!(
        a1.gpus
            .iter()
            .all(|g| g.hardware.is_empty() && g.hardware_at_ms == 0)
    );
    let held = |gpus: &[collector_store::Gpu]| -> Vec<(String, collector_store::Gpu)> {
        gpus.iter()
            .map(|g| ("host-a".to_owned(), g.clone()))
            .collect()
    };
    assert_eq!(store.host_gpus().unwrap(), held(&a1.gpus));
    assert_eq!(
        fixture::unindexed(store.host_history("host-a", 0, i64::MAX, 10).unwrap()),
        vec![a1.clone()]
    );
    let changes = store.host_changes(i64::MAX).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0].tpp, changes[0].hardware_tpp), (a1.tpp, 0));

    // The next attestation proves its GPUs' hardware; the old one keeps its list.
    let mut a2 = attestation(1, 2, "host-a", 2_000);
    a2.gpus = (0..8)
        .map(|i| fixture::attested_gpu("host-a", i, 1_900))
        .collect();
    store.commit_blocking(batch(vec![a2.clone()])).unwrap();
    assert_eq!(store.host_gpus().unwrap(), held(&a2.gpus));
    assert_eq!(
        fixture::unindexed(store.host_history("host-a", 0, i64::MAX, 10).unwrap()),
        vec![a1, a2.clone()]
    );
    let changes = store.host_changes(i64::MAX).unwrap();
    assert_eq!(changes[1].hardware_tpp, fixture::hardware_tpp(&a2.gpus));
    assert_eq!(changes[1].hardware_tpp, a2.tpp);
    // Decommissioning keeps the identities of the released GPUs.
    assert!(store.decommission("host-a", 3_000).unwrap());
    let released: Vec<collector_store::Gpu> = a2
        .gpus
        .iter()
        .map(|g| collector_store::Gpu {
            counted: false,
            ..g.clone()
        })
        .collect();
    assert_eq!(store.host_gpus().unwrap(), held(&released));
}

#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn a_schema_from_a_newer_build_is_refused() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let schema = database.fresh_schema();
    drop(PostgresStore::connect(&database.url, Database::options(&schema)).unwrap());
    database.execute(&format!("UPDATE {schema}.schema_version SET version = 99"));
    match PostgresStore::connect(&database.url, Database::options(&schema)) {
        Err(StoreError::SchemaTooNew { found: 99, known }) => {
            assert_eq!(known, PostgresStore::schema_version());
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn async_callers_on_a_multi_threaded_runtime() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let store = std::sync::Arc::new(database.fresh_store(PostgresOptions::default()));
    store.put_agent(&agent(1, "host-a")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        // As the server does: commits made in the ledger's order, many in flight at once,
        // awaited on the runtime in any order. Each is queued when `commit` is called, so the
        // host ends at the last one.
        let tasks: Vec<_> = (1..=40u64)
            .map(|sequence| {
                let commit = store.commit(batch(vec![attestation(
                    1,
                    sequence,
                    "host-a",
                    sequence as i64,
                )]));
                tokio::spawn(commit)
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().stored, 1);
        }
        // A blocking read on a runtime thread is slow, never a panic.
        assert_eq!(store.log_size().unwrap(), 41);
        let reader = std::sync::Arc::clone(&store);
        let states = tokio::task::spawn_blocking(move || reader.host_states())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(states[0].last_sequence, 40);
    });
    assert!(store.stats().groups <= 40);
    // The last reference dropped inside the runtime: the store shuts down cleanly there too.
    runtime.block_on(async move { drop(store) });
}

#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn a_value_postgres_refuses_fails_only_its_batch() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let store = database.fresh_store(PostgresOptions::default());
    for n in 1..=8 {
        store.put_agent(&agent(n, &format!("host-{n}"))).unwrap();
    }
    // PostgreSQL's text cannot hold NUL; SQLite's can. Such a batch fails with the server's
    // error; batches committed in the same group still commit.
    let start = Barrier::new(8);
    let results: Vec<Result<CommitReceipt, StoreError>> = thread::scope(|scope| {
        let committers: Vec<_> = (1..=8u8)
            .map(|n| {
                let (start, store) = (&start, &store);
                scope.spawn(move || {
                    let mut batch = batch(vec![attestation(n, 1, &format!("host-{n}"), 1_000)]);
                    match n {
                        3 => batch.attestations[0].host_id = HostId("host\0three".to_owned()),
                        5 => batch
                            .events
                            .push(fixture::event(1_000, "gap", "nul\0detail")),
                        _ => {}
                    }
                    start.wait();
                    store.commit_blocking(batch)
                })
            })
            .collect();
        committers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for (n, result) in (1..=8).zip(&results) {
        match (n, result) {
            (3 | 5, Err(StoreError::Backend(_))) => {}
            (3 | 5, other) => panic!("batch {n} got {other:?}"),
            (_, Ok(receipt)) => assert_eq!(receipt.stored, 1),
            (_, Err(error)) => panic!("batch {n} failed: {error}"),
        }
    }
    assert_eq!(
        store
            .attestations(i64::MIN, i64::MAX, None, 100)
            .unwrap()
            .len(),
        6
    );
    assert!(store.events(i64::MIN, 10).unwrap().is_empty());
    // Enrolments plus the six stored attestations, without a hole.
    assert_eq!(store.log_size().unwrap(), 8 + 6);
    let records = store.log_records(0, usize::MAX).unwrap();
    let tree = MemoryTree::from_leaves(records.iter().map(|r| leaf_hash(&r.entry)));
    assert_eq!(
        proto_merkle::root(&LogNodes(&store), 14).unwrap(),
        tree.root()
    );
    eprintln!("writer: {:?}", store.stats());
    // A later commit on the same connection works.
    let later = Batch {
        attestations: vec![attestation(3, 1, "host-3", 2_000)],
        ..Batch::default()
    };
    assert_eq!(store.commit_blocking(later).unwrap().stored, 1);
}

/// The URL with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn sslmode_require_encrypts_the_connections() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let ssl: String = database.query("SHOW ssl")[0].get(0);
    if ssl != "on" {
        eprintln!("not run: the test server does not offer TLS (ssl = {ssl})");
        return;
    }
    let schema = database.fresh_schema();
    let url = with_param(
        &with_param(&database.url, "sslmode=require"),
        &format!("application_name={schema}"),
    );
    let store = PostgresStore::connect(&url, Database::options(&schema)).unwrap();
    store.put_agent(&agent(1, "host-a")).unwrap();
    assert_eq!(store.agents().unwrap().len(), 1);
    let rows = database.query(&format!(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid
         WHERE a.application_name = '{schema}'"
    ));
    let encrypted: Vec<bool> = rows.iter().map(|row| row.get(0)).collect();
    // The writer and at least one reader, all over TLS.
    assert!(encrypted.len() >= 2, "{encrypted:?}");
    assert!(encrypted.iter().all(|&ssl| ssl), "{encrypted:?}");
}

#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn sslmode_verify_full_refuses_a_server_of_another_ca() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let ssl: String = database.query("SHOW ssl")[0].get(0);
    if ssl != "on" {
        eprintln!("not run: the test server does not offer TLS (ssl = {ssl})");
        return;
    }
    let dir = std::env::temp_dir().join(format!("veu-pg-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("other-ca.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(&ca, params.self_signed(&key).unwrap().pem()).unwrap();
    let url = with_param(
        &database.url,
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let result = PostgresStore::connect(&url, Database::options(&database.fresh_schema()));
    std::fs::remove_dir_all(&dir).unwrap();
    match result {
        Err(StoreError::Backend(error)) => {
            let message = format!("{error:#}");
            eprintln!("refused as it should be: {message}");
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

/// `sslmode=verify-full` against a real server needs a certificate naming the server, which
/// the default test server may not have: this runs when `VEU_TEST_POSTGRES_TLS_URL` names one
/// (e.g. Debian's snakeoil certificate, issued for `localhost`:
/// `postgres://postgres@localhost:5432/test?sslmode=verify-full&sslrootcert=/etc/ssl/certs/ssl-cert-snakeoil.pem`).
#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn sslmode_verify_full_connects_to_the_named_server() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let Ok(url) = std::env::var("VEU_TEST_POSTGRES_TLS_URL") else {
        eprintln!("not run: VEU_TEST_POSTGRES_TLS_URL is unset");
        return;
    };
    let store = PostgresStore::connect(&url, Database::options(&database.fresh_schema())).unwrap();
    store.put_agent(&agent(1, "host-a")).unwrap();
    assert_eq!(store.agents().unwrap().len(), 1);
}

/// Throughput of group commit, like the SQLite store's `throughput` test: committers each
/// sending one 8-GPU attestation per commit for three seconds, through `replicas` stores on one
/// schema. `cargo test -p collector-store-postgres --release --test replicas -- --ignored
/// --nocapture throughput` (`VEU_PG_COMMITTERS`, `VEU_PG_REPLICAS` change the counts).
#[test]
#[ignore = "a measurement, not a check"]
fn throughput() {
    let Some(database) = Database::from_env() else {
        return;
    };
    let number = |name: &str, default: u8| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let committers = number("VEU_PG_COMMITTERS", 32);
    let replicas = number("VEU_PG_REPLICAS", 1).max(1);
    let schema = database.fresh_schema();
    let stores: Vec<PostgresStore> = (0..replicas)
        .map(|_| PostgresStore::connect(&database.url, Database::options(&schema)).unwrap())
        .collect();
    for n in 0..committers {
        stores[0]
            .put_agent(&agent(n, &format!("host-{n}")))
            .unwrap();
    }
    let before = stores[0].size_bytes().unwrap();
    let seconds = std::time::Duration::from_secs(3);
    let started = std::time::Instant::now();
    let total: u64 = thread::scope(|scope| {
        let threads: Vec<_> = (0..committers)
            .map(|n| {
                let store = &stores[usize::from(n % replicas)];
                scope.spawn(move || {
                    let mut sequence = 0;
                    while started.elapsed() < seconds {
                        sequence += 1;
                        let a = attestation(n, sequence, &format!("host-{n}"), sequence as i64);
                        store.commit_blocking(batch(vec![a])).unwrap();
                    }
                    sequence
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let groups: u64 = stores.iter().map(|s| s.stats().groups).sum();
    let size = stores[0].size_bytes().unwrap() - before;
    eprintln!(
        "{committers} committers, {replicas} replica(s): {total} attestations in {elapsed:.2} s: \
         {:.0}/s, {groups} group commits ({:.1} per group), {size} bytes ({:.0} per attestation)",
        total as f64 / elapsed,
        total as f64 / groups as f64,
        size as f64 / total as f64,
    );
}
