//! When the next attestation is due: on an interval with jitter, and at once when the
//! inventory changes (a device added, removed or failing).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::PricedInventory;

/// The attestation interval and its jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Mean time between attestations.
    pub interval: Duration,
    /// Largest deviation from the interval, in per mille of it (100 = ±10 %).
    pub jitter_per_mille: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            jitter_per_mille: 100,
        }
    }
}

impl Schedule {
    /// The delay before the next periodic attestation, given a uniformly random `u32`. Jitter
    /// keeps thousands of hosts from attesting in the same second after a collector restart.
    pub fn delay(&self, random: u32) -> Duration {
        let interval = self.interval.as_millis() as u64;
        let spread = interval * u64::from(self.jitter_per_mille.min(1000)) / 1000;
        if spread == 0 {
            return self.interval;
        }
        // Map the random value onto [interval − spread, interval + spread].
        let offset = u64::from(random) % (2 * spread + 1);
        Duration::from_millis(interval - spread + offset)
    }
}

/// What makes two inventories "the same" for scheduling: each device's identity, model and
/// health. Clocks and other readings do not count as changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(BTreeMap<String, (String, bool)>);

/// One difference between two fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A device appeared.
    Added(String),
    /// A device disappeared.
    Removed(String),
    /// A device started or stopped failing queries, or changed model.
    Changed(String),
}

impl Fingerprint {
    /// The fingerprint of a priced inventory. Devices are keyed by UUID, or by index when the
    /// UUID query failed.
    pub fn of(inventory: &PricedInventory) -> Self {
        Self(
            inventory
                .devices
                .iter()
                .map(|device| {
                    let record = &device.record;
                    let key = if record.uuid.is_empty() {
                        format!("index {}", record.index)
                    } else {
                        record.uuid.clone()
                    };
                    (
                        key,
                        (record.catalogue_id.clone(), !record.faults.is_empty()),
                    )
                })
                .collect(),
        )
    }

    /// Every difference from `before` to `self`.
    pub fn changes_since(&self, before: &Fingerprint) -> Vec<Change> {
        let mut changes = Vec::new();
        for (key, value) in &self.0 {
            match before.0.get(key) {
                None => changes.push(Change::Added(key.clone())),
                Some(old) if old != value => changes.push(Change::Changed(key.clone())),
                Some(_) => {}
            }
        }
        for key in before.0.keys() {
            if !self.0.contains_key(key) {
                changes.push(Change::Removed(key.clone()));
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use proto_accounting::{Catalogue, Policy};

    use super::*;
    use crate::fake::{h100, lost};
    use crate::{FakeGpuSource, GpuSource, price};

    fn fingerprint(source: &FakeGpuSource) -> Fingerprint {
        let inventory = source.enumerate().unwrap();
        Fingerprint::of(&price(
            &inventory,
            &Catalogue::builtin().unwrap(),
            &Policy::uveu_2025_us().unwrap(),
        ))
    }

    #[test]
    fn delay_stays_within_the_jitter() {
        let schedule = Schedule::default();
        for random in [0, 1, 59_999, 12_000, u32::MAX] {
            let delay = schedule.delay(random);
            assert!(
                delay >= Duration::from_secs(54) && delay <= Duration::from_secs(66),
                "{delay:?}"
            );
        }
        assert_eq!(schedule.delay(0), Duration::from_secs(54));
        let fixed = Schedule {
            interval: Duration::from_secs(1),
            jitter_per_mille: 0,
        };
        assert_eq!(fixed.delay(12345), Duration::from_secs(1));
    }

    #[test]
    fn added_removed_and_failing_devices_are_changes() {
        let source = FakeGpuSource::healthy(2);
        let before = fingerprint(&source);
        assert!(fingerprint(&source).changes_since(&before).is_empty());

        source.set_devices(vec![h100(0), h100(1), h100(2)]);
        let added = fingerprint(&source);
        assert_eq!(added.changes_since(&before), [Change::Added(h100(2).uuid)]);

        source.set_devices(vec![h100(0)]);
        assert_eq!(
            fingerprint(&source).changes_since(&before),
            [Change::Removed(h100(1).uuid)]
        );

        let mut failing = h100(1);
        failing.faults = lost(1).faults;
        source.set_devices(vec![h100(0), failing]);
        assert_eq!(
            fingerprint(&source).changes_since(&before),
            [Change::Changed(h100(1).uuid)]
        );
    }

    #[test]
    fn a_device_lost_after_three_enumerations_is_noticed() {
        let source = FakeGpuSource::device_lost_after(3);
        let first = fingerprint(&source);
        for _ in 0..2 {
            assert!(fingerprint(&source).changes_since(&first).is_empty());
        }
        assert!(!fingerprint(&source).changes_since(&first).is_empty());
        assert_eq!(source.enumerations(), 4);
    }
}
