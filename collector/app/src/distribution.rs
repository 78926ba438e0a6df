//! Distributions at a past instant, replayed from the stored history of host changes.

use std::collections::BTreeMap;

use collector_store::HostChange;

/// Each host's latest change among `changes` (oldest first), decommissioned hosts dropped: the
/// hosts a past distribution counts.
pub fn replay(changes: &[HostChange]) -> BTreeMap<&str, &HostChange> {
    let mut hosts = BTreeMap::new();
    for change in changes {
        if change.decommissioned {
            hosts.remove(change.host_id.as_str());
        } else {
            hosts.insert(change.host_id.as_str(), change);
        }
    }
    hosts
}
