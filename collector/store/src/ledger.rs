//! The ledger's books as a store keeps them: `HostUpdate`s made from the ledger's decisions,
//! and the ledger restored from what was persisted. Both directions live here, so what a
//! store writes and what a restart reads back cannot drift apart.

use std::collections::HashMap;

use collector_core::ledger::{ChainPoint, GpuClaim, HostChange as LedgerChange};
use collector_core::{HostRecord, KeyRecord, Ledger, LedgerEvent};
use proto_accounting::{CountryCode, EvidenceRule};

use crate::{
    AttestationStore, ChainDigest, Event, Gpu, HostChange, HostId, HostState, HostUpdate, KeyId,
    SiteId, StoreError,
};

/// Kind of the event recorded when a stale host is heard again.
pub const SILENCE_EVENT: &str = "silence";

/// The stored event of something the ledger flagged at `at_ms`. Its kind is the event's code
/// (`gap`, `gpu_conflict`, `decommissioned_host_attesting`, `silence`,
/// `key_revoked_by_rebind`, `gpu_evidence_refused`, `gpu_relabelled`); its number (`value`) is
/// a gap's missing count, a silence's start, a decommissioning time, or a refused report's
/// device index.
pub fn event(at_ms: i64, event: &LedgerEvent) -> Event {
    let (kind, host, key, detail, value) = match event {
        LedgerEvent::Gap {
            host,
            key,
            sequence,
            missing,
        } => (
            "gap",
            host.clone(),
            key,
            format!("{missing} attestation(s) missing before sequence {sequence}"),
            i64::try_from(*missing).ok(),
        ),
        LedgerEvent::GpuConflict { key, conflict } => (
            "gpu_conflict",
            conflict.claimant.clone(),
            key,
            format!(
                "GPU {} {} is also reported by {} (counted there)",
                conflict.kind.as_str(),
                conflict.value,
                conflict.owner
            ),
            None,
        ),
        LedgerEvent::DecommissionedHostAttesting {
            host,
            key,
            decommissioned_at_ms,
        } => (
            "decommissioned_host_attesting",
            host.clone(),
            key,
            format!(
                "decommissioned at {decommissioned_at_ms} ms and attesting again: kept as evidence, never counted"
            ),
            Some(*decommissioned_at_ms),
        ),
        LedgerEvent::Silence { host, key, from_ms } => (
            SILENCE_EVENT,
            host.clone(),
            key,
            format!(
                "stale for {} s, beyond the freshness window, until heard again",
                at_ms.saturating_sub(*from_ms) / 1000
            ),
            Some(*from_ms),
        ),
        LedgerEvent::GpuEvidenceRefused {
            host,
            key,
            device,
            reason,
            detail,
        } => (
            "gpu_evidence_refused",
            host.clone(),
            key,
            format!("device {device}: hardware report refused ({reason}): {detail}"),
            Some(i64::from(*device)),
        ),
        LedgerEvent::GpuRelabelled { host, key, detail } => {
            ("gpu_relabelled", host.clone(), key, detail.clone(), None)
        }
        LedgerEvent::KeyRevokedByRebind { host, key } => (
            "key_revoked_by_rebind",
            host.clone(),
            key,
            "an administrator re-bound the host to a new key".to_owned(),
            None,
        ),
    };
    Event {
        at_ms,
        kind: kind.to_owned(),
        host_id: Some(HostId(host)),
        key_id: Some(*key),
        detail,
        value,
    }
}

/// The persisted form of a host's record after a ledger decision, with its change.
pub fn host_update(
    host: &str,
    record: &HostRecord,
    catalogue_ids: &[&str],
    change: Option<&LedgerChange>,
) -> HostUpdate {
    HostUpdate {
        state: host_state(host, record),
        gpus: gpus(&record.gpus, catalogue_ids),
        change: change.map(host_change),
    }
}

/// A host record as its `host_state` row.
pub fn host_state(host: &str, record: &HostRecord) -> HostState {
    HostState {
        host_id: HostId(host.to_owned()),
        site_id: SiteId(record.site.clone()),
        country: record.country.to_string(),
        key_id: record.key,
        last_sequence: record.last_sequence,
        last_digest: record.last_digest,
        last_issued_at_ms: record.last_issued_ms,
        last_received_at_ms: record.last_received_ms,
        tpp: record.tpp,
        devices: record.devices,
        decommissioned_at_ms: record.decommissioned_at_ms,
    }
}

/// A ledger change as a stored host change.
pub fn host_change(change: &LedgerChange) -> HostChange {
    HostChange {
        at_ms: change.at_ms,
        host_id: HostId(change.host.clone()),
        site_id: SiteId(change.site.clone()),
        country: change.country.to_string(),
        tpp: change.tpp,
        devices: change.devices,
        decommissioned: !change.counts,
        hardware_tpp: change.hardware_tpp,
    }
}

/// A host's GPU claims as stored GPUs; `catalogue_ids` per position (missing ones empty).
pub fn gpus(claims: &[GpuClaim], catalogue_ids: &[&str]) -> Vec<Gpu> {
    claims
        .iter()
        .enumerate()
        .map(|(position, claim)| Gpu {
            uuid: claim.uuid.clone(),
            serial: claim.serial.clone(),
            catalogue_id: catalogue_ids
                .get(position)
                .copied()
                .unwrap_or_default()
                .to_owned(),
            tpp: claim.tpp,
            counted: claim.counted,
            hardware: claim.hardware.clone(),
            hardware_at_ms: claim.hardware_at_ms,
        })
        .collect()
}

/// The ledger as `store` persisted it: keys with their chain heads, hosts with their GPUs.
pub fn load_ledger(
    store: &dyn AttestationStore,
    freshness_ms: i64,
    evidence: EvidenceRule,
    now_ms: i64,
) -> Result<Ledger, StoreError> {
    let heads: HashMap<KeyId, (u64, ChainDigest, i64)> = store
        .chain_heads()?
        .into_iter()
        .map(|head| (head.key_id, (head.sequence, head.digest, head.issued_at_ms)))
        .collect();
    let mut keys = Vec::new();
    for agent in store.agents()? {
        let country = country(&agent.country, &agent.host_id.0)?;
        let head = heads
            .get(&agent.key_id)
            .map(|&(sequence, digest, issued_at_ms)| ChainPoint {
                sequence,
                digest,
                issued_at_ms,
            });
        keys.push((
            agent.key_id,
            KeyRecord {
                host: agent.host_id.0,
                site: agent.site_id.0,
                country,
                enrolled_at_ms: agent.enrolled_at_ms,
                revoked_at_ms: agent.revoked_at_ms,
                head,
            },
        ));
    }
    let mut claims: HashMap<String, Vec<GpuClaim>> = HashMap::new();
    for (host, gpu) in store.host_gpus()? {
        claims.entry(host).or_default().push(GpuClaim {
            uuid: gpu.uuid,
            serial: gpu.serial,
            tpp: gpu.tpp,
            counted: gpu.counted,
            hardware: gpu.hardware,
            hardware_at_ms: gpu.hardware_at_ms,
        });
    }
    let mut hosts = Vec::new();
    for state in store.host_states()? {
        let country = country(&state.country, &state.host_id.0)?;
        let gpus = claims.remove(&state.host_id.0).unwrap_or_default();
        hosts.push((
            state.host_id.0,
            HostRecord {
                site: state.site_id.0,
                country,
                key: state.key_id,
                tpp: state.tpp,
                // Recomputed by the ledger from the GPUs' hardware identities and times.
                hardware_tpp: 0,
                devices: state.devices,
                gpus,
                decommissioned_at_ms: state.decommissioned_at_ms,
                last_received_ms: state.last_received_at_ms,
                last_issued_ms: state.last_issued_at_ms,
                last_sequence: state.last_sequence,
                last_digest: state.last_digest,
            },
        ));
    }
    Ledger::restore(keys, hosts, freshness_ms, evidence, now_ms)
        .map_err(|e| StoreError::Corrupt(e.0))
}

fn country(text: &str, host: &str) -> Result<CountryCode, StoreError> {
    CountryCode::parse(text)
        .map_err(|e| StoreError::Corrupt(format!("host {host} has country {text:?}: {e}")))
}
