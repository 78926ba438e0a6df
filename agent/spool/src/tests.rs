//! Round trips, ordering, the size policy, recovery of damaged files and the state file.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;
use proto_evidence::{ChainDigest, ChainHead, Sha256};

use crate::state::{InvalidState, StateError};

fn entry(sequence: u64, kind: EntryKind, len: usize) -> Entry {
    Entry {
        sequence,
        kind,
        bytes: (0..len)
            .map(|i| (sequence as usize * 31 + i) as u8)
            .collect(),
    }
}

fn head(sequence: u64, digest: [u8; 32]) -> ChainHead {
    ChainHead {
        sequence,
        digest: ChainDigest(Sha256::from_bytes(digest)),
    }
}

fn periodic(sequence: u64) -> Entry {
    entry(sequence, EntryKind::Periodic, 10)
}

fn change(sequence: u64) -> Entry {
    entry(sequence, EntryKind::InventoryChange, 10)
}

fn open(dir: &Path) -> (Spool, Recovery) {
    Spool::open(dir, SpoolLimits::default()).unwrap()
}

fn limited(dir: &Path, max_entries: usize, max_bytes: u64) -> Spool {
    Spool::open(
        dir,
        SpoolLimits {
            max_entries,
            max_bytes,
        },
    )
    .unwrap()
    .0
}

fn sequences(spool: &Spool) -> Vec<u64> {
    spool.pending().map(|p| p.sequence).collect()
}

fn entry_file(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(record::file_name(sequence))
}

#[test]
fn push_then_read_and_reopen_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, recovery) = open(dir.path());
    assert!(recovery.is_clean());
    assert!(spool.is_empty());
    let written = [
        entry(1, EntryKind::Periodic, 0),
        entry(2, EntryKind::InventoryChange, 1),
        entry(5, EntryKind::Periodic, 70_000),
    ];
    for e in &written {
        let pushed = spool.push(e).unwrap();
        assert!(pushed.dropped.is_empty() && !pushed.over_limits && pushed.trim_error.is_none());
    }
    assert_eq!(spool.len(), 3);
    assert_eq!(spool.newest(), Some(5));
    assert_eq!(spool.bytes(), 70_001 + 3 * record::OVERHEAD);
    for e in &written {
        assert_eq!(&spool.read(e.sequence).unwrap(), e);
    }
    drop(spool);

    let (spool, recovery) = open(dir.path());
    assert!(recovery.is_clean(), "{recovery:?}");
    let pending: Vec<Pending> = spool.pending().copied().collect();
    assert_eq!(
        pending,
        vec![
            Pending {
                sequence: 1,
                kind: EntryKind::Periodic,
                len: 0
            },
            Pending {
                sequence: 2,
                kind: EntryKind::InventoryChange,
                len: 1
            },
            Pending {
                sequence: 5,
                kind: EntryKind::Periodic,
                len: 70_000
            },
        ]
    );
    assert_eq!(spool.bytes(), 70_001 + 3 * record::OVERHEAD);
    for e in &written {
        assert_eq!(&spool.read(e.sequence).unwrap(), e);
    }
}

#[test]
fn files_are_named_by_sequence_and_the_directory_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("var/spool");
    let (mut spool, _) = open(&spool_dir);
    spool.push(&periodic(42)).unwrap();
    assert!(spool_dir.join("00000000000000000042.att").is_file());
    let mode = fs::metadata(&spool_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let mode = fs::metadata(entry_file(&spool_dir, 42))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode & 0o077, 0, "entry mode {mode:o}");
}

#[test]
fn ack_removes_everything_up_to_and_including_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path());
    for sequence in [3, 4, 6, 7, 9] {
        spool.push(&periodic(sequence)).unwrap();
    }
    assert_eq!(spool.ack(2).unwrap(), 0);
    assert_eq!(spool.ack(6).unwrap(), 3);
    assert_eq!(sequences(&spool), [7, 9]);
    assert!(!entry_file(dir.path(), 6).exists());
    assert!(matches!(spool.read(4), Err(SpoolError::NotFound(4))));
    assert_eq!(spool.ack(6).unwrap(), 0, "acking again is harmless");
    assert_eq!(spool.bytes(), 2 * (10 + record::OVERHEAD));
    assert_eq!(spool.ack(100).unwrap(), 2);
    assert!(spool.is_empty());
    assert_eq!(spool.bytes(), 0);
    drop(spool);
    let (spool, recovery) = open(dir.path());
    assert!(spool.is_empty() && recovery.is_clean());
}

#[test]
fn sequences_must_increase_even_after_everything_was_acked() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path());
    spool.push(&periodic(10)).unwrap();
    for stale in [10, 9, 0] {
        let error = spool.push(&periodic(stale)).unwrap_err();
        assert!(
            matches!(error, SpoolError::OutOfOrder { sequence, newest: 10 } if sequence == stale),
            "{error}"
        );
    }
    spool.ack(10).unwrap();
    assert_eq!(spool.newest(), None);
    assert!(matches!(
        spool.push(&periodic(10)),
        Err(SpoolError::OutOfOrder { .. })
    ));
    spool.push(&periodic(11)).unwrap();
    drop(spool);

    let (mut spool, _) = open(dir.path());
    assert!(matches!(
        spool.push(&periodic(11)),
        Err(SpoolError::OutOfOrder {
            sequence: 11,
            newest: 11
        })
    ));
    assert_eq!(sequences(&spool), [11]);
}

#[test]
fn entry_limit_drops_the_oldest_periodic_entries_and_keeps_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = limited(dir.path(), 3, u64::MAX);
    spool.push(&change(1)).unwrap();
    spool.push(&periodic(2)).unwrap();
    spool.push(&periodic(3)).unwrap();
    let pushed = spool.push(&change(4)).unwrap();
    assert_eq!(pushed.dropped, [2]);
    assert!(!pushed.over_limits);
    let pushed = spool.push(&periodic(5)).unwrap();
    assert_eq!(pushed.dropped, [3]);
    assert_eq!(sequences(&spool), [1, 4, 5]);
    assert!(!entry_file(dir.path(), 2).exists() && !entry_file(dir.path(), 3).exists());

    // Only changes and the entry just pushed are left: nothing more to drop.
    let pushed = spool.push(&change(6)).unwrap();
    assert_eq!(pushed.dropped, [5]);
    let pushed = spool.push(&change(7)).unwrap();
    assert!(pushed.dropped.is_empty());
    assert!(pushed.over_limits);
    let pushed = spool.push(&periodic(8)).unwrap();
    assert!(pushed.dropped.is_empty(), "the new entry is kept");
    assert!(pushed.over_limits);
    let pushed = spool.push(&periodic(9)).unwrap();
    assert_eq!(pushed.dropped, [8]);
    assert_eq!(sequences(&spool), [1, 4, 6, 7, 9]);

    drop(spool);
    let (spool, _) = open(dir.path());
    assert_eq!(sequences(&spool), [1, 4, 6, 7, 9]);
}

#[test]
fn byte_limit_drops_as_many_periodic_entries_as_needed() {
    let dir = tempfile::tempdir().unwrap();
    let file = |len: u64| len + record::OVERHEAD;
    let limit = file(100) * 3;
    let mut spool = limited(dir.path(), 1000, limit);
    spool.push(&entry(1, EntryKind::Periodic, 100)).unwrap();
    spool
        .push(&entry(2, EntryKind::InventoryChange, 100))
        .unwrap();
    spool.push(&entry(3, EntryKind::Periodic, 100)).unwrap();
    assert_eq!(spool.bytes(), limit);
    let pushed = spool.push(&entry(4, EntryKind::Periodic, 1)).unwrap();
    assert_eq!(pushed.dropped, [1]);
    // Needs two periodic entries gone: 3 and 4, oldest first; 2 is a change, 5 is new.
    let pushed = spool.push(&entry(5, EntryKind::Periodic, 200)).unwrap();
    assert_eq!(pushed.dropped, [3, 4]);
    assert!(!pushed.over_limits);
    assert_eq!(sequences(&spool), [2, 5]);
    assert_eq!(spool.bytes(), file(100) + file(200));

    // One entry alone over the byte limit is still stored, and reported.
    let pushed = spool
        .push(&entry(6, EntryKind::InventoryChange, 1000))
        .unwrap();
    assert_eq!(pushed.dropped, [5]);
    assert!(pushed.over_limits);
    assert_eq!(spool.read(6).unwrap().bytes.len(), 1000);
}

#[test]
fn set_aside_moves_a_rejected_entry_out_of_the_pending_list() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path());
    for sequence in 1..=3 {
        spool.push(&periodic(sequence)).unwrap();
    }
    let moved = spool.set_aside(2).unwrap();
    assert_eq!(
        moved,
        dir.path().join(REJECTED_DIR).join(record::file_name(2))
    );
    assert_eq!(
        fs::read(&moved).unwrap(),
        record::encode(&periodic(2)).unwrap()
    );
    assert_eq!(sequences(&spool), [1, 3]);
    assert!(matches!(spool.set_aside(2), Err(SpoolError::NotFound(2))));
    drop(spool);
    let (spool, recovery) = open(dir.path());
    assert!(recovery.is_clean(), "{recovery:?}");
    assert_eq!(sequences(&spool), [1, 3]);
}

/// Writes a damaged file under `name`, opens, and returns what recovery said about it.
fn quarantine(name: &str, content: &[u8]) -> InvalidEntry {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path());
    spool.push(&periodic(1)).unwrap();
    spool.push(&periodic(99)).unwrap();
    drop(spool);
    fs::write(dir.path().join(name), content).unwrap();

    let (spool, recovery) = open(dir.path());
    assert_eq!(
        sequences(&spool),
        [1, 99],
        "the damaged file is never an entry"
    );
    assert_eq!(recovery.quarantined.len(), 1, "{recovery:?}");
    let quarantined = &recovery.quarantined[0];
    assert_eq!(quarantined.from, dir.path().join(name));
    assert_eq!(quarantined.to, dir.path().join(CORRUPT_DIR).join(name));
    assert!(!quarantined.from.exists());
    assert_eq!(
        fs::read(&quarantined.to).unwrap(),
        content,
        "kept for forensics"
    );
    drop(spool);
    let (_, recovery) = open(dir.path());
    assert!(recovery.is_clean(), "quarantine is done once: {recovery:?}");
    quarantined.problem.clone()
}

#[test]
fn damaged_files_are_quarantined_on_open() {
    let good = record::encode(&entry(7, EntryKind::Periodic, 40)).unwrap();
    let name = record::file_name(7);

    for at in [12, 20, 30, good.len() - 1] {
        let mut flipped = good.clone();
        flipped[at] ^= 0x01;
        let problem = quarantine(&name, &flipped);
        assert!(
            matches!(
                problem,
                InvalidEntry::Checksum { .. } | InvalidEntry::Truncated { .. }
            ),
            "flip at {at}: {problem}"
        );
    }
    for len in [0, 5, 25, good.len() - 1] {
        let problem = quarantine(&name, &good[..len]);
        assert!(
            matches!(problem, InvalidEntry::Truncated { .. }),
            "{len}: {problem}"
        );
    }
    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(
        quarantine(&name, &longer),
        InvalidEntry::TrailingBytes { .. }
    ));

    let mut magic = good.clone();
    magic[0] = b'X';
    assert_eq!(quarantine(&name, &magic), InvalidEntry::BadMagic);
    let mut format = good.clone();
    format[8] = 9;
    assert_eq!(
        quarantine(&name, &format),
        InvalidEntry::UnsupportedFormat(9)
    );

    assert_eq!(
        quarantine(&record::file_name(8), &good),
        InvalidEntry::SequenceMismatch {
            name: 8,
            content: 7
        }
    );
    assert_eq!(quarantine("7.att", &good), InvalidEntry::BadName);
    assert_eq!(
        quarantine("99999999999999999999.att", &good),
        InvalidEntry::BadName
    );
}

#[test]
fn a_second_damaged_file_of_the_same_name_does_not_overwrite_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let name = record::file_name(3);
    fs::write(dir.path().join(&name), b"first").unwrap();
    let (_, recovery) = open(dir.path());
    assert_eq!(recovery.quarantined.len(), 1);
    fs::write(dir.path().join(&name), b"second").unwrap();
    let (_, recovery) = open(dir.path());
    let corrupt = dir.path().join(CORRUPT_DIR);
    assert_eq!(
        recovery.quarantined[0].to,
        corrupt.join(format!("{name}.1"))
    );
    assert_eq!(fs::read(corrupt.join(&name)).unwrap(), b"first");
    assert_eq!(
        fs::read(corrupt.join(format!("{name}.1"))).unwrap(),
        b"second"
    );
}

#[test]
fn read_verifies_the_checksum_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path());
    spool.push(&periodic(5)).unwrap();
    let path = entry_file(dir.path(), 5);
    let mut content = fs::read(&path).unwrap();
    content[23] ^= 0x80;
    fs::write(&path, content).unwrap();
    let error = spool.read(5).unwrap_err();
    assert!(
        matches!(
            &error,
            SpoolError::Corrupt {
                problem: InvalidEntry::Checksum { .. },
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("00000000000000000005.att"),
        "{error}"
    );
}

#[test]
fn leftover_temporary_files_are_removed_and_strangers_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut spool, _) = open(dir.path());
    spool.push(&periodic(1)).unwrap();
    drop(spool);
    let temp = dir.path().join(record::temp_name(2));
    let half = record::encode(&periodic(2)).unwrap();
    fs::write(&temp, &half[..half.len() / 2]).unwrap();
    let stranger = dir.path().join("notes.txt");
    fs::write(&stranger, b"hello").unwrap();

    let (mut spool, recovery) = open(dir.path());
    assert_eq!(recovery.removed_temp, std::slice::from_ref(&temp));
    assert_eq!(recovery.ignored, std::slice::from_ref(&stranger));
    assert!(recovery.quarantined.is_empty());
    assert!(!temp.exists() && stranger.exists());
    assert_eq!(sequences(&spool), [1]);
    // The interrupted push never returned Ok, so its sequence may be pushed again.
    spool.push(&periodic(2)).unwrap();
    assert_eq!(spool.read(2).unwrap(), periodic(2));
}

#[test]
fn errors_name_the_action_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    fs::write(&blocker, b"").unwrap();
    let error = Spool::open(&blocker.join("spool"), SpoolLimits::default()).unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("cannot create directory "), "{message}");
    assert!(message.contains("file/spool"), "{message}");
}

#[test]
fn state_round_trips_and_a_missing_file_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.state");
    assert_eq!(state::load(&path).unwrap(), None);
    let first = head(1, [7; 32]);
    state::store(&path, &first).unwrap();
    assert_eq!(state::load(&path).unwrap(), Some(first));
    let mut digest = [0; 32];
    digest[31] = 0xff;
    let second = head(u64::MAX, digest);
    state::store(&path, &second).unwrap();
    assert_eq!(state::load(&path).unwrap(), Some(second));
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["chain.state"], "no temporary file is left behind");
}

#[test]
fn a_damaged_state_file_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.state");
    state::store(&path, &head(9, [1; 32])).unwrap();
    let good = fs::read(&path).unwrap();

    type Expect = fn(&InvalidState) -> bool;
    let cases: Vec<(Vec<u8>, Expect)> = vec![
        (
            {
                let mut c = good.clone();
                c[20] ^= 4;
                c
            },
            |p| matches!(p, InvalidState::Checksum { .. }),
        ),
        (
            {
                let mut c = good.clone();
                c[0] = 0;
                c
            },
            |p| *p == InvalidState::BadMagic,
        ),
        (
            {
                let mut c = good.clone();
                c[8] = 2;
                c
            },
            |p| *p == InvalidState::UnsupportedVersion(2),
        ),
        (good[..good.len() - 1].to_vec(), |p| {
            matches!(p, InvalidState::Length { .. })
        }),
        (Vec::new(), |p| {
            matches!(p, InvalidState::Length { actual: 0 })
        }),
    ];
    for (content, expected) in cases {
        fs::write(&path, &content).unwrap();
        match state::load(&path) {
            Err(StateError::Corrupt {
                path: named,
                problem,
            }) => {
                assert_eq!(named, path);
                assert!(expected(&problem), "{problem}");
            }
            other => panic!("{content:?}: {other:?}"),
        }
        let message = state::load(&path).unwrap_err().to_string();
        assert!(message.contains("chain.state is corrupt"), "{message}");
    }
}

#[test]
fn storing_state_into_a_missing_directory_names_the_temporary_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing/chain.state");
    let message = state::store(&path, &head(1, [0; 32]))
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("cannot create "), "{message}");
    assert!(message.contains("missing/chain.state.tmp"), "{message}");
}

/// Agents upgrade in place: the files an earlier build wrote must read back, and this build must
/// write the same bytes.
#[test]
fn the_on_disk_formats_are_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = "564555434841494e010807060504030201000102030405060708090a0b0c0d0e0f\
                      101112131415161718191a1b1c1d1e1f1cf060c5";
    let mut digest = [0; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = i as u8;
    }
    let expected = head(0x0102_0304_0506_0708, digest);
    let path = dir.path().join("chain.state");
    state::store(&path, &expected).unwrap();
    assert_eq!(hex(&fs::read(&path).unwrap()), state_file);
    fs::write(&path, unhex(state_file)).unwrap();
    assert_eq!(state::load(&path).unwrap(), Some(expected));

    let spool_file = "56455553504f4f4c01020700000000000000030000006162635f508c54";
    let spool_dir = dir.path().join("spool");
    let entry = Entry {
        sequence: 7,
        kind: EntryKind::InventoryChange,
        bytes: b"abc".to_vec(),
    };
    let (mut spool, _) = open(&spool_dir);
    spool.push(&entry).unwrap();
    assert_eq!(
        hex(&fs::read(entry_file(&spool_dir, 7)).unwrap()),
        spool_file
    );
    drop(spool);
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(entry_file(&other, 7), unhex(spool_file)).unwrap();
    let (spool, recovery) = open(&other);
    assert!(recovery.is_clean());
    assert_eq!(spool.read(7).unwrap(), entry);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
