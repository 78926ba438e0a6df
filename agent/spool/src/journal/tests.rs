//! Resuming after crashes at each step of `record`, a state file ahead of the spool, a damaged
//! state file, and the bookkeeping of acknowledged and refused attestations.

use std::fs;

use proto_evidence::{EvidenceSource, HostId, KeyId, Sha256, SiteId, Totals};

use super::*;
use crate::REJECTED_DIR;

/// A stand-in envelope codec: the "envelope" is the chain digest's 32 bytes, so tests can
/// resume from the spool without proto-seal.
fn digest_of(bytes: &[u8]) -> Result<ChainDigest, DigestError> {
    Sha256::from_slice(bytes)
        .map(ChainDigest)
        .ok_or_else(|| format!("{} bytes, not 32", bytes.len()).into())
}

fn digest(sequence: u64) -> ChainDigest {
    ChainDigest(Sha256::of(&sequence.to_le_bytes()))
}

fn payload(sequence: u64, previous_digest: ChainDigest) -> AttestationPayload {
    AttestationPayload {
        key_id: KeyId::of_public_key(b"agent key"),
        host_id: HostId("gpu-0001".into()),
        site_id: SiteId("us-va-1".into()),
        sequence,
        previous_digest,
        issued_at_unix_ms: 1_764_000_000_000,
        collector_nonce: Vec::new(),
        devices: Vec::new(),
        totals: Totals::default(),
        catalogue_digest: String::new(),
        policy_digest: String::new(),
        agent_version: "test".into(),
        source: EvidenceSource::Simulated,
        driver_version: String::new(),
    }
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("chain.state")
    }

    fn open(&self) -> Result<Journal, JournalError> {
        Journal::open(
            &self.spool(),
            SpoolLimits::default(),
            &self.state(),
            digest_of,
        )
        .map(|(journal, _)| journal)
    }
}

/// Records the next link after the journal's head (digests from `digest`).
fn record_next(journal: &mut Journal) -> Recorded {
    let (sequence, previous) = journal.head().map_or((1, ChainDigest::GENESIS), |head| {
        (head.sequence + 1, head.digest)
    });
    let digest = digest(sequence);
    journal
        .record(
            &payload(sequence, previous),
            digest,
            EntryKind::Periodic,
            digest.0.as_bytes().to_vec(),
        )
        .unwrap()
}

fn head(sequence: u64) -> Option<ChainHead> {
    Some(ChainHead {
        sequence,
        digest: digest(sequence),
    })
}

fn pending(journal: &Journal) -> Vec<u64> {
    journal
        .pending_after(0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(sequence, _)| sequence)
        .collect()
}

#[test]
fn a_new_journal_starts_a_chain_and_reopens_at_its_head() {
    let dir = Dir::new();
    let mut journal = dir.open().unwrap();
    assert_eq!(journal.head(), None);
    for _ in 0..3 {
        let recorded = record_next(&mut journal);
        assert!(recorded.state_error.is_none());
        assert!(recorded.pushed.dropped.is_empty());
    }
    assert_eq!(journal.head(), head(3));
    assert_eq!(state::load(&dir.state()).unwrap(), head(3));
    assert_eq!(pending(&journal), [1, 2, 3]);
    drop(journal);

    let journal = dir.open().unwrap();
    assert_eq!(journal.head(), head(3));
    assert_eq!(journal.spool().len(), 3);
}

#[test]
fn a_crash_between_spool_and_state_resumes_from_the_newest_spooled_attestation() {
    let dir = Dir::new();
    let mut journal = dir.open().unwrap();
    record_next(&mut journal);
    record_next(&mut journal);
    drop(journal);
    // What a crash after the spool push of 3 and before its state write leaves behind.
    let (mut spool, _) = Spool::open(&dir.spool(), SpoolLimits::default()).unwrap();
    spool
        .push(&Entry {
            sequence: 3,
            kind: EntryKind::Periodic,
            bytes: digest(3).0.as_bytes().to_vec(),
        })
        .unwrap();
    drop(spool);
    assert_eq!(state::load(&dir.state()).unwrap(), head(2));

    let mut journal = dir.open().unwrap();
    assert_eq!(journal.head(), head(3), "the spool is ahead of the state");
    // The next link follows 3, never a second 3.
    record_next(&mut journal);
    assert_eq!(journal.head(), head(4));
    assert_eq!(state::load(&dir.state()).unwrap(), head(4));
}

#[test]
fn a_state_file_ahead_of_the_spool_wins() {
    let dir = Dir::new();
    let mut journal = dir.open().unwrap();
    for _ in 0..3 {
        record_next(&mut journal);
    }
    // The collector acknowledged 1 and 2: the spool's newest (3) equals the state.
    journal.acknowledged(2).unwrap();
    drop(journal);
    assert_eq!(dir.open().unwrap().head(), head(3));

    // Everything acknowledged: an empty spool, the state alone says where the chain is.
    let mut journal = dir.open().unwrap();
    journal.acknowledged(3).unwrap();
    drop(journal);
    let journal = dir.open().unwrap();
    assert_eq!(journal.head(), head(3));
    assert!(journal.spool().is_empty());
}

#[test]
fn the_spool_is_decoded_only_when_it_is_ahead_of_the_state() {
    let dir = Dir::new();
    let mut journal = dir.open().unwrap();
    let digest = digest(1);
    // An envelope the codec cannot read: never consulted while the state is as new.
    journal
        .record(
            &payload(1, ChainDigest::GENESIS),
            digest,
            EntryKind::Periodic,
            b"undecodable".to_vec(),
        )
        .unwrap();
    drop(journal);
    assert_eq!(dir.open().unwrap().head(), head(1));

    fs::remove_file(dir.state()).unwrap();
    let error = dir.open().unwrap_err();
    let JournalError::NotAnEnvelope { sequence, path, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*sequence, 1);
    assert_eq!(*path, dir.spool().join("00000000000000000001.att"));
    let message = error.to_string();
    assert!(message.contains("spooled attestation 1"), "{message}");
    assert!(message.contains("00000000000000000001.att"), "{message}");
}

#[test]
fn a_corrupt_state_file_is_an_error_naming_it() {
    let dir = Dir::new();
    let mut journal = dir.open().unwrap();
    record_next(&mut journal);
    drop(journal);
    fs::write(dir.state(), b"not a chain state").unwrap();

    let error = dir.open().unwrap_err();
    let JournalError::State(StateError::Corrupt { path, .. }) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*path, dir.state());
    let message = error.to_string();
    assert!(message.contains("chain.state is corrupt"), "{message}");
    // Left as it was: the operator restores it or retires the key.
    assert_eq!(fs::read(dir.state()).unwrap(), b"not a chain state");
}

#[test]
fn a_failed_state_write_still_advances_and_a_restart_resumes_from_the_spool() {
    let dir = Dir::new();
    let state = dir.dir.path().join("missing/chain.state");
    let open = || {
        Journal::open(&dir.spool(), SpoolLimits::default(), &state, digest_of)
            .unwrap()
            .0
    };
    let mut journal = open();
    let recorded = record_next(&mut journal);
    let message = recorded.state_error.unwrap().to_string();
    assert!(message.contains("missing/chain.state.tmp"), "{message}");
    assert_eq!(journal.head(), head(1));
    assert_eq!(pending(&journal), [1]);
    drop(journal);
    assert_eq!(open().head(), head(1));
}

#[test]
fn only_the_exact_next_link_is_recorded() {
    let dir = Dir::new();
    let mut journal = dir.open().unwrap();
    record_next(&mut journal);
    record_next(&mut journal);
    let refused = [
        // Made before the last record: a fork if it were accepted.
        payload(2, digest(1)),
        // A rollback.
        payload(1, ChainDigest::GENESIS),
        // The right sequence after the wrong predecessor.
        payload(3, digest(1)),
        // A gap: the agent never skips a sequence.
        payload(5, digest(4)),
    ];
    for payload in refused {
        let sequence = payload.sequence;
        let error = journal
            .record(
                &payload,
                digest(sequence),
                EntryKind::Periodic,
                digest(sequence).0.as_bytes().to_vec(),
            )
            .unwrap_err();
        assert!(
            matches!(error, JournalError::NotNext { sequence: s, .. } if s == sequence),
            "{error:?}"
        );
    }
    assert_eq!(journal.head(), head(2));
    assert_eq!(pending(&journal), [1, 2]);
    assert_eq!(state::load(&dir.state()).unwrap(), head(2));
}

#[test]
fn a_refused_spool_push_leaves_head_and_state_alone() {
    let dir = Dir::new();
    let mut journal = dir.open().unwrap();
    record_next(&mut journal);
    // A push the spool cannot make: its directory is gone.
    fs::remove_dir_all(dir.spool()).unwrap();
    let error = journal
        .record(
            &payload(2, digest(1)),
            digest(2),
            EntryKind::Periodic,
            digest(2).0.as_bytes().to_vec(),
        )
        .unwrap_err();
    assert!(matches!(error, JournalError::Spool(_)), "{error:?}");
    assert!(error.to_string().contains("spool"), "{error}");
    assert_eq!(journal.head(), head(1));
    assert_eq!(state::load(&dir.state()).unwrap(), head(1));
}

#[test]
fn acknowledged_and_refused_attestations_leave_the_pending_list_not_the_head() {
    let dir = Dir::new();
    let mut journal = dir.open().unwrap();
    for _ in 0..5 {
        record_next(&mut journal);
    }
    assert_eq!(
        journal.pending_after(1, 2).unwrap(),
        [
            (2, digest(2).0.as_bytes().to_vec()),
            (3, digest(3).0.as_bytes().to_vec()),
        ]
    );
    assert_eq!(journal.acknowledged(2).unwrap(), 2);
    assert_eq!(pending(&journal), [3, 4, 5]);
    // Acknowledging again is harmless.
    assert_eq!(journal.acknowledged(2).unwrap(), 0);

    let moved = journal.refused(4).unwrap();
    assert_eq!(
        moved,
        dir.spool()
            .join(REJECTED_DIR)
            .join("00000000000000000004.att")
    );
    assert!(moved.exists());
    assert_eq!(pending(&journal), [3, 5]);
    let error = journal.refused(4).unwrap_err();
    assert!(
        matches!(error, JournalError::Spool(SpoolError::NotFound(4))),
        "{error:?}"
    );
    assert_eq!(journal.head(), head(5));
    assert_eq!(journal.spool().len(), 2);

    drop(journal);
    let journal = dir.open().unwrap();
    assert_eq!(pending(&journal), [3, 5]);
    assert_eq!(journal.head(), head(5));
}
