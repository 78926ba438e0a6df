//! Checks of `commit`: what is stored, what a repeat or a fork does, and the host states and
//! chain heads that commits leave.

use std::sync::Barrier;
use std::thread;

use super::fixture::{self, agent, attestation, batch, digest, key, state_of, unindexed};
use super::{Failure, ensure, ensure_eq};
use crate::{AttestationStore, Batch, CommitReceipt, StoreError};

type Outcome = Result<(), Failure>;

fn receipt(stored: usize, repeated: usize) -> CommitReceipt {
    CommitReceipt { stored, repeated }
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
    moved.site_id = "site-elsewhere".to_owned();
    moved.country = "FR".to_owned();
    moved.gpus.truncate(4);
    moved.tpp = 4 * 63_328;
    moved.devices = 4;
    store.commit_blocking(batch(vec![moved.clone()]))?;
    ensure_eq!(store.host_states()?, vec![state_of(&moved, None)]);
    Ok(())
}

pub(super) fn host_state_ignores_older_links(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    let newer = attestation(1, 5, "host-a", 5_000);
    let older = attestation(1, 3, "host-a", 6_000);
    store.commit_blocking(batch(vec![newer.clone()]))?;
    ensure_eq!(store.commit_blocking(batch(vec![older]))?, receipt(1, 0));
    ensure_eq!(store.host_states()?, vec![state_of(&newer, None)]);
    Ok(())
}

pub(super) fn reenrolled_host_takes_new_key(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    store.put_agent(&agent(2, "host-a"))?;
    let old_key = attestation(1, 10, "host-a", 1_000);
    let new_key = attestation(2, 1, "host-a", 2_000);
    store.commit_blocking(batch(vec![old_key]))?;
    store.commit_blocking(batch(vec![new_key.clone()]))?;
    ensure_eq!(store.host_states()?, vec![state_of(&new_key, None)]);

    // A late link of the old chain, issued before the new key's, is stored but moves nothing.
    let late = attestation(1, 11, "host-a", 1_500);
    ensure_eq!(store.commit_blocking(batch(vec![late]))?, receipt(1, 0));
    ensure_eq!(store.host_states()?, vec![state_of(&new_key, None)]);
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
    // A repeat of an old link does not move the host back.
    ensure_eq!(
        store.commit_blocking(batch(vec![a1.clone()]))?,
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
    ensure_eq!(store.chain_heads()?, vec![(key(1), 1, a1.digest)]);
    Ok(())
}

pub(super) fn unknown_key_stores_nothing(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    let known = attestation(1, 1, "host-a", 1_000);
    let unknown = attestation(9, 4, "host-z", 1_000);
    let doomed = Batch {
        attestations: vec![known, unknown],
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
    ensure!(store.host_states()?.is_empty(), "a host state survived");
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
        vec![
            (key(1), 3, digest(1, 3)),
            (key(2), 7, digest(2, 7)),
            (key(3), 5, digest(3, 5)),
        ]
    );
    ensure_eq!(store.chain_head(&key(2))?, Some((7, digest(2, 7))));
    ensure_eq!(store.chain_head(&key(9))?, None);
    Ok(())
}

pub(super) fn gpu_owners_follow_latest_inventory(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    store.put_agent(&agent(2, "host-b"))?;
    let a1 = attestation(1, 1, "host-a", 1_000);
    let mut b1 = attestation(2, 1, "host-b", 1_000);
    b1.gpus.truncate(2);
    store.commit_blocking(batch(vec![a1.clone(), b1.clone()]))?;

    let owners = |gpus: &[crate::Gpu], host: &str| -> Vec<(String, String, String)> {
        gpus.iter()
            .map(|g| (g.uuid.clone(), g.serial.clone(), host.to_owned()))
            .collect()
    };
    let expected = [owners(&a1.gpus, "host-a"), owners(&b1.gpus, "host-b")].concat();
    ensure_eq!(store.gpu_owners()?, expected);

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
    ensure_eq!(store.gpu_owners()?, expected);
    ensure_eq!(
        unindexed(store.host_history("host-a", 0, i64::MAX, 10)?),
        vec![a1, a2, a3]
    );
    Ok(())
}
