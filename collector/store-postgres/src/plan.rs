//! Deciding a group of batches before anything is written: which attestations are new, which
//! are repeats, which batches fail (`Conflict`, `UnknownKey`, `OutOfRange`), what each host's
//! state becomes, which changes its history records, and the log leaves, in batch order.
//!
//! The writer reads what the decision needs while it holds the log's lock (`Known`), so the
//! decision is made on the latest committed state of every replica; a failing batch is
//! answered with its error and contributes nothing, so no SAVEPOINT is needed. Pure: no I/O.

use std::collections::{BTreeMap, HashMap, HashSet};

use collector_store::{
    AcceptedAttestation, Batch, CommitReceipt, Event, Gpu, KeyId, Rejection, StoreError,
};

use crate::codec::{int, inventory_hash};
use crate::log::{Append, Leaf};

/// A host's stored state, as the decision compares with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostRow {
    pub(crate) site_id: String,
    pub(crate) country: String,
    pub(crate) key_id: KeyId,
    pub(crate) last_sequence: i64,
    pub(crate) last_digest: [u8; 32],
    pub(crate) last_issued_at_ms: i64,
    pub(crate) last_received_at_ms: i64,
    pub(crate) tpp: i64,
    pub(crate) devices: i64,
    pub(crate) decommissioned_at_ms: Option<i64>,
    /// `inventory_hash` of its GPU list.
    pub(crate) inventory: [u8; 32],
}

/// What the database holds that the group's decision depends on.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// The group's keys that are enrolled.
    pub(crate) agents: HashSet<KeyId>,
    /// The group's (key, sequence) pairs that are stored, with their digests.
    pub(crate) digests: HashMap<(KeyId, i64), [u8; 32]>,
    /// The stored state of the group's hosts.
    pub(crate) hosts: HashMap<String, HostRow>,
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

/// A host history row to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change<'a> {
    pub(crate) at_ms: i64,
    pub(crate) host_id: &'a str,
    pub(crate) site_id: &'a str,
    pub(crate) country: &'a str,
    pub(crate) tpp: i64,
    pub(crate) devices: i64,
}

/// A host whose state the group moved.
#[derive(Debug)]
pub(crate) struct Moved<'a, 'p> {
    pub(crate) host_id: &'a str,
    pub(crate) row: &'p HostRow,
    /// The GPU list of the final state, and their TPPs as stored.
    pub(crate) gpus: &'a [Gpu],
    pub(crate) tpps: &'p [i64],
    /// Whether that list differs from the stored one, so the `gpus` rows are replaced.
    pub(crate) replaced: bool,
}

/// Everything a group writes.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    known: Known,
    /// The log leaves of the stored attestations, in order.
    pub(crate) log: Append,
    pub(crate) attestations: Vec<NewAttestation<'a>>,
    /// Inventories the stored attestations refer to, each once, with their GPU TPPs.
    pub(crate) inventories: Vec<([u8; 32], &'a [Gpu], Vec<i64>)>,
    inventory_seen: HashSet<[u8; 32]>,
    /// Each key's highest stored (sequence, digest) of the group.
    pub(crate) chain_heads: BTreeMap<KeyId, (i64, [u8; 32])>,
    /// Hosts whose state moved: the GPU list of their final state, and whether that list
    /// differs from the stored one.
    moved: BTreeMap<&'a str, (&'a [Gpu], Vec<i64>)>,
    /// Each moved host's inventory before the group (`None`: a new host).
    before: HashMap<&'a str, Option<[u8; 32]>>,
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

/// A batch with everything computed that does not depend on the database: integers converted,
/// inventories hashed, log leaves encoded. Prepared before the log's lock is taken, so that the
/// lock is held for the decision and the writes only (SHA-256 over every envelope is the
/// largest part of a group's CPU time).
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    batch: &'a Batch,
    /// The attestations (their log index still unset) and the rejections' sequences; the
    /// first value out of range fails the batch.
    converted: Result<(Vec<NewAttestation<'a>>, Vec<Option<i64>>), StoreError>,
}

impl<'a> Prepared<'a> {
    pub(crate) fn new(batch: &'a Batch) -> Self {
        let converted = (|| {
            let attestations = batch
                .attestations
                .iter()
                .map(NewAttestation::new)
                .collect::<Result<Vec<_>, _>>()?;
            let sequences = batch
                .rejections
                .iter()
                .map(|r| r.sequence.map(|s| int("rejection sequence", s)).transpose())
                .collect::<Result<Vec<_>, _>>()?;
            Ok((attestations, sequences))
        })();
        Self { batch, converted }
    }
}

impl<'a> NewAttestation<'a> {
    fn new(a: &'a AcceptedAttestation) -> Result<Self, StoreError> {
        Ok(Self {
            a,
            sequence: int("sequence", a.sequence)?,
            tpp: int("tpp", a.tpp)?,
            gap_before: int("gap_before", a.gap_before)?,
            gpu_tpps: a
                .gpus
                .iter()
                .map(|gpu| int("gpu tpp", gpu.tpp))
                .collect::<Result<Vec<_>, _>>()?,
            inventory: inventory_hash(&a.gpus),
            log_index: 0,
            leaf: Some(Leaf::attestation(a.received_at_ms, &a.envelope)?),
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
            moved: BTreeMap::new(),
            before: HashMap::new(),
            changes: Vec::new(),
            events: Vec::new(),
            rejections: Vec::new(),
            rejection_counts: BTreeMap::new(),
        }
    }

    /// Adds one batch: either all of it (`Ok`, with what it stored and repeated) or, when
    /// any of its attestations fails, nothing of it.
    pub(crate) fn add(&mut self, prepared: &Prepared<'a>) -> Result<CommitReceipt, StoreError> {
        let (attestations, rejection_sequences) =
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
        self.events.extend(&prepared.batch.events);
        for (rejection, sequence) in prepared.batch.rejections.iter().zip(rejection_sequences) {
            *self
                .rejection_counts
                .entry(rejection.reason.as_str())
                .or_default() += 1;
            self.rejections.push((rejection, *sequence));
        }
        Ok(receipt)
    }

    /// Every host whose state moved, with its final state.
    pub(crate) fn hosts(&self) -> Vec<Moved<'a, '_>> {
        self.moved
            .iter()
            .filter_map(|(&host_id, (gpus, tpps))| {
                let row = self.known.hosts.get(host_id)?;
                Some(Moved {
                    host_id,
                    row,
                    gpus,
                    tpps,
                    replaced: self.before.get(host_id).copied().flatten() != Some(row.inventory),
                })
            })
            .collect()
    }

    /// Checks every attestation of a batch against what is stored and what earlier batches
    /// of the group (and earlier attestations of this batch) add.
    fn check(&self, attestations: &[NewAttestation<'a>]) -> Result<Vec<Checked>, StoreError> {
        let mut local: HashMap<(KeyId, i64), [u8; 32]> = HashMap::new();
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

    /// Stores one checked new attestation: its leaf, its row, its key's head and its host.
    fn store(&mut self, mut new: NewAttestation<'a>) {
        let a = new.a;
        if let Some(leaf) = new.leaf.take() {
            new.log_index = self.log.push(leaf, Some(&a.key_id), Some(&a.host_id));
        }
        self.known
            .digests
            .insert((a.key_id, new.sequence), a.digest);
        // The host's current inventory is stored already (or earlier in this plan): a host's
        // GPUs rarely change, so most attestations send no inventory at all.
        let current = self.known.hosts.get(&a.host_id).map(|row| row.inventory);
        if current != Some(new.inventory) && self.inventory_seen.insert(new.inventory) {
            self.inventories
                .push((new.inventory, &a.gpus, new.gpu_tpps.clone()));
        }
        let head = self
            .chain_heads
            .entry(a.key_id)
            .or_insert((new.sequence, a.digest));
        if new.sequence > head.0 {
            *head = (new.sequence, a.digest);
        }
        self.move_host(&new);
        self.attestations.push(new);
    }

    /// Moves the attestation's host to it when it is newer than the state held (the rule of
    /// `AttestationStore::commit`), and records a history change when what counts changed.
    fn move_host(&mut self, new: &NewAttestation<'a>) {
        let a = new.a;
        let current = self.known.hosts.get(&a.host_id);
        let devices = i64::from(a.devices);
        let (decommissioned_at_ms, changed) = match current {
            None => (None, true),
            Some(current) if !is_newer(current, a, new.sequence) => return,
            Some(current) => {
                // A host that attests after its decommissioning is in service again; an
                // attestation issued before it (a late replay) does not undo it.
                let decommissioned = current
                    .decommissioned_at_ms
                    .filter(|&at| a.issued_at_ms <= at);
                // Still decommissioned: no change in what counts.
                let changed = decommissioned.is_none()
                    && (current.decommissioned_at_ms.is_some()
                        || current.site_id != a.site_id
                        || current.country != a.country
                        || current.tpp != new.tpp
                        || current.devices != devices);
                (decommissioned, changed)
            }
        };
        let before = current.map(|current| current.inventory);
        self.before.entry(a.host_id.as_str()).or_insert(before);
        self.known.hosts.insert(
            a.host_id.clone(),
            HostRow {
                site_id: a.site_id.clone(),
                country: a.country.clone(),
                key_id: a.key_id,
                last_sequence: new.sequence,
                last_digest: a.digest,
                last_issued_at_ms: a.issued_at_ms,
                last_received_at_ms: a.received_at_ms,
                tpp: new.tpp,
                devices,
                decommissioned_at_ms,
                inventory: new.inventory,
            },
        );
        self.moved
            .insert(a.host_id.as_str(), (&a.gpus, new.gpu_tpps.clone()));
        if changed {
            self.changes.push(Change {
                at_ms: a.issued_at_ms,
                host_id: &a.host_id,
                site_id: &a.site_id,
                country: &a.country,
                tpp: new.tpp,
                devices,
            });
        }
    }
}

/// Whether `a` should become its host's state: the next link of the same chain, or another
/// key's attestation issued no earlier (a re-enrolled host). The host-state upsert states the
/// same rule in SQL.
fn is_newer(current: &HostRow, a: &AcceptedAttestation, sequence: i64) -> bool {
    if current.key_id == a.key_id {
        sequence > current.last_sequence
    } else {
        a.issued_at_ms >= current.last_issued_at_ms
    }
}

#[cfg(test)]
mod tests {
    use collector_store::conformance::fixture::{agent, attestation, batch, digest, key};
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
        // One inventory (the same eight GPUs), one host, one change (its first state).
        assert_eq!(plan.inventories.len(), 1);
        let hosts = plan.hosts();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].row.last_sequence, 2);
        assert!(hosts[0].replaced, "a new host's GPUs are written");
        assert_eq!(plan.changes.len(), 1);
    }

    #[test]
    fn host_state_follows_the_rule_of_the_port() {
        let stored = attestation(1, 5, "host-a", 5_000);
        let mut known = known(&[1, 2]);
        known.hosts.insert(
            "host-a".to_owned(),
            HostRow {
                site_id: stored.site_id.clone(),
                country: stored.country.clone(),
                key_id: stored.key_id,
                last_sequence: 5,
                last_digest: stored.digest,
                last_issued_at_ms: stored.issued_at_ms,
                last_received_at_ms: stored.received_at_ms,
                tpp: stored.tpp as i64,
                devices: 8,
                decommissioned_at_ms: Some(6_000),
                inventory: inventory_hash(&stored.gpus),
            },
        );
        let older = batch(vec![attestation(1, 3, "host-a", 9_000)]);
        let replay = batch(vec![attestation(1, 6, "host-a", 5_500)]);
        let back = batch(vec![attestation(1, 7, "host-a", 7_000)]);
        let other_key_earlier = batch(vec![attestation(2, 1, "host-a", 6_000)]);
        let mut plan = Plan::new(known, Append::new(Frontier::new()));
        plan.add(&Prepared::new(&older)).unwrap();
        assert!(plan.hosts().is_empty(), "an older link moves nothing");
        plan.add(&Prepared::new(&replay)).unwrap();
        let hosts = plan.hosts();
        assert_eq!(hosts[0].row.decommissioned_at_ms, Some(6_000));
        assert!(!hosts[0].replaced, "same GPUs: the list is kept");
        assert!(plan.changes.is_empty(), "still decommissioned: no change");
        plan.add(&Prepared::new(&back)).unwrap();
        assert_eq!(plan.hosts()[0].row.decommissioned_at_ms, None);
        assert_eq!(plan.changes.len(), 1);
        plan.add(&Prepared::new(&other_key_earlier)).unwrap();
        assert_eq!(
            plan.hosts()[0].row.key_id,
            key(1),
            "issued before the held state"
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
        assert!(plan.attestations.is_empty() && plan.log.frontier().size() == 0);
    }
}
