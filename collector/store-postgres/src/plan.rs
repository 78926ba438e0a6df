//! Deciding a group of batches before anything is written: which attestations are new, which
//! are repeats, which batches fail (`Conflict`, `UnknownKey`, `OutOfRange`), and the log leaves,
//! in batch order. Host state is not decided here: the ledger did, and each batch's
//! `HostUpdate`s are kept as given (a host's last update in the group is its state; every
//! change is appended, in order).
//!
//! The writer reads what the decision needs while it holds the log's lock (`Known`), so the
//! decision is made on the latest committed state of every replica; a failing batch is
//! answered with its error and contributes nothing, so no SAVEPOINT is needed. Pure: no I/O.

use std::collections::{BTreeMap, HashMap, HashSet};

use collector_store::{
    AcceptedAttestation, Batch, ChainDigest, CommitReceipt, Event, Gpu, HostState, HostUpdate,
    KeyId, Rejection, StoreError,
};

use crate::codec::{int, inventory_hash};
use crate::log::{Append, Leaf};

/// What the database holds that the group's decision depends on.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// The group's keys that are enrolled.
    pub(crate) agents: HashSet<KeyId>,
    /// The group's (key, sequence) pairs that are stored, with their digests.
    pub(crate) digests: HashMap<(KeyId, i64), ChainDigest>,
    /// The `inventory_hash` of the stored state of each of the group's hosts (those of its
    /// attestations and of its updates) that has one.
    pub(crate) inventories: HashMap<String, [u8; 32]>,
}

/// A new attestation, with its columns converted and its leaf.
#[derive(Debug, Clone)]
pub(crate) struct NewAttestation<'a> {
    pub(crate) a: &'a AcceptedAttestation,
    pub(crate) sequence: i64,
    pub(crate) tpp: i64,
    pub(crate) gap_before: i64,
    pub(crate) inventory: [u8; 32],
    pub(crate) gpu_tpps: Vec<i64>,
    pub(crate) log_index: u64,
    leaf: Option<Leaf>,
}

/// A host update with its columns converted.
#[derive(Debug, Clone)]
pub(crate) struct NewHost<'a> {
    pub(crate) state: &'a HostState,
    pub(crate) gpus: &'a [Gpu],
    pub(crate) last_sequence: i64,
    pub(crate) tpp: i64,
    pub(crate) devices: i64,
    pub(crate) inventory: [u8; 32],
    pub(crate) gpu_tpps: Vec<i64>,
    change: Option<Change<'a>>,
}

/// A host history row to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change<'a> {
    pub(crate) at_ms: i64,
    pub(crate) host_id: &'a str,
    pub(crate) site_id: &'a str,
    pub(crate) country: &'a str,
    pub(crate) tpp: i64,
    pub(crate) devices: i64,
    /// `attested`, or `stopped` when the host no longer counts.
    pub(crate) kind: &'static str,
    pub(crate) hardware_tpp: i64,
}

/// A host's final state in the group.
#[derive(Debug)]
pub(crate) struct Moved<'a, 'p> {
    pub(crate) host: &'p NewHost<'a>,
    /// Whether its GPU list differs from the stored one, so the `gpus` rows are replaced.
    pub(crate) replaced: bool,
}

/// Everything a group writes.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    known: Known,
    /// The log leaves of the stored attestations, in order.
    pub(crate) log: Append,
    pub(crate) attestations: Vec<NewAttestation<'a>>,
    /// Inventories the stored attestations and host states refer to, each once, with their
    /// GPU TPPs.
    pub(crate) inventories: Vec<([u8; 32], &'a [Gpu], Vec<i64>)>,
    inventory_seen: HashSet<[u8; 32]>,
    /// Each key's highest stored (sequence, digest) of the group.
    pub(crate) chain_heads: BTreeMap<KeyId, (i64, ChainDigest)>,
    /// Each updated host's last update in the group.
    hosts: BTreeMap<&'a str, NewHost<'a>>,
    /// The updates' changes, in the order of the updates.
    pub(crate) changes: Vec<Change<'a>>,
    pub(crate) events: Vec<&'a Event>,
    pub(crate) rejections: Vec<(&'a Rejection, Option<i64>)>,
    pub(crate) rejection_counts: BTreeMap<&'a str, i64>,
}

/// The outcome of checking one attestation.
enum Checked {
    New,
    Repeat,
}

/// The values of one batch converted for the database.
type Converted<'a> = (Vec<NewAttestation<'a>>, Vec<NewHost<'a>>, Vec<Option<i64>>);

/// A batch with everything computed that does not depend on the database: integers converted,
/// inventories hashed, log leaves encoded. Prepared before the log's lock is taken, so that the
/// lock is held for the decision and the writes only (SHA-256 over every envelope is the
/// largest part of a group's CPU time).
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    batch: &'a Batch,
    /// The attestations (their log index still unset), the host updates and the rejections'
    /// sequences; the first value out of range fails the batch.
    converted: Result<Converted<'a>, StoreError>,
}

impl<'a> Prepared<'a> {
    pub(crate) fn new(batch: &'a Batch) -> Self {
        let converted = (|| {
            let attestations = batch
                .attestations
                .iter()
                .map(NewAttestation::new)
                .collect::<Result<Vec<_>, _>>()?;
            let hosts = batch
                .hosts
                .iter()
                .map(NewHost::new)
                .collect::<Result<Vec<_>, _>>()?;
            let sequences = batch
                .rejections
                .iter()
                .map(|r| r.sequence.map(|s| int("rejection sequence", s)).transpose())
                .collect::<Result<Vec<_>, _>>()?;
            Ok((attestations, hosts, sequences))
        })();
        Self { batch, converted }
    }
}

fn gpu_tpps(gpus: &[Gpu]) -> Result<Vec<i64>, StoreError> {
    gpus.iter().map(|gpu| int("gpu tpp", gpu.tpp)).collect()
}

impl<'a> NewAttestation<'a> {
    fn new(a: &'a AcceptedAttestation) -> Result<Self, StoreError> {
        Ok(Self {
            a,
            sequence: int("sequence", a.sequence)?,
            tpp: int("tpp", a.tpp)?,
            gap_before: int("gap_before", a.gap_before)?,
            gpu_tpps: gpu_tpps(&a.gpus)?,
            inventory: inventory_hash(&a.gpus),
            log_index: 0,
            leaf: Some(Leaf::attestation(a.received_at_ms, &a.envelope)?),
        })
    }
}

impl<'a> NewHost<'a> {
    fn new(update: &'a HostUpdate) -> Result<Self, StoreError> {
        let state = &update.state;
        let change = update
            .change
            .as_ref()
            .map(|change| {
                Ok::<_, StoreError>(Change {
                    at_ms: change.at_ms,
                    host_id: &change.host_id.0,
                    site_id: &change.site_id.0,
                    country: &change.country,
                    tpp: int("tpp", change.tpp)?,
                    devices: i64::from(change.devices),
                    kind: if change.decommissioned {
                        "stopped"
                    } else {
                        "attested"
                    },
                    hardware_tpp: int("hardware tpp", change.hardware_tpp)?,
                })
            })
            .transpose()?;
        Ok(Self {
            state,
            gpus: &update.gpus,
            last_sequence: int("last_sequence", state.last_sequence)?,
            tpp: int("tpp", state.tpp)?,
            devices: i64::from(state.devices),
            inventory: inventory_hash(&update.gpus),
            gpu_tpps: gpu_tpps(&update.gpus)?,
            change,
        })
    }
}

impl<'a> Plan<'a> {
    pub(crate) fn new(known: Known, log: Append) -> Self {
        Self {
            known,
            log,
            attestations: Vec::new(),
            inventories: Vec::new(),
            inventory_seen: HashSet::new(),
            chain_heads: BTreeMap::new(),
            hosts: BTreeMap::new(),
            changes: Vec::new(),
            events: Vec::new(),
            rejections: Vec::new(),
            rejection_counts: BTreeMap::new(),
        }
    }

    /// Adds one batch: either all of it (`Ok`, with what it stored and repeated) or, when
    /// any of its attestations fails, nothing of it.
    pub(crate) fn add(&mut self, prepared: &Prepared<'a>) -> Result<CommitReceipt, StoreError> {
        let (attestations, hosts, rejection_sequences) =
            prepared.converted.as_ref().map_err(Clone::clone)?;
        let checked = self.check(attestations)?;
        // Nothing below can fail: the batch is now added whole.
        let mut receipt = CommitReceipt::default();
        for (new, checked) in attestations.iter().zip(checked) {
            match checked {
                Checked::Repeat => receipt.repeated += 1,
                Checked::New => {
                    receipt.stored += 1;
                    self.store(new.clone());
                }
            }
        }
        for host in hosts {
            self.update(host.clone());
        }
        self.events.extend(&prepared.batch.events);
        for (rejection, sequence) in prepared.batch.rejections.iter().zip(rejection_sequences) {
            *self
                .rejection_counts
                .entry(rejection.reason.as_str())
                .or_default() += int("rejection count", rejection.count.max(1))?;
            self.rejections.push((rejection, *sequence));
        }
        Ok(receipt)
    }

    /// Every updated host with its final state in the group, ordered by host id.
    pub(crate) fn hosts(&self) -> Vec<Moved<'a, '_>> {
        self.hosts
            .iter()
            .map(|(&host_id, host)| Moved {
                host,
                replaced: self.known.inventories.get(host_id) != Some(&host.inventory),
            })
            .collect()
    }

    /// Checks every attestation of a batch against what is stored and what earlier batches
    /// of the group (and earlier attestations of this batch) add.
    fn check(&self, attestations: &[NewAttestation<'a>]) -> Result<Vec<Checked>, StoreError> {
        let mut local: HashMap<(KeyId, i64), ChainDigest> = HashMap::new();
        let mut checked = Vec::with_capacity(attestations.len());
        for new in attestations {
            let a = new.a;
            if !self.known.agents.contains(&a.key_id) {
                return Err(StoreError::UnknownKey {
                    key_id: a.key_id,
                    sequence: a.sequence,
                });
            }
            let pair = (a.key_id, new.sequence);
            let stored = local.get(&pair).or_else(|| self.known.digests.get(&pair));
            match stored {
                Some(digest) if *digest == a.digest => checked.push(Checked::Repeat),
                Some(_) => {
                    return Err(StoreError::Conflict {
                        key_id: a.key_id,
                        sequence: a.sequence,
                    });
                }
                None => {
                    local.insert(pair, a.digest);
                    checked.push(Checked::New);
                }
            }
        }
        Ok(checked)
    }

    /// Adds the inventory `hash` of `gpus` unless `host`'s stored state has it already, or
    /// the group adds it already.
    fn inventory(&mut self, host: &str, hash: [u8; 32], gpus: &'a [Gpu], tpps: &[i64]) {
        // A host's GPUs rarely change, so most attestations send no inventory at all.
        if self.known.inventories.get(host) != Some(&hash) && self.inventory_seen.insert(hash) {
            self.inventories.push((hash, gpus, tpps.to_vec()));
        }
    }

    /// Stores one checked new attestation: its leaf, its row and its key's head.
    fn store(&mut self, mut new: NewAttestation<'a>) {
        let a = new.a;
        if let Some(leaf) = new.leaf.take() {
            new.log_index = self.log.push(leaf, Some(&a.key_id), Some(&a.host_id.0));
        }
        self.known
            .digests
            .insert((a.key_id, new.sequence), a.digest);
        self.inventory(&a.host_id.0, new.inventory, &a.gpus, &new.gpu_tpps);
        let head = self
            .chain_heads
            .entry(a.key_id)
            .or_insert((new.sequence, a.digest));
        if new.sequence > head.0 {
            *head = (new.sequence, a.digest);
        }
        self.attestations.push(new);
    }

    /// Keeps one host update as given: its state and GPUs replace the host's earlier ones in
    /// the group, its change follows the earlier changes.
    fn update(&mut self, mut host: NewHost<'a>) {
        let state = host.state;
        self.inventory(&state.host_id.0, host.inventory, host.gpus, &host.gpu_tpps);
        if let Some(change) = host.change.take() {
            self.changes.push(change);
        }
        self.hosts.insert(&state.host_id.0, host);
    }
}

#[cfg(test)]
mod tests {
    use collector_store::conformance::fixture::{
        agent, attestation, batch, digest, key, state_of, updates,
    };
    use proto_merkle::Frontier;

    use super::*;

    fn known(keys: &[u8]) -> Known {
        Known {
            agents: keys.iter().map(|&n| agent(n, "h").key_id).collect(),
            ..Known::default()
        }
    }

    fn receipt(stored: usize, repeated: usize) -> CommitReceipt {
        CommitReceipt { stored, repeated }
    }

    #[test]
    fn a_failing_batch_adds_nothing_and_spares_the_others() {
        let good = batch(vec![attestation(1, 1, "host-a", 1_000)]);
        let mut fork = attestation(1, 1, "host-a", 1_000);
        fork.digest = digest(9, 9);
        let forked = batch(vec![attestation(1, 2, "host-a", 2_000), fork]);
        let unknown = batch(vec![attestation(7, 1, "host-z", 1_000)]);
        let later = batch(vec![
            attestation(1, 2, "host-a", 2_000),
            attestation(1, 2, "host-a", 2_000),
        ]);
        let mut plan = Plan::new(known(&[1]), Append::new(Frontier::new()));
        assert_eq!(plan.add(&Prepared::new(&good)).unwrap(), receipt(1, 0));
        assert!(matches!(
            plan.add(&Prepared::new(&forked)),
            Err(StoreError::Conflict { sequence: 1, .. })
        ));
        assert!(matches!(
            plan.add(&Prepared::new(&unknown)),
            Err(StoreError::UnknownKey { key_id, sequence: 1 }) if key_id == key(7)
        ));
        // Sequence 2 of the failed batch was not kept: here it is new, then a repeat.
        assert_eq!(plan.add(&Prepared::new(&later)).unwrap(), receipt(1, 1));
        let indexes: Vec<u64> = plan.attestations.iter().map(|n| n.log_index).collect();
        assert_eq!(indexes, vec![0, 1]);
        assert_eq!(plan.log.frontier().size(), 2);
        assert_eq!(plan.chain_heads[&key(1)], (2, digest(1, 2)));
        // One inventory (the same eight GPUs), one host at its last update; the failed
        // batches' updates and changes are not kept, the others' all are.
        assert_eq!(plan.inventories.len(), 1);
        let hosts = plan.hosts();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].host.state.last_sequence, 2);
        assert!(hosts[0].replaced, "a new host's GPUs are written");
        assert_eq!(plan.changes.len(), 3);
        assert!(plan.changes.iter().all(|c| c.host_id == "host-a"));
    }

    #[test]
    fn host_updates_are_kept_as_given() {
        let stored = attestation(1, 5, "host-a", 5_000);
        let mut known = known(&[1, 2]);
        known
            .inventories
            .insert("host-a".to_owned(), inventory_hash(&stored.gpus));
        let mut plan = Plan::new(known, Append::new(Frontier::new()));

        // An update the old rules would have refused (an older link, another key issued
        // earlier, a decommissioned host attesting): the store keeps it as it is.
        let older = attestation(2, 3, "host-a", 1_000);
        let mut given = updates(std::slice::from_ref(&older));
        given[0].state.decommissioned_at_ms = Some(900);
        given[0].state.tpp = 0;
        if let Some(change) = &mut given[0].change {
            change.decommissioned = true;
            change.tpp = 0;
        }
        let first = Batch {
            attestations: vec![older.clone()],
            hosts: given.clone(),
            ..Batch::default()
        };
        plan.add(&Prepared::new(&first)).unwrap();
        let hosts = plan.hosts();
        assert_eq!(hosts.len(), 1);
        assert_eq!(*hosts[0].host.state, given[0].state);
        assert!(!hosts[0].replaced, "same GPUs: the rows are kept");
        assert!(
            plan.inventories.is_empty(),
            "the stored inventory is reused"
        );
        assert_eq!(plan.changes.len(), 1);
        assert_eq!((plan.changes[0].kind, plan.changes[0].tpp), ("stopped", 0));

        // Attestations without updates move no host.
        let plain = Batch {
            attestations: vec![attestation(1, 6, "host-a", 6_000)],
            ..Batch::default()
        };
        plan.add(&Prepared::new(&plain)).unwrap();
        assert_eq!(*plan.hosts()[0].host.state, given[0].state);
        assert_eq!(plan.changes.len(), 1);

        // An uncounted GPU is another list: written, and the host's rows replaced. The last
        // update of a host is its state; every change is kept, in order.
        let mut a7 = attestation(1, 7, "host-a", 7_000);
        a7.gpus[2].counted = false;
        let b1 = attestation(2, 1, "host-b", 7_500);
        let mut second = batch(vec![a7.clone(), b1.clone()]);
        second.hosts[0].gpus = a7.gpus.clone();
        plan.add(&Prepared::new(&second)).unwrap();
        let hosts = plan.hosts();
        assert_eq!(hosts.len(), 2);
        assert_eq!(*hosts[0].host.state, state_of(&a7, None));
        assert_eq!(hosts[0].host.gpus, &a7.gpus[..]);
        assert!(hosts[0].replaced);
        assert_eq!(*hosts[1].host.state, state_of(&b1, None));
        assert!(hosts[1].replaced, "a host without stored GPUs");
        // a7's inventory (uncounted GPU 2) and host-b's.
        assert_eq!(plan.inventories.len(), 2);
        let order: Vec<(&str, i64, &str)> = plan
            .changes
            .iter()
            .map(|c| (c.host_id, c.at_ms, c.kind))
            .collect();
        assert_eq!(
            order,
            vec![
                ("host-a", 1_000, "stopped"),
                ("host-a", 7_000, "attested"),
                ("host-b", 7_500, "attested"),
            ]
        );
        assert_eq!(plan.attestations.len(), 4, "every new link is stored");
    }

    #[test]
    fn out_of_range_values_fail_their_batch() {
        let mut huge = attestation(1, 1, "host-a", 1_000);
        huge.tpp = u64::MAX;
        let big = batch(vec![huge]);
        let mut plan = Plan::new(known(&[1]), Append::new(Frontier::new()));
        assert!(matches!(
            plan.add(&Prepared::new(&big)),
            Err(StoreError::OutOfRange { field: "tpp", .. })
        ));
        let mut update = batch(vec![attestation(1, 1, "host-a", 1_000)]);
        update.hosts[0].state.last_sequence = u64::MAX;
        assert!(matches!(
            plan.add(&Prepared::new(&update)),
            Err(StoreError::OutOfRange {
                field: "last_sequence",
                ..
            })
        ));
        assert!(plan.attestations.is_empty() && plan.log.frontier().size() == 0);
        assert!(plan.hosts().is_empty() && plan.changes.is_empty());
    }
}
