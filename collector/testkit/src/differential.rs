//! The differential, model-based check of the books: random sequences of enrolments (honest
//! and hostile), re-bindings, revocations, decommissionings, attestations with varied clocks,
//! chains and GPU lists (moved, re-spelled, repeated), clock jumps and restarts, driven through
//! the real collector application (`Collector::ingest`, `enrol`, `revoke`, `decommission`) on a
//! real store. After every step four answers to "where is the compute" must agree exactly:
//! the live view, the audit replay of the stored host changes, the offline verifier's replay
//! of the log (`collector_bundle::replay`), and the books a restart loads from the store.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;

use collector_app::ingest::{AdminError, Unreadable};
use collector_app::metrics::Metrics;
use collector_app::nonce::NonceIssuer;
use collector_app::{Collector, Outcome, Rules};
use collector_core::SiteRegistry;
use collector_store::{AgentRecord, AttestationStore, HostId, SiteId};
use proto_accounting::{Catalogue, Distribution, Policy};
use proto_evidence::{ChainDigest, DeviceRecord, Envelope, LogEntry};

use crate::h100 as gpu;
use proto_seal::Ed25519Signer;

const SITES: [(&str, &str); 4] = [
    ("us-va-1", "US"),
    ("my-1", "MY"),
    ("de-1", "DE"),
    ("in-1", "IN"),
];
const FRESHNESS_MS: i64 = 180_000;

thread_local! {
    static CLOCK: Cell<i64> = const { Cell::new(0) };
}

/// The collector's clock in a differential run (each run is on one thread).
fn clock() -> i64 {
    CLOCK.with(Cell::get)
}

/// A deterministic generator.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One signing key and where its chain stands, as its agent sees it.
struct Actor {
    index: u32,
    signer: Ed25519Signer,
    host: String,
    site: String,
    sequence: u64,
    previous: ChainDigest,
    last: Option<Envelope>,
    last_issued: i64,
    enrolled_at: i64,
}

/// What one sequence did, for the test's own assertions.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Steps run.
    pub steps: usize,
    /// Attestations acknowledged.
    pub acked: usize,
    /// Attestations refused.
    pub refused: usize,
    /// Enrolments or re-bindings refused.
    pub enrolments_refused: usize,
    /// Restarts.
    pub restarts: usize,
}

/// The rules a differential collector runs with (the simulated-evidence policy).
fn rules() -> Rules {
    let policy_toml = include_str!("../../../deploy/policies/uveu-2025-us-simulated.toml");
    let sites: String = SITES
        .iter()
        .map(|(id, country)| format!("[[site]]\nid = \"{id}\"\ncountry = \"{country}\"\n"))
        .collect();
    Rules {
        catalogue: Catalogue::builtin().unwrap(),
        policy: Policy::from_toml(policy_toml).unwrap(),
        policy_toml: policy_toml.to_owned(),
        catalogue_toml: proto_accounting::catalogue::BUILTIN_TOML.to_owned(),
        sites: SiteRegistry::from_toml(&sites).unwrap(),
        max_future_skew_ms: 300_000,
        max_backlog_ms: 30 * 86_400_000,
    }
}

fn open(store: &Arc<dyn AttestationStore>) -> Collector {
    Collector::open(
        Arc::clone(store),
        rules(),
        NonceIssuer::new(&[42; 32], 300_000),
        Arc::new(Metrics::new()),
        FRESHNESS_MS,
        clock,
    )
    .unwrap()
}

/// Runs one random sequence of `steps` on `store` (empty), checking after every step.
/// Panics with the seed and step on the first disagreement. Call it from a plain thread: the
/// administrative calls block on the store, as they do on the server's blocking threads, and
/// only ingest runs on a (current-thread) runtime.
pub fn run(store: Arc<dyn AttestationStore>, seed: u64, steps: usize) -> Tally {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    CLOCK.with(|c| c.set(1_790_000_000_000 + (seed % 1_000) as i64 * 3_600_000));
    let mut random = Random(seed);
    let mut collector = open(&store);
    let mut actors: Vec<Actor> = Vec::new();
    let mut tally = Tally::default();
    let mut next_key: u32 = 0;
    for step in 0..steps {
        tally.steps += 1;
        let hosts: Vec<String> = {
            let mut hosts: Vec<String> = actors.iter().map(|a| a.host.clone()).collect();
            hosts.sort();
            hosts.dedup();
            hosts
        };
        match random.below(100) {
            // Enrol a new host, or try to take over an existing one with a fresh key.
            0..=11 => {
                next_key += 1;
                let signer = key(seed, next_key);
                let (site, country) = SITES[random.below(SITES.len())];
                let takeover = !hosts.is_empty() && random.chance(30);
                let host = if takeover {
                    hosts[random.below(hosts.len())].clone()
                } else {
                    format!("h{}", next_key)
                };
                let record = record(&signer, &host, site, country);
                match collector.enrol(&record, false) {
                    Ok(()) => {
                        assert!(!takeover, "seed {seed} step {step}: {host} taken over");
                        actors.push(actor(next_key, signer, &host, site));
                    }
                    Err(AdminError::Enrol(_)) => {
                        assert!(takeover, "seed {seed} step {step}: new host {host} refused");
                        tally.enrolments_refused += 1;
                    }
                    Err(other) => panic!("seed {seed} step {step}: {other}"),
                }
            }
            // Re-bind a host (moved or re-keyed), or re-enrol a known (perhaps revoked) key.
            12..=17 if !actors.is_empty() => {
                let reuse = random.chance(30);
                let target = &actors[random.below(actors.len())];
                let host = target.host.clone();
                let (site, country) = SITES[random.below(SITES.len())];
                let index = if reuse {
                    target.index
                } else {
                    next_key += 1;
                    next_key
                };
                let signer = key(seed, index);
                let record = record(&signer, &host, site, country);
                match collector.enrol(&record, true) {
                    Ok(()) => {
                        assert!(!reuse, "seed {seed} step {step}: a known key re-bound");
                        actors.push(actor(index, signer, &host, site));
                    }
                    Err(AdminError::Enrol(_)) => {
                        assert!(reuse, "seed {seed} step {step}: re-binding {host} refused");
                        tally.enrolments_refused += 1;
                    }
                    Err(other) => panic!("seed {seed} step {step}: {other}"),
                }
            }
            18..=22 if !actors.is_empty() => {
                let target = &actors[random.below(actors.len())];
                match collector.revoke(&target.signer.key_id(), clock()) {
                    Ok(()) | Err(AdminError::Refused(_)) => {}
                    Err(other) => panic!("seed {seed} step {step}: {other}"),
                }
            }
            23..=26 if !hosts.is_empty() => {
                let host = &hosts[random.below(hosts.len())];
                match collector.decommission(host, clock()) {
                    Ok(()) | Err(AdminError::Refused(_)) => {}
                    Err(other) => panic!("seed {seed} step {step}: {other}"),
                }
            }
            27..=33 => advance(random.below(400_000) as i64 + 1),
            34..=37 => {
                collector = open(&store);
                tally.restarts += 1;
            }
            _ if !actors.is_empty() => {
                let index = random.below(actors.len());
                let donors: Vec<(String, usize)> = actors
                    .iter()
                    .filter(|a| a.host != actors[index].host)
                    .map(|a| (a.host.clone(), random_index(&a.host)))
                    .collect();
                let envelope = attestation(&mut random, &mut actors[index], &donors);
                let peer = format!("urn:veu:agent:{}", actors[index].host);
                let outcome = runtime
                    .block_on(collector.ingest(&peer, vec![wire(&envelope)]))
                    .unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
                match outcome.first() {
                    Some(Outcome::Ack { sequence, .. }) => {
                        tally.acked += 1;
                        let actor = &mut actors[index];
                        if *sequence > actor.sequence {
                            let payload = proto_seal::decode_payload_unverified(&envelope).unwrap();
                            actor.sequence = *sequence;
                            actor.previous = envelope.chain_digest();
                            actor.last_issued = payload.issued_at_unix_ms;
                            actor.last = Some(envelope);
                        }
                    }
                    Some(Outcome::Reject { .. }) => tally.refused += 1,
                    None => panic!("seed {seed} step {step}: no outcome"),
                }
                advance(random.below(5_000) as i64 + 1);
            }
            _ => advance(1),
        }
        check(&store, &collector, seed, step);
    }
    tally
}

/// The four answers agree, and the log replays without a refusal.
fn check(store: &Arc<dyn AttestationStore>, collector: &Collector, seed: u64, step: usize) {
    let at = format!("seed {seed} step {step}");
    let (live, hosts, keys) = {
        let state = collector.state();
        (
            state.ledger.distribution().clone(),
            state
                .ledger
                .hosts()
                .map(|(h, r)| (h.clone(), r.clone()))
                .collect::<Vec<_>>(),
            sorted_keys(&state.ledger),
        )
    };

    // The audit replay of the stored host changes, as `audit distribution` computes it.
    let changes = store.host_changes(clock().saturating_add(1)).unwrap();
    let mut audited = Distribution::new();
    for change in collector_app::distribution::replay(&changes).values() {
        audited
            .add(change.country.parse().unwrap(), change.tpp)
            .unwrap();
    }
    assert_eq!(audited, live, "{at}: audit replay vs live view");

    // The offline verifier's replay of the log.
    let records = store.log_records(0, usize::MAX).unwrap();
    let entries: Vec<(u64, LogEntry, Option<Vec<u8>>)> = records
        .into_iter()
        .map(|r| (r.log_index, LogEntry::decode(&r.entry).unwrap(), r.envelope))
        .collect();
    let rules = rules();
    let replayed = collector_bundle::replay(
        entries.iter().map(|(i, e, v)| (*i, e, v.as_deref())),
        Some((&rules.policy, &rules.catalogue)),
        &proto_gpu_evidence::Trust::nvidia(),
        None,
    );
    assert!(
        replayed.failures.is_empty(),
        "{at}: the verifier refuses accepted evidence: {:?}",
        replayed.failures
    );
    assert_eq!(
        replayed.ledger.distribution(),
        &live,
        "{at}: log replay vs live view"
    );
    let replayed_hosts: Vec<_> = replayed
        .ledger
        .hosts()
        .map(|(h, r)| (h.clone(), r.clone()))
        .collect();
    assert_eq!(replayed_hosts, hosts, "{at}: hosts replayed from the log");
    assert_eq!(
        sorted_keys(&replayed.ledger),
        keys,
        "{at}: keys replayed from the log"
    );
    // The stored history is the replayed one, change for change.
    let stored: Vec<(i64, String, String, u64, bool)> = changes
        .iter()
        .map(|c| {
            (
                c.at_ms,
                c.host_id.0.clone(),
                c.country.clone(),
                c.tpp,
                c.decommissioned,
            )
        })
        .collect();
    let history: Vec<(i64, String, String, u64, bool)> = replayed
        .changes
        .iter()
        .map(|c| {
            (
                c.at_ms,
                c.host_id.clone(),
                c.country.to_string(),
                c.tpp,
                c.kind == collector_report::ChangeKind::Decommissioned,
            )
        })
        .collect();
    assert_eq!(stored, history, "{at}: stored history vs log replay");

    // A restart loads the same books.
    let reopened = open(store);
    let state = reopened.state();
    assert_eq!(
        state.ledger.distribution(),
        &live,
        "{at}: restart vs live view"
    );
    let reopened_hosts: Vec<_> = state
        .ledger
        .hosts()
        .map(|(h, r)| (h.clone(), r.clone()))
        .collect();
    assert_eq!(reopened_hosts, hosts, "{at}: hosts after a restart");
    assert_eq!(
        sorted_keys(&state.ledger),
        keys,
        "{at}: keys after a restart"
    );
}

fn sorted_keys(ledger: &collector_core::Ledger) -> Vec<(String, collector_core::KeyRecord)> {
    let keys: BTreeMap<String, collector_core::KeyRecord> = ledger
        .keys()
        .map(|(k, r)| (k.to_string(), r.clone()))
        .collect();
    keys.into_iter().collect()
}

fn advance(ms: i64) {
    CLOCK.with(|c| c.set(c.get() + ms));
}

fn seed_of(seed: u64, index: u32) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_be_bytes());
    bytes[8..12].copy_from_slice(&index.to_be_bytes());
    bytes[31] = 1;
    bytes
}

fn key(seed: u64, index: u32) -> Ed25519Signer {
    Ed25519Signer::from_seed(&seed_of(seed, index)).unwrap()
}

fn record(signer: &Ed25519Signer, host: &str, site: &str, country: &str) -> AgentRecord {
    AgentRecord {
        key_id: signer.key_id(),
        public_key: *signer.public_key().as_bytes(),
        host_id: HostId(host.to_owned()),
        site_id: SiteId(site.to_owned()),
        country: country.to_owned(),
        identity: format!("urn:veu:agent:{host}"),
        enrolled_at_ms: clock(),
        revoked_at_ms: None,
    }
}

fn actor(index: u32, signer: Ed25519Signer, host: &str, site: &str) -> Actor {
    Actor {
        index,
        signer,
        host: host.to_owned(),
        site: site.to_owned(),
        sequence: 0,
        previous: ChainDigest::GENESIS,
        last: None,
        last_issued: clock(),
        enrolled_at: clock(),
    }
}

/// A GPU index of another host to claim, fixed per host so moves recur.
fn random_index(host: &str) -> usize {
    host.len() % 3
}

/// The next statement of `actor`: mostly an honest next link, sometimes a gap, a replay, a
/// fork, a back-dated or pre-enrolment issue time, a GPU of another host (re-spelled), or a
/// GPU listed twice.
fn attestation(random: &mut Random, actor: &mut Actor, donors: &[(String, usize)]) -> Envelope {
    if let Some(last) = &actor.last
        && random.chance(5)
    {
        return last.clone();
    }
    let mut sequence = actor.sequence + 1;
    let mut previous = actor.previous;
    match random.below(100) {
        0..=4 => sequence += 1 + random.below(3) as u64,
        5..=7 if actor.sequence > 0 => {
            sequence = actor.sequence;
            previous = ChainDigest::of_payload(b"another history");
        }
        _ => {}
    }
    let now = clock();
    let issued = match random.below(100) {
        0..=4 => actor.last_issued - 1 - random.below(86_400_000) as i64,
        5..=7 => actor.enrolled_at - 1,
        8..=10 => now + 400_000,
        _ => now.max(actor.last_issued).max(actor.enrolled_at) - random.below(2_000) as i64,
    }
    .max(0);
    let count = 1 + random.below(4);
    let mut devices: Vec<DeviceRecord> = (0..count).map(|i| gpu(&actor.host, i)).collect();
    if !donors.is_empty() && random.chance(25) {
        let (donor, index) = &donors[random.below(donors.len())];
        let mut stolen = gpu(donor, *index);
        if random.chance(50) {
            stolen.uuid = format!(" {} ", stolen.uuid.to_lowercase());
            stolen.serial = stolen.serial.to_uppercase();
        }
        stolen.index = devices.len() as u32;
        devices.push(stolen);
    }
    if random.chance(5) {
        let mut twin = devices[0].clone();
        twin.index = devices.len() as u32;
        twin.uuid = twin.uuid.to_uppercase();
        devices.push(twin);
    }
    let payload = crate::statement(
        &actor.signer,
        &actor.host,
        &actor.site,
        sequence,
        previous,
        issued,
        &[],
        devices,
    );
    proto_seal::seal(&payload, &actor.signer).unwrap()
}

/// The envelope as the agent stream hands it to ingest: through the wire and back.
fn wire(envelope: &Envelope) -> Result<Envelope, Unreadable> {
    proto_seal::envelope_from_wire(proto_seal::envelope_to_wire(envelope))
        .map_err(Unreadable::Invalid)
}
