//! Checks of hardware evidence as stored: each GPU's hardware identity and the time it was last
//! proven, and each host change's hardware-attested TPP, kept exactly as the ledger gave them,
//! through every read and across a reopening.

use super::fixture::{self, agent, attestation, attested_gpu, batch, key, unindexed};
use super::{Failure, Opener, ensure, ensure_eq};
use crate::{AcceptedAttestation, AttestationStore, Gpu};

type Outcome = Result<(), Failure>;

/// Link `sequence` of key 1's chain from `host-a`, its GPUs `gpus`, its counted TPP and
/// devices those of its counted GPUs.
fn reporting(sequence: u64, at_ms: i64, gpus: Vec<Gpu>) -> AcceptedAttestation {
    let mut a = attestation(1, sequence, "host-a", at_ms);
    a.tpp = gpus.iter().filter(|g| g.counted).map(|g| g.tpp).sum();
    a.devices = u32::try_from(gpus.iter().filter(|g| g.counted).count()).unwrap_or(u32::MAX);
    a.gpus = gpus;
    a
}

/// Eight GPUs of `host-a`: the even ones with hardware evidence proven at `at_ms` (one of them
/// at the latest instant a store can hold, one not counted), the odd ones without.
fn mixed(at_ms: i64) -> Vec<Gpu> {
    (0..8)
        .map(|i| {
            let mut gpu = if i % 2 == 0 {
                attested_gpu("host-a", i, at_ms)
            } else {
                fixture::gpu("host-a", i)
            };
            if i == 6 {
                gpu.hardware_at_ms = i64::MAX;
            }
            gpu.counted = i != 2;
            gpu
        })
        .collect()
}

fn gpus_of(store: &dyn AttestationStore, host: &str) -> Result<Vec<Gpu>, Failure> {
    Ok(store
        .host_gpus()?
        .into_iter()
        .filter(|(owner, _)| owner == host)
        .map(|(_, gpu)| gpu)
        .collect())
}

/// Two GPU lists that differ only in hardware identity, or only in when it was proven, are
/// different lists: each attestation reads back its own, and the host's GPUs follow the
/// latest; each change keeps its hardware-attested TPP.
pub(super) fn hardware_identities_round_trip(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    store.put_agent(&agent(2, "host-b"))?;
    let a1 = reporting(1, 1_000, mixed(900));
    ensure!(
        fixture::hardware_tpp(&a1.gpus) == 3 * 63_328,
        "the list mixes attested, unattested and uncounted GPUs"
    );
    let b1 = attestation(2, 1, "host-b", 1_000);
    store.commit_blocking(batch(vec![a1.clone(), b1.clone()]))?;
    ensure_eq!(gpus_of(store, "host-a")?, a1.gpus);
    ensure_eq!(gpus_of(store, "host-b")?, b1.gpus);

    // The same devices without hardware evidence.
    let mut plain = a1.gpus.clone();
    for gpu in &mut plain {
        gpu.hardware.clear();
        gpu.hardware_at_ms = 0;
    }
    let a2 = reporting(2, 2_000, plain);
    // The first list again, then with its evidence proven anew.
    let a3 = reporting(3, 3_000, a1.gpus.clone());
    let mut reproven = a1.gpus.clone();
    for gpu in reproven.iter_mut().filter(|g| !g.hardware.is_empty()) {
        gpu.hardware_at_ms = gpu.hardware_at_ms.min(i64::MAX - 1) + 1;
    }
    let a4 = reporting(4, 4_000, reproven);
    for a in [&a2, &a3, &a4] {
        store.commit_blocking(batch(vec![a.clone()]))?;
        ensure_eq!(gpus_of(store, "host-a")?, a.gpus);
    }
    let history = vec![a1.clone(), a2.clone(), a3.clone(), a4.clone()];
    ensure_eq!(
        unindexed(store.host_history("host-a", 0, i64::MAX, 10)?),
        history
    );
    let everything = unindexed(store.attestations(0, i64::MAX, None, 10)?);
    ensure_eq!(everything.len(), 5);
    ensure_eq!(everything[0], a1);
    let latest = unindexed(store.latest_attestations(i64::MAX)?);
    ensure_eq!(latest, vec![a4.clone(), b1.clone()]);

    let attested: Vec<(String, u64)> = store
        .host_changes(i64::MAX)?
        .into_iter()
        .map(|c| (c.host_id.0, c.hardware_tpp))
        .collect();
    let expected =
        |host: &str, a: &AcceptedAttestation| (host.to_owned(), fixture::hardware_tpp(&a.gpus));
    ensure_eq!(
        attested,
        vec![
            expected("host-a", &a1),
            expected("host-b", &b1),
            expected("host-a", &a2),
            expected("host-a", &a3),
            expected("host-a", &a4),
        ]
    );
    ensure_eq!(attested[2].1, 0);

    // Decommissioning releases the GPUs and keeps their identities.
    ensure!(store.decommission("host-a", 5_000)?, "decommissioning");
    let mut released = a4.gpus.clone();
    for gpu in &mut released {
        gpu.counted = false;
    }
    ensure_eq!(gpus_of(store, "host-a")?, released);
    let last = store.host_changes(i64::MAX)?.pop();
    ensure!(
        last.is_some_and(|c| c.decommissioned && c.hardware_tpp == 0),
        "a decommissioned host attests no hardware"
    );
    Ok(())
}

/// What a host's hardware evidence left in the store reads back exactly from a store opened
/// again on the same database: the reads a restart restores the ledger from, the host listing,
/// the history and the host changes.
pub(super) fn hardware_survives_reopening(open: &Opener) -> Outcome {
    let store = open();
    store.put_agent(&agent(1, "host-a"))?;
    store.put_agent(&agent(2, "host-b"))?;
    let a1 = reporting(1, 1_000, mixed(900));
    let b1 = attestation(2, 1, "host-b", 1_500);
    let mut first = batch(vec![a1.clone(), b1.clone()]);
    if let Some(change) = first.hosts[1].change.as_mut() {
        // Any figure the ledger gives is kept as given, up to the largest a store holds.
        change.hardware_tpp = i64::MAX as u64;
    }
    store.commit_blocking(first)?;
    let gpus = store.host_gpus()?;
    let states = store.host_states()?;
    let changes = store.host_changes(i64::MAX)?;
    let history = store.host_history("host-a", 0, i64::MAX, 10)?;
    let heads = store.chain_heads()?;
    ensure_eq!(
        changes.iter().map(|c| c.hardware_tpp).collect::<Vec<_>>(),
        vec![3 * 63_328, i64::MAX as u64]
    );
    ensure_eq!(unindexed(history.clone()), vec![a1.clone()]);
    drop(store);

    let store = open();
    ensure_eq!(store.host_gpus()?, gpus);
    ensure_eq!(store.host_states()?, states);
    ensure_eq!(store.host_changes(i64::MAX)?, changes);
    ensure_eq!(store.host_history("host-a", 0, i64::MAX, 10)?, history);
    ensure_eq!(store.chain_heads()?, heads);
    ensure_eq!(gpus_of(store.as_ref(), "host-a")?, a1.gpus);
    ensure_eq!(store.stored_digest(&key(1), 1)?, Some(a1.digest));
    let ledger = crate::ledger::load_ledger(
        store.as_ref(),
        60_000,
        proto_accounting::EvidenceRule::default(),
        2_000,
    );
    ensure!(ledger.is_ok(), "the ledger restores: {:?}", ledger.err());
    Ok(())
}
