//! GPU identity conflicts: the same UUID or serial reported by two hosts means double counting
//! or diversion. The device counts once, for the host that reported it first, and every
//! conflict is raised as an event.

use std::collections::{HashMap, HashSet};

/// Which identifier two hosts share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// The GPU UUID.
    Uuid,
    /// The board serial number.
    Serial,
}

/// One GPU claimed by a second host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Which identifier.
    pub kind: IdKind,
    /// Its value.
    pub value: String,
    /// The host that holds it.
    pub owner: String,
    /// The host that also reported it.
    pub claimant: String,
}

/// Who owns each GPU identifier, from every host's latest attestation.
#[derive(Debug, Clone, Default)]
pub struct GpuIndex {
    owners: HashMap<(IdKind, String), String>,
    by_host: HashMap<String, Vec<(IdKind, String)>>,
    /// Conflicts already reported per claiming host, so a standing conflict is raised once,
    /// not on every attestation.
    reported: HashMap<String, HashSet<(IdKind, String)>>,
}

/// One GPU as reported: its identifiers (empty when the query failed).
#[derive(Debug, Clone, Copy)]
pub struct GpuIds<'a> {
    /// `GPU-…` UUID.
    pub uuid: &'a str,
    /// Board serial.
    pub serial: &'a str,
}

impl GpuIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces `host`'s GPUs with `gpus` and returns, per GPU, whether it counts for this host
    /// (false when another host already holds one of its identifiers), with the conflicts that
    /// are new since this host's previous update.
    pub fn update(&mut self, host: &str, gpus: &[GpuIds<'_>]) -> (Vec<bool>, Vec<Conflict>) {
        if self.holds_exactly(host, gpus) {
            // The GPUs of the host's previous update, every one counted then: they are still
            // the host's, and no conflict stands (the common case, without an allocation).
            if let Some(reported) = self.reported.get_mut(host) {
                reported.clear();
            }
            return (vec![true; gpus.len()], Vec::new());
        }
        self.replace(host, gpus)
    }

    /// Whether `gpus` carry exactly the identifiers `host` holds, in the same order.
    fn holds_exactly(&self, host: &str, gpus: &[GpuIds<'_>]) -> bool {
        let Some(held) = self.by_host.get(host) else {
            return false;
        };
        let mut held = held.iter();
        for gpu in gpus {
            for (kind, value) in [(IdKind::Uuid, gpu.uuid), (IdKind::Serial, gpu.serial)] {
                if !is_identifier(value) {
                    continue;
                }
                match held.next() {
                    Some((held_kind, held_value)) if *held_kind == kind && held_value == value => {}
                    _ => return false,
                }
            }
        }
        held.next().is_none()
    }

    /// `update` the long way: releases the host's identifiers and claims them again.
    fn replace(&mut self, host: &str, gpus: &[GpuIds<'_>]) -> (Vec<bool>, Vec<Conflict>) {
        self.release_ids(host);
        let mut counted = Vec::with_capacity(gpus.len());
        let mut conflicts = Vec::new();
        let mut held = Vec::new();
        for gpu in gpus {
            let ids: Vec<(IdKind, String)> =
                [(IdKind::Uuid, gpu.uuid), (IdKind::Serial, gpu.serial)]
                    .into_iter()
                    .filter(|(_, value)| is_identifier(value))
                    .map(|(kind, value)| (kind, value.to_owned()))
                    .collect();
            let taken: Vec<Conflict> = ids
                .iter()
                .filter_map(|id| {
                    self.owners
                        .get(id)
                        .filter(|owner| owner.as_str() != host)
                        .map(|owner| Conflict {
                            kind: id.0,
                            value: id.1.clone(),
                            owner: owner.clone(),
                            claimant: host.to_owned(),
                        })
                })
                .collect();
            if taken.is_empty() {
                for id in ids {
                    self.owners.insert(id.clone(), host.to_owned());
                    held.push(id);
                }
                counted.push(true);
            } else {
                conflicts.extend(taken);
                counted.push(false);
            }
        }
        self.by_host.insert(host.to_owned(), held);
        let standing: HashSet<(IdKind, String)> = conflicts
            .iter()
            .map(|c| (c.kind, c.value.clone()))
            .collect();
        let before = self
            .reported
            .insert(host.to_owned(), standing)
            .unwrap_or_default();
        conflicts.retain(|c| !before.contains(&(c.kind, c.value.clone())));
        (counted, conflicts)
    }

    /// Forgets `host`'s GPUs (decommissioned, or before its new inventory is applied).
    pub fn release(&mut self, host: &str) {
        self.reported.remove(host);
        self.release_ids(host);
    }

    fn release_ids(&mut self, host: &str) {
        for id in self.by_host.remove(host).unwrap_or_default() {
            if self.owners.get(&id).is_some_and(|owner| owner == host) {
                self.owners.remove(&id);
            }
        }
    }

    /// Identifiers held, for tests and metrics.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

/// Placeholders some boards report instead of a serial are not identifiers.
fn is_identifier(value: &str) -> bool {
    let value = value.trim();
    !value.is_empty() && !matches!(value, "0" | "N/A" | "[N/A]" | "Unknown" | "0000000000000")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu<'a>(uuid: &'a str, serial: &'a str) -> GpuIds<'a> {
        GpuIds { uuid, serial }
    }

    #[test]
    fn a_gpu_on_two_hosts_counts_once_for_the_first() {
        let mut index = GpuIndex::new();
        let (counted, conflicts) = index.update("a", &[gpu("GPU-1", "S1"), gpu("GPU-2", "S2")]);
        assert_eq!((counted, conflicts.len()), (vec![true, true], 0));

        let (counted, conflicts) = index.update("b", &[gpu("GPU-2", "S9"), gpu("GPU-3", "S3")]);
        assert_eq!(counted, [false, true]);
        assert_eq!(
            conflicts,
            [Conflict {
                kind: IdKind::Uuid,
                value: "GPU-2".into(),
                owner: "a".into(),
                claimant: "b".into()
            }]
        );
        // A standing conflict is reported once, however often the host attests.
        let (counted, again) = index.update("b", &[gpu("GPU-2", "S9"), gpu("GPU-3", "S3")]);
        assert_eq!((counted, again.len()), (vec![false, true], 0));
        // Same serial under another UUID is a conflict too.
        let (counted, conflicts) = index.update("c", &[gpu("GPU-4", "S1")]);
        assert_eq!((counted, conflicts[0].kind), (vec![false], IdKind::Serial));
    }

    #[test]
    fn a_moved_gpu_is_released_and_can_be_claimed() {
        let mut index = GpuIndex::new();
        index.update("a", &[gpu("GPU-1", "S1")]);
        index.update("a", &[]);
        let (counted, conflicts) = index.update("b", &[gpu("GPU-1", "S1")]);
        assert_eq!((counted, conflicts.len()), (vec![true], 0));
        // Re-attesting the same GPUs is never a conflict with oneself.
        let (counted, _) = index.update("b", &[gpu("GPU-1", "S1")]);
        assert_eq!(counted, [true]);
        index.release("b");
        assert!(index.is_empty());
    }

    /// The shortcut for an unchanged inventory must leave the index as the long way does.
    #[test]
    fn updates_with_and_without_the_shortcut_agree() {
        let uuids = ["GPU-1", "GPU-2", "GPU-3", "", "N/A"];
        let serials = ["S1", "S2", "S3", "0", ""];
        let hosts = ["a", "b", "c"];
        let (mut fast, mut slow) = (GpuIndex::new(), GpuIndex::new());
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        let mut inventories: Vec<Vec<GpuIds<'_>>> = vec![Vec::new(); hosts.len()];
        for step in 0..5_000 {
            let host = next(hosts.len());
            match next(10) {
                // Mostly the same inventory again, as real hosts report it.
                0..=5 => {}
                6 => {
                    fast.release(hosts[host]);
                    slow.release(hosts[host]);
                    continue;
                }
                _ => {
                    inventories[host] = (0..next(4))
                        .map(|_| gpu(uuids[next(uuids.len())], serials[next(serials.len())]))
                        .collect();
                }
            }
            let gpus = &inventories[host];
            assert_eq!(
                fast.update(hosts[host], gpus),
                slow.replace(hosts[host], gpus),
                "step {step}"
            );
            assert_eq!(fast.owners, slow.owners, "step {step}");
            assert_eq!(fast.by_host, slow.by_host, "step {step}");
            assert_eq!(fast.reported, slow.reported, "step {step}");
        }
    }

    #[test]
    fn placeholder_serials_are_ignored() {
        let mut index = GpuIndex::new();
        index.update("a", &[gpu("GPU-1", "N/A")]);
        let (counted, conflicts) = index.update("b", &[gpu("GPU-2", "N/A"), gpu("", "")]);
        assert_eq!((counted, conflicts.len()), (vec![true, true], 0));
    }
}
