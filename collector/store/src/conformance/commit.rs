//! Checks of `commit`: what is stored, what a repeat or a fork does, and the host states and
//! chain heads that commits leave.

use std::sync::Barrier;
use std::thread;

use super::fixture::{self, agent, attestation, batch, digest, key, state_of, unindexed};
use super::{Failure, ensure, ensure_eq};
use crate::{AttestationStore, Batch, CommitReceipt, HostId, SiteId, StoreError, StoredHead};

type Outcome = Result<(), Failure>;

fn receipt(stored: usize, repeated: usize) -> CommitReceipt {
    CommitReceipt { stored, repeated }
}

/// The head of fixture key `n` at `sequence`, issued at `issued_at_ms`.
fn head(n: u8, sequence: u64, issued_at_ms: i64) -> StoredHead {
    StoredHead {
        key_id: key(n),
        sequence,
        digest: digest(n, sequence),
        issued_at_ms,
    }
}

fn everything(store: &dyn AttestationStore) -> Result<Vec<crate::AcceptedAttestation>, Failure> {
    Ok(unindexed(store.attestations(
        i64::MIN,
        i64::MAX,
        None,
        usize::MAX,
    )?))
}

pub(super) fn reads_back_exact_envelopes(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    store.put_agent(&agent(2, "host-b"))?;
    let first = attestation(1, 1, "host-a", 1_000);
    let mut second = attestation(1, 2, "host-a", 2_000);
    second.envelope = Vec::new();
    second.simulated = true;
    second.gap_before = 3;
    second.gpus.truncate(1);
    let mut other = attestation(2, 1, "host-b", 1_500);
    other.envelope = fixture::envelope(2, 1, 64 * 1024);
    other.gpus.clear();
    other.devices = 0;
    other.tpp = 0;

    let batch = batch(vec![first.clone(), second.clone(), other.clone()]);
    ensure_eq!(store.commit_blocking(batch)?, receipt(3, 0));
    ensure_eq!(
        everything(store)?,
        vec![first.clone(), other, second.clone()]
    );
    ensure_eq!(store.stored_digest(&key(1), 2)?, Some(second.digest));
    ensure_eq!(store.stored_digest(&key(1), 3)?, None);
    ensure_eq!(store.stored_digest(&key(3), 1)?, None);
    ensure_eq!(store.stored_digest(&key(1), u64::MAX)?, None);

    // The async path stores the same way.
    let third = attestation(1, 3, "host-a", 3_000);
    let receipt_async = store.commit(fixture::batch(vec![third.clone()])).wait()?;
    ensure_eq!(receipt_async, receipt(1, 0));
    ensure_eq!(
        unindexed(store.host_history("host-a", 0, i64::MAX, 10)?),
        vec![first, second, third]
    );
    Ok(())
}

pub(super) fn updates_host_state(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    let first = attestation(1, 1, "host-a", 1_000);
    store.commit_blocking(batch(vec![first.clone()]))?;
    ensure_eq!(store.host_states()?, vec![state_of(&first, None)]);

    let mut moved = attestation(1, 2, "host-a", 2_000);
    moved.site_id = SiteId("site-elsewhere".to_owned());
    moved.country = "FR".to_owned();
    moved.gpus.truncate(4);
    moved.tpp = 4 * 63_328;
    moved.devices = 4;
    store.commit_blocking(batch(vec![moved.clone()]))?;
    ensure_eq!(store.host_states()?, vec![state_of(&moved, None)]);
    Ok(())
}

/// The store decides nothing about hosts: it keeps the ledger's update as given, uncounted
/// GPUs and all, and appends its changes in commit order.
pub(super) fn host_updates_persist_as_given(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    let mut a1 = attestation(1, 1, "host-a", 1_000);
    a1.gpus[2].counted = false;
    a1.tpp = 7 * 63_328;
    a1.devices = 7;
    let mut update = fixture::updates(std::slice::from_ref(&a1));
    update[0].gpus = a1.gpus.clone();
    store.commit_blocking(Batch {
        attestations: vec![a1.clone()],
        hosts: update,
        ..Batch::default()
    })?;
    ensure_eq!(store.host_states()?, vec![state_of(&a1, None)]);
    let gpus: Vec<crate::Gpu> = store.host_gpus()?.into_iter().map(|(_, g)| g).collect();
    ensure_eq!(gpus, a1.gpus);
    // A link without an update (the ledger changed nothing) leaves the host as it was.
    let a2 = attestation(1, 2, "host-a", 2_000);
    store.commit_blocking(Batch {
        attestations: vec![a2],
        ..Batch::default()
    })?;
    ensure_eq!(store.host_states()?, vec![state_of(&a1, None)]);
    let changes = store.host_changes(i64::MAX)?;
    ensure_eq!(changes.len(), 1);
    ensure_eq!(changes[0].tpp, 7 * 63_328);
    Ok(())
}

/// A re-binding revokes the host's earlier keys, resets it to "nothing attested" at its new
/// site, releases its GPUs and records the ledger's change; a known key cannot be re-bound.
pub(super) fn rebind_revokes_and_resets(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    let a1 = attestation(1, 1, "host-a", 1_000);
    store.commit_blocking(batch(vec![a1.clone()]))?;
    let mut new = agent(2, "host-a");
    new.site_id = SiteId("site-elsewhere".to_owned());
    new.country = "FR".to_owned();
    new.enrolled_at_ms = 5_000;
    let change = crate::HostChange {
        at_ms: 5_000,
        host_id: HostId("host-a".to_owned()),
        site_id: new.site_id.clone(),
        country: "FR".to_owned(),
        tpp: 0,
        devices: 0,
        decommissioned: true,
        hardware_tpp: 0,
    };
    store.rebind_host(&new, Some(&change))?;
    ensure_eq!(
        store.agent(&key(1))?.and_then(|a| a.revoked_at_ms),
        Some(5_000)
    );
    ensure_eq!(store.agent(&key(2))?, Some(new.clone()));
    let mut expected = fixture::enrolled_state(&new);
    expected.last_issued_at_ms = a1.issued_at_ms;
    expected.last_received_at_ms = a1.received_at_ms;
    ensure_eq!(store.host_states()?, vec![expected]);
    ensure!(
        store.host_gpus()?.is_empty(),
        "GPUs kept after a re-binding"
    );
    ensure_eq!(store.host_changes(i64::MAX)?.pop(), Some(change));
    match store.rebind_host(&new, None) {
        Err(StoreError::AlreadyEnrolled { .. }) => {}
        other => ensure!(false, "re-binding a known key gave {other:?}"),
    }
    match store.put_agent(&agent(3, "host-a")) {
        Err(StoreError::AlreadyEnrolled { .. }) => {}
        other => ensure!(false, "enrolling an existing host gave {other:?}"),
    }
    Ok(())
}

pub(super) fn idempotent_resubmission(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    let [a1, a2, a3] = [1, 2, 3].map(|s| attestation(1, s, "host-a", 1_000 * s as i64));
    let first = batch(vec![a1.clone(), a2.clone()]);
    ensure_eq!(store.commit_blocking(first.clone())?, receipt(2, 0));
    ensure_eq!(store.commit_blocking(first)?, receipt(0, 2));
    ensure_eq!(
        store.commit_blocking(batch(vec![a2.clone(), a3.clone()]))?,
        receipt(1, 1)
    );
    // A repeat of an old link (which the ledger never applies twice) changes nothing.
    ensure_eq!(
        store.commit_blocking(Batch {
            attestations: vec![a1.clone()],
            ..Batch::default()
        })?,
        receipt(0, 1)
    );
    ensure_eq!(everything(store)?, vec![a1, a2, a3.clone()]);
    ensure_eq!(store.host_states()?, vec![state_of(&a3, None)]);
    Ok(())
}

pub(super) fn conflicting_digest_stores_nothing(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    let a1 = attestation(1, 1, "host-a", 1_000);
    store.commit_blocking(batch(vec![a1.clone()]))?;

    let mut fork = a1.clone();
    fork.digest = digest(9, 9);
    fork.envelope = fixture::envelope(9, 9, 100);
    let doomed = Batch {
        attestations: vec![attestation(1, 2, "host-a", 2_000), fork],
        hosts: Vec::new(),
        events: vec![fixture::event(2_000, "gap", "lost")],
        rejections: vec![fixture::rejection(2_000, "replay", "again")],
    };
    match store.commit_blocking(doomed) {
        Err(StoreError::Conflict { key_id, sequence }) => {
            ensure_eq!((key_id, sequence), (key(1), 1));
        }
        other => ensure!(false, "expected a conflict, got {other:?}"),
    }
    ensure_eq!(everything(store)?, vec![a1.clone()]);
    ensure_eq!(store.stored_digest(&key(1), 2)?, None);
    ensure!(store.events(i64::MIN, 10)?.is_empty(), "an event survived");
    ensure!(store.rejections(10)?.is_empty(), "a rejection survived");
    ensure!(store.rejection_counts()?.is_empty(), "a count survived");
    ensure_eq!(store.host_states()?, vec![state_of(&a1, None)]);
    ensure_eq!(
        store.chain_heads()?,
        vec![StoredHead {
            key_id: key(1),
            sequence: 1,
            digest: a1.digest,
            issued_at_ms: a1.issued_at_ms,
        }]
    );
    Ok(())
}

pub(super) fn unknown_key_stores_nothing(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    let known = attestation(1, 1, "host-a", 1_000);
    let unknown = attestation(9, 4, "host-z", 1_000);
    let doomed = Batch {
        attestations: vec![known, unknown],
        hosts: Vec::new(),
        events: vec![fixture::event(1_000, "gap", "x")],
        rejections: Vec::new(),
    };
    match store.commit_blocking(doomed) {
        Err(StoreError::UnknownKey { key_id, sequence }) => {
            ensure_eq!((key_id, sequence), (key(9), 4));
        }
        other => ensure!(false, "expected an unknown key, got {other:?}"),
    }
    ensure!(everything(store)?.is_empty(), "an attestation survived");
    ensure_eq!(
        store.host_states()?,
        vec![fixture::enrolled_state(&agent(1, "host-a"))]
    );
    ensure!(store.events(i64::MIN, 10)?.is_empty(), "an event survived");
    Ok(())
}

pub(super) fn conflict_spares_concurrent_batches(store: &dyn AttestationStore) -> Outcome {
    const COMMITTERS: u8 = 8;
    store.put_agent(&agent(1, "host-a"))?;
    for n in 2..2 + COMMITTERS {
        store.put_agent(&agent(n, &format!("host-{n}")))?;
    }
    store.commit_blocking(batch(vec![attestation(1, 1, "host-a", 1_000)]))?;

    // All committers start together, so an implementation that groups commits gets the
    // conflicting batch into a group with others.
    let start = Barrier::new(usize::from(COMMITTERS));
    let results: Vec<_> = thread::scope(|scope| {
        let committers: Vec<_> = (2..2 + COMMITTERS)
            .map(|n| {
                let start = &start;
                scope.spawn(move || {
                    let batch = if n == 2 {
                        let mut fork = attestation(1, 1, "host-a", 1_000);
                        fork.digest = digest(9, 9);
                        batch(vec![fork])
                    } else {
                        Batch {
                            attestations: vec![attestation(n, 1, &format!("host-{n}"), 2_000)],
                            hosts: Vec::new(),
                            events: vec![fixture::event(2_000, "gap", &n.to_string())],
                            rejections: Vec::new(),
                        }
                    };
                    start.wait();
                    store.commit_blocking(batch)
                })
            })
            .collect();
        committers.into_iter().map(|c| c.join()).collect()
    });
    for (i, result) in results.into_iter().enumerate() {
        match (i, result) {
            (0, Ok(Err(StoreError::Conflict { .. }))) => {}
            (0, other) => ensure!(false, "the fork got {other:?}"),
            (_, Ok(Ok(r))) => ensure_eq!(r, receipt(1, 0)),
            (i, other) => ensure!(false, "committer {i} got {other:?}"),
        }
    }
    ensure_eq!(everything(store)?.len(), usize::from(COMMITTERS));
    ensure_eq!(
        store.events(i64::MIN, 100)?.len(),
        usize::from(COMMITTERS) - 1
    );
    Ok(())
}

pub(super) fn futures_resolve_in_any_order(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    let futures: Vec<_> = (1..=4)
        .map(|s| store.commit(batch(vec![attestation(1, s, "host-a", 1_000 * s as i64)])))
        .collect();
    for future in futures.into_iter().rev() {
        ensure_eq!(future.wait()?, receipt(1, 0));
    }
    ensure_eq!(everything(store)?.len(), 4);
    // A future dropped before it resolved may or may not have stored; it breaks nothing.
    drop(store.commit(batch(vec![attestation(1, 5, "host-a", 5_000)])));
    ensure_eq!(
        store.commit_blocking(batch(vec![attestation(1, 6, "host-a", 6_000)]))?,
        receipt(1, 0)
    );
    Ok(())
}

pub(super) fn empty_and_partial_batches(store: &dyn AttestationStore) -> Outcome {
    ensure_eq!(store.commit_blocking(Batch::default())?, receipt(0, 0));
    let only_records = Batch {
        attestations: Vec::new(),
        hosts: Vec::new(),
        events: vec![fixture::event(1_000, "gap", "x")],
        rejections: vec![fixture::rejection(1_000, "bad_signature", "y")],
    };
    ensure_eq!(store.commit_blocking(only_records.clone())?, receipt(0, 0));
    ensure_eq!(store.events(i64::MIN, 10)?, only_records.events);
    ensure_eq!(store.rejections(10)?, only_records.rejections);
    ensure!(everything(store)?.is_empty(), "an attestation appeared");
    Ok(())
}

pub(super) fn chain_heads_track_highest(store: &dyn AttestationStore) -> Outcome {
    ensure!(store.chain_heads()?.is_empty(), "an empty store has heads");
    for n in 1..=3 {
        store.put_agent(&agent(n, &format!("host-{n}")))?;
    }
    let at = |n: u8, s: u64| attestation(n, s, &format!("host-{n}"), 1_000 * s as i64);
    store.commit_blocking(batch(vec![at(1, 1), at(1, 2), at(1, 3)]))?;
    store.commit_blocking(batch(vec![at(2, 7)]))?;
    store.commit_blocking(batch(vec![at(3, 5)]))?;
    // Lower links and repeats never lower a head.
    store.commit_blocking(batch(vec![at(3, 4), at(1, 2)]))?;
    ensure_eq!(
        store.chain_heads()?,
        vec![head(1, 3, 2_950), head(2, 7, 6_950), head(3, 5, 4_950),]
    );
    ensure_eq!(store.chain_head(&key(2))?, Some((7, digest(2, 7))));
    ensure_eq!(store.chain_head(&key(9))?, None);
    Ok(())
}

pub(super) fn host_gpus_follow_latest_inventory(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    store.put_agent(&agent(2, "host-b"))?;
    let a1 = attestation(1, 1, "host-a", 1_000);
    let mut b1 = attestation(2, 1, "host-b", 1_000);
    b1.gpus.truncate(2);
    store.commit_blocking(batch(vec![a1.clone(), b1.clone()]))?;

    let owners = |gpus: &[crate::Gpu], host: &str| -> Vec<(String, crate::Gpu)> {
        gpus.iter().map(|g| (host.to_owned(), g.clone())).collect()
    };
    let expected = [owners(&a1.gpus, "host-a"), owners(&b1.gpus, "host-b")].concat();
    ensure_eq!(store.host_gpus()?, expected);

    // A swapped GPU replaces the host's list; the older attestation keeps its own list.
    let mut a2 = attestation(1, 2, "host-a", 2_000);
    a2.gpus[3] = fixture::gpu("spare", 99);
    let a3 = {
        let mut a3 = attestation(1, 3, "host-a", 3_000);
        a3.gpus = a2.gpus.clone();
        a3
    };
    store.commit_blocking(batch(vec![a2.clone()]))?;
    store.commit_blocking(batch(vec![a3.clone()]))?;
    let expected = [owners(&a2.gpus, "host-a"), owners(&b1.gpus, "host-b")].concat();
    ensure_eq!(store.host_gpus()?, expected);
    ensure_eq!(
        unindexed(store.host_history("host-a", 0, i64::MAX, 10)?),
        vec![a1, a2, a3]
    );
    Ok(())
}
