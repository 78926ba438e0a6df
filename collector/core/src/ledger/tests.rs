//! The ledger's rules, each with the input an attacker would send.

use proto_evidence::{DeviceRecord, EvidenceSource, HostId, SiteId, Totals};

use super::*;

const T0: i64 = 1_764_403_200_000;
const FRESH: i64 = 180_000;

fn key(name: &str) -> KeyId {
    KeyId::of_public_key(name.as_bytes())
}

fn us() -> CountryCode {
    CountryCode::parse("US").unwrap()
}

fn my() -> CountryCode {
    CountryCode::parse("MY").unwrap()
}

fn bind<'a>(
    at_ms: i64,
    name: &str,
    host: &'a str,
    site: &'a str,
    country: CountryCode,
) -> Binding<'a> {
    Binding {
        at_ms,
        key: key(name),
        host,
        site,
        country,
    }
}

fn gpu(index: u32, uuid: &str, serial: &str) -> DeviceRecord {
    DeviceRecord {
        index,
        uuid: uuid.into(),
        serial: serial.into(),
        catalogue_id: "H100-SXM5-80GB".into(),
        tpp: 15_840,
        ..DeviceRecord::default()
    }
}

fn gpus(host: &str, n: u32) -> Vec<DeviceRecord> {
    (0..n)
        .map(|i| gpu(i, &format!("GPU-{host}-{i}"), &format!("S-{host}-{i}")))
        .collect()
}

/// A chain of payloads for one key, digests derived from the sequence.
struct Chain {
    key: &'static str,
    host: &'static str,
    site: &'static str,
    sequence: u64,
    previous: ChainDigest,
}

impl Chain {
    fn new(key: &'static str, host: &'static str, site: &'static str) -> Self {
        Self {
            key,
            host,
            site,
            sequence: 0,
            previous: ChainDigest::GENESIS,
        }
    }

    fn next(
        &mut self,
        issued: i64,
        devices: Vec<DeviceRecord>,
    ) -> (AttestationPayload, ChainDigest) {
        self.sequence += 1;
        let payload = AttestationPayload {
            key_id: key(self.key),
            host_id: HostId(self.host.into()),
            site_id: SiteId(self.site.into()),
            sequence: self.sequence,
            previous_digest: self.previous,
            issued_at_unix_ms: issued,
            collector_nonce: Vec::new(),
            totals: Totals::of(&devices).unwrap(),
            devices,
            catalogue_digest: String::new(),
            policy_digest: String::new(),
            agent_version: String::new(),
            source: EvidenceSource::Nvml,
            driver_version: String::new(),
        };
        let digest = ChainDigest::of_payload(format!("{}/{}", self.key, self.sequence).as_bytes());
        self.previous = digest;
        (payload, digest)
    }
}

fn ledger_with(hosts: &[(&str, &'static str, &'static str, CountryCode)]) -> Ledger {
    let mut ledger = Ledger::new(FRESH, EvidenceRule::default());
    for (name, host, site, country) in hosts {
        ledger
            .enrol(&bind(T0, name, host, site, *country), false)
            .unwrap();
    }
    ledger
}

fn refusal(result: Result<Applied, (Reason, String)>) -> Reason {
    result.expect_err("expected a refusal").0
}

#[test]
fn an_existing_host_is_never_taken_over_by_enrolment() {
    let mut ledger = ledger_with(&[("real", "my-host", "my-1", my())]);
    let mut real = Chain::new("real", "my-host", "my-1");
    let (p, d) = real.next(T0 + 1000, gpus("my-host", 8));
    ledger.attest(T0 + 1000, &p, d, &[]).unwrap();

    // A token for a US site, the Malaysian host's id, a fresh key.
    let takeover = bind(T0 + 2000, "attacker", "my-host", "us-1", us());
    assert_eq!(
        ledger.enrol(&takeover, false),
        Err(EnrolRefusal::HostTaken("my-host".into()))
    );
    assert_eq!(ledger.distribution().of(my()), 8 * 15_840);
    assert_eq!(ledger.distribution().of(us()), 0);
    // The attacker's key is unknown: anything it signs is refused.
    let mut fake = Chain::new("attacker", "my-host", "us-1");
    let (p, d) = fake.next(T0 + 3000, Vec::new());
    assert_eq!(
        refusal(ledger.attest(T0 + 3000, &p, d, &[])),
        Reason::UnknownKey
    );
}

#[test]
fn a_revoked_key_is_revoked_forever() {
    let mut ledger = ledger_with(&[("k", "h", "us-1", us())]);
    ledger.revoke(T0 + 10, key("k")).unwrap();
    assert_eq!(
        ledger.enrol(&bind(T0 + 20, "k", "h2", "us-1", us()), false),
        Err(EnrolRefusal::KeyRevoked(key("k")))
    );
    assert_eq!(
        ledger.enrol(&bind(T0 + 20, "k", "h", "us-1", us()), true),
        Err(EnrolRefusal::KeyRevoked(key("k")))
    );
    let mut chain = Chain::new("k", "h", "us-1");
    let (p, d) = chain.next(T0 + 30, gpus("h", 1));
    assert_eq!(
        refusal(ledger.attest(T0 + 30, &p, d, &[])),
        Reason::RevokedKey
    );
}

#[test]
fn a_rebind_revokes_the_old_key_and_the_host_counts_again_only_after_attesting() {
    let mut ledger = ledger_with(&[("old", "h", "my-1", my())]);
    let mut old = Chain::new("old", "h", "my-1");
    let (p, d) = old.next(T0 + 10, gpus("h", 2));
    ledger.attest(T0 + 10, &p, d, &[]).unwrap();
    let (change, events) = ledger
        .enrol(&bind(T0 + 20, "new", "h", "us-1", us()), true)
        .unwrap();
    let change = change.unwrap();
    assert_eq!((change.counts, change.cause), (false, ChangeCause::Rebound));
    assert_eq!(events.len(), 1);
    assert_eq!(ledger.distribution().total(), 0);
    let (p, d) = old.next(T0 + 30, gpus("h", 2));
    assert_eq!(
        refusal(ledger.attest(T0 + 30, &p, d, &[])),
        Reason::RevokedKey
    );
    let mut new = Chain::new("new", "h", "us-1");
    let (p, d) = new.next(T0 + 40, gpus("h", 2));
    let applied = ledger.attest(T0 + 40, &p, d, &[]).unwrap();
    assert!(applied.change.unwrap().counts);
    assert_eq!(ledger.distribution().of(us()), 2 * 15_840);
    assert_eq!(
        ledger.enrol(&bind(T0 + 50, "x", "nobody", "us-1", us()), true),
        Err(EnrolRefusal::UnknownHost("nobody".into()))
    );
}

#[test]
fn issue_times_never_go_backwards_nor_precede_enrolment() {
    let mut ledger = ledger_with(&[("k", "h", "us-1", us())]);
    let mut chain = Chain::new("k", "h", "us-1");
    let (p, d) = chain.next(T0 + 86_400_000, gpus("h", 1));
    ledger.attest(T0 + 86_400_000, &p, d, &[]).unwrap();
    // The next link issued 20 days before the first.
    let (p, d) = chain.next(T0 - 19 * 86_400_000, Vec::new());
    assert_eq!(
        refusal(ledger.attest(T0 + 86_400_001, &p, d, &[])),
        Reason::Backdated
    );

    let mut ledger = ledger_with(&[("k", "h", "us-1", us())]);
    let mut chain = Chain::new("k", "h", "us-1");
    let (p, d) = chain.next(T0 - 1, gpus("h", 1));
    assert_eq!(
        refusal(ledger.attest(T0 + 5, &p, d, &[])),
        Reason::Backdated
    );
}

#[test]
fn chain_rules() {
    let mut ledger = ledger_with(&[("k", "h", "us-1", us())]);
    let mut chain = Chain::new("k", "h", "us-1");
    let (p1, d1) = chain.next(T0 + 1, gpus("h", 1));
    ledger.attest(T0 + 1, &p1, d1, &[]).unwrap();
    let (p2, d2) = chain.next(T0 + 2, gpus("h", 1));
    ledger.attest(T0 + 2, &p2, d2, &[]).unwrap();
    // Replayed.
    assert_eq!(
        refusal(ledger.attest(T0 + 3, &p1, d1, &[])),
        Reason::SequenceRollback
    );
    // Same sequence, other content.
    assert_eq!(
        refusal(ledger.attest(T0 + 3, &p2, ChainDigest::of_payload(b"other"), &[])),
        Reason::Fork
    );
    // Next sequence, wrong predecessor.
    let (mut p3, d3) = chain.next(T0 + 3, gpus("h", 1));
    p3.previous_digest = d1;
    assert_eq!(
        refusal(ledger.attest(T0 + 3, &p3, d3, &[])),
        Reason::PreviousDigestMismatch
    );
    // A gap is accepted and flagged.
    chain.sequence += 2;
    let (p6, d6) = chain.next(T0 + 6, gpus("h", 1));
    let applied = ledger.attest(T0 + 6, &p6, d6, &[]).unwrap();
    assert_eq!(applied.link, Link::Gap { missing: 3 });
    assert!(matches!(
        applied.events[0],
        LedgerEvent::Gap { missing: 3, .. }
    ));
    // Another host's key cannot speak for this host.
    let mut ledger = ledger_with(&[("k", "h", "us-1", us()), ("j", "other", "us-1", us())]);
    let mut chain = Chain::new("j", "h", "us-1");
    let (p, d) = chain.next(T0 + 1, Vec::new());
    assert_eq!(
        refusal(ledger.attest(T0 + 1, &p, d, &[])),
        Reason::KeyIdentityMismatch
    );
    let mut chain = Chain::new("k", "h", "my-1");
    let (p, d) = chain.next(T0 + 1, Vec::new());
    assert_eq!(
        refusal(ledger.attest(T0 + 1, &p, d, &[])),
        Reason::SiteMismatch
    );
}

#[test]
fn one_gpu_counts_once_whatever_its_spelling() {
    let mut ledger = ledger_with(&[("a", "a", "us-1", us()), ("b", "b", "my-1", my())]);
    // Listed four times in one payload: refused.
    let mut chain_b = Chain::new("b", "b", "my-1");
    let same = gpu(0, "GPU-abc", "1650");
    let (p, d) = chain_b.next(
        T0 + 1,
        vec![
            same.clone(),
            gpu(1, "gpu-ABC ", ""),
            same.clone(),
            same.clone(),
        ],
    );
    assert_eq!(
        refusal(ledger.attest(T0 + 1, &p, d, &[])),
        Reason::DuplicateGpu
    );
    chain_b.sequence -= 1;
    chain_b.previous = ChainDigest::GENESIS;

    let mut chain_a = Chain::new("a", "a", "us-1");
    let (p, d) = chain_a.next(T0 + 2, vec![gpu(0, "GPU-abc", "1650")]);
    ledger.attest(T0 + 2, &p, d, &[]).unwrap();
    // The same GPU on another host, upper-cased with a trailing space: one count, a conflict.
    let (p, d) = chain_b.next(
        T0 + 3,
        vec![gpu(0, "GPU-ABC ", " 1650 "), gpu(1, "GPU-2", "2")],
    );
    let applied = ledger.attest(T0 + 3, &p, d, &[]).unwrap();
    assert_eq!(applied.counted, [false, true]);
    assert_eq!(applied.tpp, 15_840);
    let conflicts = applied
        .events
        .iter()
        .filter(|e| matches!(e, LedgerEvent::GpuConflict { .. }))
        .count();
    assert_eq!(conflicts, 2, "uuid and serial");
    assert_eq!(ledger.distribution().total(), 2 * 15_840);
    // Standing: not raised again.
    let (p, d) = chain_b.next(
        T0 + 4,
        vec![gpu(0, "GPU-ABC ", " 1650 "), gpu(1, "GPU-2", "2")],
    );
    assert!(ledger.attest(T0 + 4, &p, d, &[]).unwrap().events.is_empty());
    // The owner is decommissioned: the GPU is free and counts for b on its next attestation.
    ledger.decommission(T0 + 5, "a").unwrap();
    let (p, d) = chain_b.next(
        T0 + 6,
        vec![gpu(0, "GPU-ABC ", " 1650 "), gpu(1, "GPU-2", "2")],
    );
    assert_eq!(
        ledger.attest(T0 + 6, &p, d, &[]).unwrap().counted,
        [true, true]
    );
    assert_eq!(ledger.distribution().total(), 2 * 15_840);
}

#[test]
fn a_decommissioned_host_is_flagged_and_never_counted_whatever_its_clock() {
    let mut ledger = ledger_with(&[("k", "h", "us-1", us())]);
    let mut chain = Chain::new("k", "h", "us-1");
    let (p, d) = chain.next(T0 + 10, gpus("h", 8));
    ledger.attest(T0 + 10, &p, d, &[]).unwrap();
    let change = ledger.decommission(T0 + 20, "h").unwrap();
    assert!(!change.counts);
    assert_eq!(ledger.distribution().total(), 0);
    // Its clock one second behind the decommissioning.
    let (p, d) = chain.next(T0 + 19, gpus("h", 8));
    let applied = ledger.attest(T0 + 21, &p, d, &[]).unwrap();
    assert_eq!((applied.tpp, applied.change), (0, None));
    assert!(matches!(
        applied.events[..],
        [LedgerEvent::DecommissionedHostAttesting { .. }]
    ));
    // Its clock far ahead: the same.
    let (p, d) = chain.next(T0 + 999_999, gpus("h", 8));
    let applied = ledger.attest(T0 + 22, &p, d, &[]).unwrap();
    assert_eq!(applied.tpp, 0);
    assert!(applied.events.is_empty(), "flagged once");
    assert_eq!(ledger.distribution().total(), 0);
    assert_eq!(
        ledger.decommission(T0 + 30, "h"),
        Err(AdminRefusal::NotInService("h".into()))
    );
}

#[test]
fn the_clock_only_moves_forward() {
    let mut ledger = ledger_with(&[("k", "h", "us-1", us())]);
    let mut chain = Chain::new("k", "h", "us-1");
    let (p, d) = chain.next(T0 + 100, gpus("h", 1));
    ledger.attest(T0 + 100, &p, d, &[]).unwrap();
    let (p, d) = chain.next(T0 + 100, gpus("h", 2));
    // Received "earlier" (a replica's clock behind): the change is stamped at the ledger's clock.
    let change = ledger.attest(T0 + 50, &p, d, &[]).unwrap().change.unwrap();
    assert_eq!(change.at_ms, T0 + 100);
}

#[test]
fn restoring_what_a_ledger_holds_gives_the_same_books() {
    let mut ledger = ledger_with(&[("a", "a", "us-1", us()), ("b", "b", "my-1", my())]);
    let mut chain_a = Chain::new("a", "a", "us-1");
    let mut chain_b = Chain::new("b", "b", "my-1");
    let (p, d) = chain_a.next(T0 + 1, vec![gpu(0, "GPU-x", "1")]);
    ledger.attest(T0 + 1, &p, d, &[]).unwrap();
    let (p, d) = chain_b.next(T0 + 2, vec![gpu(0, "gpu-X", ""), gpu(1, "GPU-y", "2")]);
    ledger.attest(T0 + 2, &p, d, &[]).unwrap();
    let restored = Ledger::restore(
        ledger.keys().map(|(k, r)| (*k, r.clone())),
        ledger.hosts().map(|(h, r)| (h.clone(), r.clone())),
        FRESH,
        EvidenceRule::default(),
        T0 + 2,
    )
    .unwrap();
    assert_eq!(restored.distribution(), ledger.distribution());
    assert_eq!(restored.owners, ledger.owners);
    assert_eq!(restored.clock_ms(), ledger.clock_ms());
    // The next attestation of b does the same on both.
    let (p, d) = chain_b.next(T0 + 3, vec![gpu(0, "gpu-X", ""), gpu(1, "GPU-y", "2")]);
    let (mut x, mut y) = (ledger.clone(), restored);
    assert_eq!(x.attest(T0 + 3, &p, d, &[]), y.attest(T0 + 3, &p, d, &[]));
}

/// Thousands of random sequences straight on the ledger: after every entry, the books equal
/// a brute-force sum over its hosts, the books restored from its own records, and a fresh
/// ledger that replays every accepted entry in order; refused entries change nothing.
#[test]
fn random_sequences_replay_restore_and_sum_alike() {
    #[derive(Clone)]
    #[allow(clippy::large_enum_variant)]
    enum Owned {
        Enrolled(i64, KeyId, String, String, CountryCode, bool),
        Revoked(i64, KeyId),
        Decommissioned(i64, String),
        Attested(i64, AttestationPayload, ChainDigest),
    }
    fn apply(ledger: &mut Ledger, entry: &Owned) -> Result<Effect, Refused> {
        match entry {
            Owned::Enrolled(at, key, host, site, country, rebind) => {
                let binding = Binding {
                    at_ms: *at,
                    key: *key,
                    host,
                    site,
                    country: *country,
                };
                ledger.apply(&if *rebind {
                    Entry::Rebound(binding)
                } else {
                    Entry::Enrolled(binding)
                })
            }
            Owned::Revoked(at, key) => ledger.apply(&Entry::Revoked {
                at_ms: *at,
                key: *key,
            }),
            Owned::Decommissioned(at, host) => {
                ledger.apply(&Entry::Decommissioned { at_ms: *at, host })
            }
            Owned::Attested(at, payload, digest) => ledger.apply(&Entry::Attested {
                at_ms: *at,
                digest: *digest,
                payload,
                gpu: &[],
            }),
        }
    }
    let mut seed = 0x001e_d6e5_u64;
    let mut next = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound.max(1)
    };
    let countries = [us(), my(), CountryCode::parse("DE").unwrap()];
    let sequences = 2_000;
    let mut accepted_total = 0usize;
    for sequence in 0..sequences {
        let mut ledger = Ledger::new(FRESH, EvidenceRule::default());
        let mut log: Vec<Owned> = Vec::new();
        // (key name, host, site, chain sequence, previous digest, last issue time)
        let mut keys: Vec<(String, String, String, u64, ChainDigest, i64)> = Vec::new();
        let mut now = T0;
        for step in 0..30 {
            now += next(100_000) as i64;
            let entry = match next(10) {
                0 | 1 => {
                    let name = format!("k{sequence}-{step}");
                    let rebind = !keys.is_empty() && next(3) == 0;
                    let host = if rebind || (!keys.is_empty() && next(5) == 0) {
                        keys[next(keys.len() as u64) as usize].1.clone()
                    } else {
                        format!("h{step}")
                    };
                    let country = countries[next(3) as usize];
                    let site = format!("site-{country}");
                    keys.push((
                        name.clone(),
                        host.clone(),
                        site.clone(),
                        0,
                        ChainDigest::GENESIS,
                        now,
                    ));
                    Owned::Enrolled(now, key(&name), host, site, country, rebind)
                }
                2 if !keys.is_empty() => {
                    Owned::Revoked(now, key(&keys[next(keys.len() as u64) as usize].0))
                }
                3 if !keys.is_empty() => {
                    Owned::Decommissioned(now, keys[next(keys.len() as u64) as usize].1.clone())
                }
                _ if !keys.is_empty() => {
                    let k = next(keys.len() as u64) as usize;
                    let (name, host, site, seq, previous, last) = keys[k].clone();
                    let issued = if next(10) == 0 { last - 1 } else { now };
                    let sequence_no = if next(10) == 0 {
                        seq
                    } else {
                        seq + 1 + next(2)
                    };
                    let devices: Vec<DeviceRecord> = (0..next(4))
                        .map(|i| {
                            let owner = if next(4) == 0 {
                                &keys[next(keys.len() as u64) as usize].1
                            } else {
                                &host
                            };
                            let uuid = format!("GPU-{owner}-{}", next(3));
                            let uuid = if next(2) == 0 {
                                uuid.to_lowercase()
                            } else {
                                uuid
                            };
                            gpu(i as u32, &uuid, "")
                        })
                        .collect();
                    let payload = AttestationPayload {
                        key_id: key(&name),
                        host_id: HostId(host.clone()),
                        site_id: SiteId(site.clone()),
                        sequence: sequence_no,
                        previous_digest: previous,
                        issued_at_unix_ms: issued,
                        collector_nonce: Vec::new(),
                        totals: Totals::of(&devices).unwrap(),
                        devices,
                        catalogue_digest: String::new(),
                        policy_digest: String::new(),
                        agent_version: String::new(),
                        source: EvidenceSource::Nvml,
                        driver_version: String::new(),
                    };
                    let digest =
                        ChainDigest::of_payload(format!("{name}/{sequence_no}/{step}").as_bytes());
                    Owned::Attested(now, payload, digest)
                }
                _ => continue,
            };
            let before = ledger.clone();
            match apply(&mut ledger, &entry) {
                Ok(_) => {
                    if let Owned::Attested(_, payload, digest) = &entry
                        && let Some(k) = keys.iter_mut().find(|k| key(&k.0) == payload.key_id)
                    {
                        k.3 = payload.sequence;
                        k.4 = *digest;
                        k.5 = payload.issued_at_unix_ms;
                    }
                    log.push(entry);
                    accepted_total += 1;
                }
                Err(_) => {
                    // A refusal leaves the books as they were.
                    assert_eq!(
                        ledger.hosts, before.hosts,
                        "sequence {sequence} step {step}"
                    );
                    assert_eq!(ledger.keys, before.keys, "sequence {sequence} step {step}");
                    assert_eq!(
                        ledger.owners, before.owners,
                        "sequence {sequence} step {step}"
                    );
                }
            }
            // Brute force: the sum over counting hosts.
            let mut sum = Distribution::new();
            for record in ledger.hosts.values().filter(|r| r.counts()) {
                sum.add(record.country, record.tpp).unwrap();
                let counted: u64 = record
                    .gpus
                    .iter()
                    .filter(|g| g.counted)
                    .map(|g| g.tpp)
                    .sum();
                assert_eq!(counted, record.tpp);
            }
            assert_eq!(
                &sum,
                ledger.distribution(),
                "sequence {sequence} step {step}"
            );
            // Brute force: each counted GPU's identities are owned by its host, nothing else is
            // owned, and no identity is counted twice.
            let mut owned: HashMap<GpuId, String> = HashMap::new();
            for (host, record) in &ledger.hosts {
                for id in record.gpus.iter().filter(|g| g.counted).flat_map(claim_ids) {
                    assert!(
                        owned.insert(id, host.clone()).is_none(),
                        "sequence {sequence}"
                    );
                }
            }
            assert_eq!(owned, ledger.owners, "sequence {sequence} step {step}");
            // Restored from its own records.
            let restored = Ledger::restore(
                ledger.keys().map(|(k, r)| (*k, r.clone())),
                ledger.hosts().map(|(h, r)| (h.clone(), r.clone())),
                FRESH,
                EvidenceRule::default(),
                now,
            )
            .unwrap();
            assert_eq!(
                restored.owners, ledger.owners,
                "sequence {sequence} step {step}"
            );
            assert_eq!(restored.distribution(), ledger.distribution());
            // Replayed from the accepted entries.
            let mut replayed = Ledger::new(FRESH, EvidenceRule::default());
            for entry in &log {
                apply(&mut replayed, entry).unwrap();
            }
            assert_eq!(
                replayed.hosts, ledger.hosts,
                "sequence {sequence} step {step}"
            );
            assert_eq!(
                replayed.keys, ledger.keys,
                "sequence {sequence} step {step}"
            );
            assert_eq!(
                replayed.owners, ledger.owners,
                "sequence {sequence} step {step}"
            );
        }
    }
    assert!(accepted_total > sequences * 5, "{accepted_total}");
}

#[test]
fn books_written_before_the_ledger_are_brought_to_its_rules_on_restore() {
    let mut ledger = ledger_with(&[("a", "a", "us-1", us()), ("b", "b", "my-1", my())]);
    let mut chain = Chain::new("a", "a", "us-1");
    let (p, d) = chain.next(T0 + 1, vec![gpu(0, "GPU-x", "1")]);
    ledger.attest(T0 + 1, &p, d, &[]).unwrap();
    // An older store counted the same GPU, spelled otherwise, on b as well.
    let mut hosts: Vec<(String, HostRecord)> = ledger
        .hosts()
        .map(|(h, r)| (h.clone(), r.clone()))
        .collect();
    let b = &mut hosts[1].1;
    b.last_sequence = 1;
    b.gpus = vec![
        GpuClaim {
            uuid: "gpu-x ".into(),
            serial: String::new(),
            tpp: 15_840,
            counted: true,
            hardware: String::new(),
            hardware_at_ms: 0,
        },
        GpuClaim {
            uuid: "GPU-y".into(),
            serial: String::new(),
            tpp: 15_840,
            counted: true,
            hardware: String::new(),
            hardware_at_ms: 0,
        },
    ];
    b.tpp = 2 * 15_840;
    b.devices = 2;
    let restored = Ledger::restore(
        ledger.keys().map(|(k, r)| (*k, r.clone())),
        hosts,
        FRESH,
        EvidenceRule::default(),
        T0,
    )
    .unwrap();
    assert_eq!(restored.restore_notes().len(), 1);
    assert_eq!(restored.distribution().total(), 2 * 15_840);
    let b = restored.host("b").unwrap();
    assert_eq!(
        (b.tpp, b.devices, &b.gpus[0].uuid),
        (15_840, 1, &"GPU-X".to_owned())
    );
}

fn hopper(index: u32, uuid: &str, serial: &str) -> DeviceRecord {
    DeviceRecord {
        architecture: "Hopper".into(),
        ..gpu(index, uuid, serial)
    }
}

fn proven(identity: &str, challenge_ms: i64) -> GpuProof {
    GpuProof::Hardware {
        identity: identity.into(),
        challenge_issued_at_ms: challenge_ms,
    }
}

fn rule(require: proto_accounting::RequireHardware) -> EvidenceRule {
    EvidenceRule {
        require_hardware: require,
        ..EvidenceRule::default()
    }
}

#[test]
fn a_verified_report_puts_its_gpu_at_the_hardware_level_until_it_expires() {
    let mut ledger = ledger_with(&[("a", "a", "us-1", us())]);
    let max_age = ledger.evidence_rule().hardware_max_age_ms;
    let mut chain = Chain::new("a", "a", "us-1");
    let devices = vec![hopper(0, "GPU-1", "S1"), hopper(1, "GPU-2", "S2")];
    let (p, d) = chain.next(T0 + 10, devices.clone());
    let proofs = [proven("NVIDIA:GH100:01", T0 + 5), GpuProof::Absent];
    let applied = ledger.attest(T0 + 10, &p, d, &proofs).unwrap();
    let host = ledger.host("a").unwrap();
    assert_eq!((host.tpp, host.hardware_tpp), (2 * 15_840, 15_840));
    assert_eq!(applied.change.unwrap().hardware_tpp, 15_840);
    assert_eq!(ledger.live().hardware_last_known().of(us()), 15_840);

    // The next attestations carry no report: the level holds until the challenge is too old.
    let (p, d) = chain.next(T0 + 60_000, devices.clone());
    ledger.attest(T0 + 60_000, &p, d, &[]).unwrap();
    assert_eq!(ledger.host("a").unwrap().hardware_tpp, 15_840);
    let late = T0 + 5 + max_age + 1;
    let (p, d) = chain.next(late, devices);
    let applied = ledger.attest(late, &p, d, &[]).unwrap();
    let host = ledger.host("a").unwrap();
    assert_eq!((host.tpp, host.hardware_tpp), (2 * 15_840, 0));
    assert_eq!(applied.change.unwrap().hardware_tpp, 0);
    assert_eq!(ledger.live().hardware_last_known().of(us()), 0);
    // The identity stays the GPU's in the conflict index.
    assert_eq!(host.gpus[0].hardware, "NVIDIA:GH100:01");
}

#[test]
fn one_gpu_claimed_by_two_hosts_under_new_labels_counts_once() {
    let mut ledger = ledger_with(&[("a", "a", "us-1", us()), ("b", "b", "my-1", my())]);
    let (mut a, mut b) = (Chain::new("a", "a", "us-1"), Chain::new("b", "b", "my-1"));
    let (p, d) = a.next(T0 + 1, vec![hopper(0, "GPU-1", "S1")]);
    ledger
        .attest(T0 + 1, &p, d, &[proven("NVIDIA:GH100:01", T0)])
        .unwrap();
    // Host b presents the same silicon under fresh NVML labels (a software relabel).
    let (p, d) = b.next(T0 + 2, vec![hopper(0, "GPU-fake", "FAKE")]);
    let applied = ledger
        .attest(T0 + 2, &p, d, &[proven("NVIDIA:GH100:01", T0 + 1)])
        .unwrap();
    assert_eq!(applied.counted, vec![false]);
    assert!(applied.events.iter().any(|e| matches!(
        e,
        LedgerEvent::GpuConflict { conflict, .. }
            if conflict.kind == IdKind::Hardware && conflict.owner == "a"
    )));
    assert_eq!(ledger.distribution().of(my()), 0);
    assert_eq!(ledger.distribution().of(us()), 15_840);
}

#[test]
fn new_labels_over_known_silicon_and_new_silicon_under_known_labels_are_flagged() {
    let mut ledger = ledger_with(&[("a", "a", "us-1", us())]);
    let mut a = Chain::new("a", "a", "us-1");
    let (p, d) = a.next(T0 + 1, vec![hopper(0, "GPU-1", "S1")]);
    ledger
        .attest(T0 + 1, &p, d, &[proven("NVIDIA:GH100:01", T0)])
        .unwrap();
    let (p, d) = a.next(T0 + 2, vec![hopper(0, "GPU-2", "S2")]);
    let applied = ledger
        .attest(T0 + 2, &p, d, &[proven("NVIDIA:GH100:01", T0 + 1)])
        .unwrap();
    assert!(
        applied.events.iter().any(
            |e| matches!(e, LedgerEvent::GpuRelabelled { detail, .. } if detail.contains("GPU-2"))
        ),
        "{:?}",
        applied.events
    );
    let (p, d) = a.next(T0 + 3, vec![hopper(0, "GPU-2", "S2")]);
    let applied = ledger
        .attest(T0 + 3, &p, d, &[proven("NVIDIA:GH100:99", T0 + 2)])
        .unwrap();
    assert!(
        applied.events.iter().any(
            |e| matches!(e, LedgerEvent::GpuRelabelled { detail, .. } if detail.contains("NVIDIA:GH100:99"))
        ),
        "{:?}",
        applied.events
    );
}

#[test]
fn a_refused_report_is_recorded_and_leaves_nvml_evidence_only() {
    let mut ledger = ledger_with(&[("a", "a", "us-1", us())]);
    let mut a = Chain::new("a", "a", "us-1");
    let (p, d) = a.next(T0 + 1, vec![hopper(0, "GPU-1", "S1")]);
    let refused = GpuProof::Refused {
        reason: "nonce_mismatch".into(),
        detail: "answers another challenge".into(),
    };
    let applied = ledger.attest(T0 + 1, &p, d, &[refused]).unwrap();
    assert!(applied.events.iter().any(|e| matches!(
        e,
        LedgerEvent::GpuEvidenceRefused { reason, device: 0, .. } if reason == "nonce_mismatch"
    )));
    let host = ledger.host("a").unwrap();
    assert_eq!((host.tpp, host.hardware_tpp), (15_840, 0));
}

#[test]
fn one_identity_for_two_devices_is_refused() {
    let mut ledger = ledger_with(&[("a", "a", "us-1", us())]);
    let mut a = Chain::new("a", "a", "us-1");
    let (p, d) = a.next(
        T0 + 1,
        vec![hopper(0, "GPU-1", "S1"), hopper(1, "GPU-2", "S2")],
    );
    let proofs = [proven("NVIDIA:GH100:01", T0), proven("NVIDIA:GH100:01", T0)];
    assert_eq!(
        refusal(ledger.attest(T0 + 1, &p, d, &proofs)),
        Reason::DuplicateGpu
    );
    assert_eq!(ledger.distribution().total(), 0);
}

#[test]
fn a_policy_requiring_hardware_counts_capable_gpus_only_with_it() {
    for (require, expected) in [
        (proto_accounting::RequireHardware::None, 3 * 15_840),
        (proto_accounting::RequireHardware::Capable, 2 * 15_840),
        (proto_accounting::RequireHardware::All, 15_840),
    ] {
        let mut ledger = Ledger::new(FRESH, rule(require));
        ledger
            .enrol(&bind(T0, "a", "a", "us-1", us()), false)
            .unwrap();
        let mut a = Chain::new("a", "a", "us-1");
        let ampere = DeviceRecord {
            architecture: "Ampere".into(),
            ..gpu(2, "GPU-3", "S3")
        };
        let devices = vec![hopper(0, "GPU-1", "S1"), hopper(1, "GPU-2", "S2"), ampere];
        let (p, d) = a.next(T0 + 1, devices);
        let applied = ledger
            .attest(T0 + 1, &p, d, &[proven("NVIDIA:GH100:01", T0)])
            .unwrap();
        assert_eq!(applied.tpp, expected, "{require:?}");
        assert_eq!(ledger.distribution().total(), expected, "{require:?}");
        assert_eq!(ledger.host("a").unwrap().hardware_tpp, 15_840);
    }
}

#[test]
fn restored_books_keep_hardware_identities_and_levels() {
    let mut ledger = ledger_with(&[("a", "a", "us-1", us()), ("b", "b", "my-1", my())]);
    let mut a = Chain::new("a", "a", "us-1");
    let (p, d) = a.next(T0 + 1, vec![hopper(0, "GPU-1", "S1")]);
    ledger
        .attest(T0 + 1, &p, d, &[proven("NVIDIA:GH100:01", T0)])
        .unwrap();
    let mut restored = Ledger::restore(
        ledger.keys().map(|(k, r)| (*k, r.clone())),
        ledger.hosts().map(|(h, r)| (h.clone(), r.clone())),
        FRESH,
        EvidenceRule::default(),
        T0 + 2,
    )
    .unwrap();
    assert_eq!(restored.live().hardware_last_known().of(us()), 15_840);
    assert_eq!(restored.owners, ledger.owners);
    let mut b = Chain::new("b", "b", "my-1");
    let (p, d) = b.next(T0 + 3, vec![hopper(0, "GPU-9", "S9")]);
    let applied = restored
        .attest(T0 + 3, &p, d, &[proven("NVIDIA:GH100:01", T0 + 2)])
        .unwrap();
    assert_eq!(applied.counted, vec![false]);
}
