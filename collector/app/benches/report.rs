//! The monthly report over a month of history for 10,000 hosts: how long the collector takes
//! to read the history, build the report and render it, measured on a real SQLite store.
//!
//! Run: `cargo bench -p collector-app --bench report` (release). Setup (writing the store)
//! is not timed; the last line gives the figures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use collector_app::log::LogKeeper;
use collector_app::metrics::Metrics;
use collector_app::nonce::NonceIssuer;
use collector_app::{Collector, Rules};
use collector_core::SiteRegistry;
use collector_store::{AcceptedAttestation, AgentRecord, AttestationStore, Batch, Event, Gpu};
use collector_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use proto_accounting::{Catalogue, Policy};
use proto_evidence::{ChainDigest, HostId, KeyId, Sha256, SiteId};
use proto_seal::Ed25519Signer;

const HOSTS: u32 = 10_000;
/// Attestations per host in the month: one every three days (the report reads state changes,
/// not every attestation; more attestations only grow the store).
const PER_HOST: u32 = 10;
const DAY: i64 = 86_400_000;
/// 2026-11-01T00:00:00Z.
const NOV: i64 = 1_793_491_200_000;
const SITES: [(&str, &str); 6] = [
    ("us-va-1", "US"),
    ("us-tx-1", "US"),
    ("de-fra-1", "DE"),
    ("gb-lon-1", "GB"),
    ("my-jhb-1", "MY"),
    ("in-mum-1", "IN"),
];

static CLOCK: AtomicI64 = AtomicI64::new(NOV);

fn clock() -> i64 {
    CLOCK.load(Ordering::Relaxed)
}

fn key(n: u32) -> [u8; 32] {
    let mut key = [0xb0; 32];
    key[..4].copy_from_slice(&n.to_be_bytes());
    key
}

fn site(n: u32) -> (&'static str, &'static str) {
    // Most compute in the US and Tier-1 Europe, a few percent in two Tier-2 countries.
    let pick = match n % 100 {
        0..=54 => 0,
        55..=79 => 1,
        80..=89 => 2,
        90..=94 => 3,
        95..=97 => 4,
        _ => 5,
    };
    SITES[pick]
}

fn attestation(n: u32, sequence: u64, at_ms: i64, gpus: usize) -> AcceptedAttestation {
    let (site, country) = site(n);
    let gpus: Vec<Gpu> = (0..gpus)
        .map(|i| Gpu {
            uuid: format!("GPU-{n}-{i}"),
            serial: format!("SN-{n}-{i}"),
            catalogue_id: "H100-SXM5-80GB".into(),
            tpp: 15_840,
            counted: true,
            hardware: String::new(),
            hardware_at_ms: 0,
        })
        .collect();
    let mut digest = [0u8; 32];
    digest[..4].copy_from_slice(&n.to_be_bytes());
    digest[4..12].copy_from_slice(&sequence.to_be_bytes());
    AcceptedAttestation {
        key_id: KeyId(Sha256::from_bytes(key(n))),
        sequence,
        digest: ChainDigest(Sha256::from_bytes(digest)),
        previous_digest: ChainDigest::GENESIS,
        host_id: HostId(format!("gpu-{n:05}")),
        site_id: SiteId(site.into()),
        country: country.into(),
        issued_at_ms: at_ms - 30,
        received_at_ms: at_ms,
        tpp: 15_840 * gpus.len() as u64,
        devices: gpus.len() as u32,
        simulated: true,
        gap_before: 0,
        fresh: true,
        envelope: vec![(n % 251) as u8; 512],
        gpus,
        log_index: None,
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collector.db");
    let store = SqliteStore::open(
        &path,
        SqliteOptions {
            synchronous: Synchronous::Normal,
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    let setup = Instant::now();
    eprintln!("report: writing a month of history for {HOSTS} hosts …");
    for n in 0..HOSTS {
        let (site, country) = site(n);
        store
            .put_agent(&AgentRecord {
                key_id: KeyId(Sha256::from_bytes(key(n))),
                public_key: key(n),
                host_id: HostId(format!("gpu-{n:05}")),
                site_id: SiteId(site.into()),
                country: country.into(),
                identity: format!("urn:veu:agent:gpu-{n:05}"),
                enrolled_at_ms: NOV - 10 * DAY,
                revoked_at_ms: None,
            })
            .unwrap();
    }
    let store: Arc<dyn AttestationStore> = Arc::new(store);
    let log = Arc::new(
        LogKeeper::new(
            Arc::clone(&store),
            Ed25519Signer::from_seed(&[5; 32]).unwrap(),
            None,
            clock,
        )
        .unwrap(),
    );
    // The month's first attestations land before it; a head is signed then.
    let mut commits = Vec::new();
    for round in 0..=PER_HOST {
        let at = NOV - DAY + i64::from(round) * 3 * DAY;
        let batch: Vec<AcceptedAttestation> = (0..HOSTS)
            .map(|n| {
                // A fifth of the hosts change inventory in the middle of the month, and one
                // host in a hundred is silent for its last week.
                let gpus = if n % 5 == 0 && round >= PER_HOST / 2 {
                    4
                } else {
                    8
                };
                attestation(n, u64::from(round) + 1, at + i64::from(n), gpus)
            })
            .filter(|a| !(a.key_id.0.as_bytes()[3] % 100 == 7 && round + 2 > PER_HOST))
            .collect();
        for chunk in batch.chunks(1_000) {
            // The ledger's updates: a change where what counts changed (the first round, and
            // the inventory changes in the middle of the month).
            let mut hosts = collector_store::conformance::fixture::updates(chunk);
            for (update, a) in hosts.iter_mut().zip(chunk) {
                let changed = round == 0 || (a.devices == 4 && round == PER_HOST / 2);
                if !changed {
                    update.change = None;
                }
            }
            commits.push(store.commit(Batch {
                attestations: chunk.to_vec(),
                hosts,
                events: if round == 3 {
                    vec![Event {
                        at_ms: at,
                        kind: "gap".into(),
                        host_id: Some(chunk[0].host_id.clone()),
                        key_id: Some(chunk[0].key_id),
                        detail: "2 attestation(s) missing before sequence 4".into(),
                        value: Some(2),
                    }]
                } else {
                    Vec::new()
                },
                rejections: Vec::new(),
            }));
        }
        for commit in commits.drain(..) {
            commit.wait().unwrap();
        }
        if round == 0 {
            CLOCK.store(NOV - DAY / 2, Ordering::Relaxed);
            log.sign().unwrap();
        }
    }
    CLOCK.store(NOV + 30 * DAY + 60_000, Ordering::Relaxed);
    log.sign().unwrap();
    let changes = store.host_changes(i64::MAX).unwrap().len();
    let leaves = store.log_size().unwrap();
    eprintln!(
        "report: {} attestations, {changes} host changes, {leaves} log leaves written in {:.1} s",
        HOSTS * (PER_HOST + 1),
        setup.elapsed().as_secs_f64()
    );

    let policy_toml = include_str!("../../../deploy/policies/uveu-2025-us-simulated.toml");
    let sites = SITES
        .iter()
        .map(|(id, country)| format!("[[site]]\nid = \"{id}\"\ncountry = \"{country}\"\n"))
        .collect::<String>();
    let collector = Collector::open(
        Arc::clone(&store),
        Rules {
            catalogue: Catalogue::builtin().unwrap(),
            policy: Policy::from_toml(policy_toml).unwrap(),
            policy_toml: policy_toml.into(),
            catalogue_toml: proto_accounting::catalogue::BUILTIN_TOML.into(),
            sites: SiteRegistry::from_toml(&sites).unwrap(),
            max_future_skew_ms: 300_000,
            max_backlog_ms: 30 * DAY,
        },
        NonceIssuer::new(&[1; 32], 300_000),
        Arc::new(Metrics::new()),
        180_000,
        clock,
    )
    .unwrap();

    let mut runs = Vec::new();
    let mut sizes = (0, 0, 0);
    for _ in 0..3 {
        let started = Instant::now();
        let report = collector_app::report::build(&collector, &log, "2026-11").unwrap();
        let built = started.elapsed().as_secs_f64();
        let json = report.to_json();
        let csv = report.to_csv();
        let html = report.to_html();
        let total = started.elapsed().as_secs_f64();
        sizes = (json.len(), csv.len(), html.len());
        runs.push((built, total));
    }
    runs.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (built, total) = runs[runs.len() / 2];
    eprintln!(
        "report: json {} KiB, csv {} KiB, html {} KiB",
        sizes.0 / 1024,
        sizes.1 / 1024,
        sizes.2 / 1024
    );
    println!(
        "report: month of {HOSTS} hosts ({changes} state changes, {leaves} log leaves): {total:.2} s median of 3 (read and build {built:.2} s, render {:.2} s)",
        total - built
    );
}
