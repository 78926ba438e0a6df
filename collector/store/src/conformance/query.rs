//! Checks of the reads: cursors over attestations, host history, rejections, events, size.

use super::fixture::{self, agent, attestation, batch, unindexed};
use super::{Failure, ensure, ensure_eq};
use crate::{AcceptedAttestation, AttestationStore, Batch, Cursor, HostId};

type Outcome = Result<(), Failure>;

pub(super) fn attestation_cursor_pages(store: &dyn AttestationStore) -> Outcome {
    for n in 1..=3 {
        store.put_agent(&agent(n, &format!("host-{n}")))?;
    }
    // Many ties on the receive time, across keys and sequences.
    let mut all: Vec<AcceptedAttestation> = Vec::new();
    for sequence in 1..=10u64 {
        for n in 1..=3u8 {
            let at = 1_000 + (sequence / 2) as i64 * 10;
            all.push(attestation(n, sequence, &format!("host-{n}"), at));
        }
    }
    // Committed in an order unlike the reading order.
    for chunk in all.chunks(7).rev() {
        store.commit_blocking(batch(chunk.to_vec()))?;
    }
    all.sort_by_key(|a| (a.received_at_ms, a.key_id, a.sequence));

    let mut paged = Vec::new();
    let mut after = None;
    // Bounded, so a cursor that does not advance fails the check instead of hanging it.
    for _ in 0..=all.len() {
        let page = unindexed(store.attestations(i64::MIN, i64::MAX, after, 7)?);
        ensure!(page.len() <= 7, "page of {}", page.len());
        let Some(last) = page.last() else { break };
        after = Some(Cursor::after(last));
        paged.extend(page);
    }
    ensure_eq!(paged, all);

    let window: Vec<_> = all
        .iter()
        .filter(|a| (1_010..1_030).contains(&a.received_at_ms))
        .cloned()
        .collect();
    ensure_eq!(
        unindexed(store.attestations(1_010, 1_030, None, 100)?),
        window
    );
    // A cursor inside the window continues inside it.
    let cursor = Cursor::after(&window[2]);
    ensure_eq!(
        unindexed(store.attestations(1_010, 1_030, Some(cursor), 100)?),
        window[3..].to_vec()
    );
    ensure!(
        unindexed(store.attestations(i64::MIN, i64::MAX, None, 0)?).is_empty(),
        "limit 0"
    );
    ensure!(
        unindexed(store.attestations(1_030, 1_010, None, 100)?).is_empty(),
        "an empty range"
    );
    Ok(())
}

pub(super) fn host_history_filters(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    store.put_agent(&agent(2, "host-b"))?;
    let a: Vec<_> = (1..=5)
        .map(|s| attestation(1, s, "host-a", 1_000 * s as i64))
        .collect();
    let b: Vec<_> = (1..=3)
        .map(|s| attestation(2, s, "host-b", 1_000 * s as i64))
        .collect();
    store.commit_blocking(batch([a.clone(), b.clone()].concat()))?;

    ensure_eq!(
        unindexed(store.host_history("host-a", 2_000, 4_000, 10)?),
        a[1..3].to_vec()
    );
    ensure_eq!(
        unindexed(store.host_history("host-a", 2_000, 4_000, 1)?),
        a[1..2].to_vec()
    );
    ensure_eq!(
        unindexed(store.host_history("host-b", i64::MIN, i64::MAX, 10)?),
        b
    );
    ensure!(
        store
            .host_history("host-c", i64::MIN, i64::MAX, 10)?
            .is_empty(),
        "unknown host"
    );
    Ok(())
}

pub(super) fn rejections_newest_first_and_counted(store: &dyn AttestationStore) -> Outcome {
    ensure!(
        store.rejections(10)?.is_empty(),
        "an empty store has rejections"
    );
    let oldest = fixture::rejection(1_000, "replay", "a");
    let middle = fixture::rejection(2_000, "bad_signature", "b");
    let newest = crate::Rejection {
        key_id: None,
        host_id: Some(HostId("host-a".to_owned())),
        sequence: None,
        ..fixture::rejection(3_000, "bad_signature", "c")
    };
    // Same instant as `middle`, stored later: listed before it.
    let tie = fixture::rejection(2_000, "unknown_key", "d");
    store.commit_blocking(Batch {
        rejections: vec![newest.clone(), oldest.clone(), middle.clone()],
        ..Batch::default()
    })?;
    store.commit_blocking(Batch {
        rejections: vec![tie.clone()],
        ..Batch::default()
    })?;
    let expected = vec![newest, tie, middle, oldest];
    ensure_eq!(store.rejections(10)?, expected);
    ensure_eq!(store.rejections(2)?, expected[..2].to_vec());
    ensure_eq!(
        store.rejection_counts()?,
        vec![
            ("bad_signature".to_owned(), 2),
            ("replay".to_owned(), 1),
            ("unknown_key".to_owned(), 1),
        ]
    );

    // A window's repeats stored as one row: listed once, counted as many.
    let repeated = crate::Rejection {
        count: 2_999,
        ..fixture::rejection(4_000, "replay", "2999 more")
    };
    store.commit_blocking(Batch {
        rejections: vec![repeated.clone()],
        ..Batch::default()
    })?;
    ensure_eq!(store.rejections(1)?, vec![repeated]);
    ensure_eq!(
        store.rejection_counts()?,
        vec![
            ("bad_signature".to_owned(), 2),
            ("replay".to_owned(), 3_000),
            ("unknown_key".to_owned(), 1),
        ]
    );
    ensure_eq!(
        store.rejections_by_reason(1_000, 4_001)?,
        vec![
            ("bad_signature".to_owned(), 2),
            ("replay".to_owned(), 3_000),
            ("unknown_key".to_owned(), 1),
        ]
    );
    ensure_eq!(
        store.rejections_by_reason(3_000, 4_000)?,
        vec![("bad_signature".to_owned(), 1)]
    );
    Ok(())
}

pub(super) fn events_since_in_order(store: &dyn AttestationStore) -> Outcome {
    let early = fixture::event(500, "gap", "a");
    let first_tie = fixture::event(1_000, "gpu_conflict", "b");
    let second_tie = crate::Event {
        host_id: None,
        key_id: None,
        value: None,
        ..fixture::event(1_000, "revoked", "c")
    };
    let late = fixture::event(2_000, "decommissioned", "d");
    store.commit_blocking(Batch {
        events: vec![late.clone(), first_tie.clone()],
        ..Batch::default()
    })?;
    store.commit_blocking(Batch {
        events: vec![second_tie.clone(), early.clone()],
        ..Batch::default()
    })?;
    ensure_eq!(
        store.events(1_000, 10)?,
        vec![first_tie.clone(), second_tie, late]
    );
    ensure_eq!(store.events(i64::MIN, 2)?, vec![early, first_tie]);
    ensure!(store.events(3_000, 10)?.is_empty(), "events after the last");
    Ok(())
}

pub(super) fn size_grows_with_content(store: &dyn AttestationStore) -> Outcome {
    store.put_agent(&agent(1, "host-a"))?;
    let before = store.size_bytes()?;
    let count = 200;
    let attestations = (1..=count)
        .map(|s| attestation(1, s, "host-a", s as i64))
        .collect();
    store.commit_blocking(batch(attestations))?;
    let after = store.size_bytes()?;
    let payload = count * fixture::ENVELOPE_BYTES as u64;
    ensure!(
        after >= before + payload,
        "size went from {before} to {after} bytes after storing {payload} bytes of envelopes"
    );
    Ok(())
}
