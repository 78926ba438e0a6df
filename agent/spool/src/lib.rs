//! The agent's durable spool of signed attestations, its chain-state file (`state`), and the
//! `Journal` that keeps both in step with the chain head. Each attestation is stored here before
//! it is sent and removed only once the collector has acknowledged it; after a reconnect the
//! daemon replays what remains, in sequence order.
//!
//! Invariant: every entry `push` returned `Ok` for survives a crash at any instant and comes
//! back byte for byte (a killed process always; a power loss as far as the disk honours fsync);
//! a half-written or damaged file is never returned as an entry (it is moved to `corrupt/` on
//! open). Sequences only increase, so the spool never holds two histories.
//!
//! Size policy: after each push, while the spool holds more than `max_entries` entries or more
//! than `max_bytes` bytes on disk, the oldest `Periodic` entries are dropped first. The entry just
//! pushed is never dropped by its own push, and `InventoryChange` entries are never dropped:
//! when only those remain the spool stays over its limits and `Pushed::over_limits` says so.
//! A dropped periodic attestation becomes a sequence gap that the collector records as lost
//! evidence; that is the price of a bounded disk footprint, paid by the least informative
//! entries.

mod disk;
pub mod journal;
mod record;
pub mod state;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use disk::Failure;
pub use journal::{Journal, JournalError, Recorded};
pub use record::InvalidEntry;
use record::Name;

/// Subdirectory that damaged files are moved into on open.
pub const CORRUPT_DIR: &str = "corrupt";
/// Subdirectory that entries the collector rejected are moved into.
pub const REJECTED_DIR: &str = "rejected";

/// Why an attestation was made; decides whether the size policy may drop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A scheduled attestation; the oldest are dropped when the spool is full.
    Periodic,
    /// An attestation of an inventory change; never dropped.
    InventoryChange,
}

/// One spooled attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The attestation's chain sequence.
    pub sequence: u64,
    /// Why it was made.
    pub kind: EntryKind,
    /// The encoded signed envelope, opaque to the spool.
    pub bytes: Vec<u8>,
}

/// A held entry's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// The attestation's chain sequence.
    pub sequence: u64,
    /// Why it was made.
    pub kind: EntryKind,
    /// Length of the envelope bytes.
    pub len: u32,
}

impl Pending {
    /// Bytes its file takes on disk, as counted against `max_bytes`.
    pub fn stored_bytes(&self) -> u64 {
        u64::from(self.len) + record::OVERHEAD
    }
}

/// How much the spool may hold before periodic entries are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolLimits {
    /// Most entries held.
    pub max_entries: usize,
    /// Most bytes held on disk (envelopes plus the 26 bytes of framing per file).
    pub max_bytes: u64,
}

impl Default for SpoolLimits {
    /// Seven days of one attestation a minute, within 64 MiB.
    fn default() -> Self {
        Self {
            max_entries: 7 * 24 * 60,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What a successful push did besides storing the entry.
#[derive(Debug, Default)]
pub struct Pushed {
    /// Periodic entries dropped by the size policy, oldest first.
    pub dropped: Vec<u64>,
    /// Still over a limit: only inventory changes (and the new entry) are left to drop.
    pub over_limits: bool,
    /// Dropping failed part-way. The new entry is stored all the same; the next push tries again.
    pub trim_error: Option<SpoolError>,
}

/// What `open` found and repaired.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Damaged files moved to `corrupt/`, never returned as entries.
    pub quarantined: Vec<Quarantined>,
    /// Temporary files of pushes interrupted before their rename, removed.
    pub removed_temp: Vec<PathBuf>,
    /// Files and directories that are not the spool's, left alone.
    pub ignored: Vec<PathBuf>,
}

impl Recovery {
    /// Nothing was repaired or found out of place.
    pub fn is_clean(&self) -> bool {
        self.quarantined.is_empty() && self.removed_temp.is_empty() && self.ignored.is_empty()
    }
}

/// A damaged file moved out of the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Where it was.
    pub from: PathBuf,
    /// Where it is now, under `corrupt/`.
    pub to: PathBuf,
    /// What was wrong with it.
    pub problem: InvalidEntry,
}

/// A spool operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A push at or below the highest sequence already spooled.
    #[error("sequence {sequence} is not after the newest spooled sequence {newest}")]
    OutOfOrder {
        /// The sequence pushed.
        sequence: u64,
        /// The highest sequence spooled so far.
        newest: u64,
    },
    /// The spool holds no entry with this sequence.
    #[error("no spooled entry has sequence {0}")]
    NotFound(u64),
    /// Envelope bytes longer than the file format's u32 length.
    #[error("entry {sequence} is {len} bytes, over the spool format's 4 GiB limit")]
    TooLarge {
        /// The entry's sequence.
        sequence: u64,
        /// Its length.
        len: usize,
    },
    /// A held entry's file no longer verifies.
    #[error("{path}: {problem}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: InvalidEntry,
    },
}

impl From<Failure> for SpoolError {
    fn from(failure: Failure) -> Self {
        SpoolError::Io {
            action: failure.action,
            path: failure.path,
            source: failure.source,
        }
    }
}

/// The spool directory, opened by one process at a time.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    limits: SpoolLimits,
    entries: BTreeMap<u64, Pending>,
    bytes: u64,
    /// Highest sequence pushed or found; survives acks so that the order holds within a run.
    highest: Option<u64>,
    /// Removals not yet made durable (a directory fsync failed or was cut short); the next ack
    /// fsyncs the directory even if it removes nothing.
    unsynced: bool,
}

impl Spool {
    /// Opens (creating with mode 0700) the directory, scans it and verifies every entry. Damaged
    /// files are moved to `DIR/corrupt/` and reported, never returned; temporary files of
    /// interrupted pushes are removed.
    pub fn open(dir: &Path, limits: SpoolLimits) -> Result<(Spool, Recovery), SpoolError> {
        disk::create_private_dir(dir)?;
        let mut recovery = Recovery::default();
        let mut entries = BTreeMap::new();
        let listing = fs::read_dir(dir).map_err(|e| Failure::new("cannot list", dir, e))?;
        for item in listing {
            let item = item.map_err(|e| Failure::new("cannot list", dir, e))?;
            let path = item.path();
            let file_type = item
                .file_type()
                .map_err(|e| Failure::new("cannot inspect", &path, e))?;
            let name = item.file_name();
            let name = name.to_str().map_or(Name::Other, record::classify);
            if !file_type.is_file() {
                let ours = file_type.is_dir()
                    && (item.file_name() == CORRUPT_DIR || item.file_name() == REJECTED_DIR);
                if !ours {
                    recovery.ignored.push(path);
                }
                continue;
            }
            let problem = match name {
                Name::Other => {
                    recovery.ignored.push(path);
                    continue;
                }
                Name::Temp => {
                    // Never renamed into place, so its push never returned Ok: safe to drop.
                    disk::remove(&path)?;
                    recovery.removed_temp.push(path);
                    continue;
                }
                Name::BadEntry => InvalidEntry::BadName,
                Name::Entry(sequence) => match record::decode(&disk::read(&path)?, sequence) {
                    Ok(entry) => {
                        entries.insert(sequence, pending(&entry));
                        continue;
                    }
                    Err(problem) => problem,
                },
            };
            let to = disk::move_aside(&path, dir, &dir.join(CORRUPT_DIR))?;
            recovery.quarantined.push(Quarantined {
                from: path,
                to,
                problem,
            });
        }
        if !recovery.removed_temp.is_empty() {
            disk::sync_dir(dir)?;
        }
        let bytes = entries.values().map(Pending::stored_bytes).sum();
        let highest = entries.keys().next_back().copied();
        let spool = Spool {
            dir: dir.to_path_buf(),
            limits,
            entries,
            bytes,
            highest,
            unsynced: false,
        };
        Ok((spool, recovery))
    }

    /// Durably stores the entry (temporary file, fsync, rename into place, fsync the directory)
    /// before returning, then applies the size policy.
    pub fn push(&mut self, entry: &Entry) -> Result<Pushed, SpoolError> {
        if let Some(newest) = self.highest.filter(|&newest| entry.sequence <= newest) {
            return Err(SpoolError::OutOfOrder {
                sequence: entry.sequence,
                newest,
            });
        }
        let encoded = record::encode(entry).ok_or(SpoolError::TooLarge {
            sequence: entry.sequence,
            len: entry.bytes.len(),
        })?;
        let temp = self.dir.join(record::temp_name(entry.sequence));
        let path = self.entry_path(entry.sequence);
        if let Err(failure) = disk::write_synced(&temp, &encoded) {
            let _ = disk::remove(&temp);
            return Err(failure.into());
        }
        if let Err(failure) = disk::rename(&temp, &path) {
            let _ = disk::remove(&temp);
            return Err(failure.into());
        }
        if let Err(failure) = disk::sync_dir(&self.dir) {
            // Not known to be durable, so not Ok: take the file back out (best effort) so that
            // the directory keeps matching what callers were told; a retry rewrites it.
            let _ = disk::remove(&path);
            return Err(failure.into());
        }
        let pending = pending(entry);
        self.bytes += pending.stored_bytes();
        self.entries.insert(entry.sequence, pending);
        self.highest = Some(entry.sequence);
        Ok(self.trim(entry.sequence))
    }

    /// The collector stored everything up to and including `sequence`: removes those entries
    /// and makes the removal durable. Returns how many were removed.
    ///
    /// On an error (or a crash) part-way, entries at or below `sequence` may remain; entries
    /// above it are untouched. Ack leftovers again rather than resend them: the collector sees
    /// anything at or below its head as a rollback.
    pub fn ack(&mut self, sequence: u64) -> Result<usize, SpoolError> {
        let acked: Vec<u64> = self.entries.range(..=sequence).map(|(&s, _)| s).collect();
        for &done in &acked {
            // Any removal, even one followed by a failure, leaves the directory to be fsynced.
            self.unsynced = true;
            disk::remove(&self.entry_path(done))?;
            self.forget(done);
        }
        if self.unsynced {
            disk::sync_dir(&self.dir)?;
            self.unsynced = false;
        }
        Ok(acked.len())
    }

    /// Moves an entry the collector rejected to `DIR/rejected/`: kept for forensics, no longer
    /// pending.
    pub fn set_aside(&mut self, sequence: u64) -> Result<PathBuf, SpoolError> {
        if !self.entries.contains_key(&sequence) {
            return Err(SpoolError::NotFound(sequence));
        }
        let path = self.entry_path(sequence);
        let rejected = self.dir.join(REJECTED_DIR);
        let moved = disk::move_aside(&path, &self.dir, &rejected);
        // Once renamed the file is out of the spool, even if a later fsync failed.
        if moved.is_ok() || !path.exists() {
            self.forget(sequence);
        }
        Ok(moved?)
    }

    /// Held entries' metadata, in sequence order.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.entries.values()
    }

    /// Reads one held entry, verifying its checksum again.
    pub fn read(&self, sequence: u64) -> Result<Entry, SpoolError> {
        if !self.entries.contains_key(&sequence) {
            return Err(SpoolError::NotFound(sequence));
        }
        let path = self.entry_path(sequence);
        let content = disk::read(&path)?;
        record::decode(&content, sequence).map_err(|problem| SpoolError::Corrupt { path, problem })
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held on disk, as counted against `max_bytes`.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Highest sequence held.
    pub fn newest(&self) -> Option<u64> {
        self.entries.keys().next_back().copied()
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The limits the size policy applies.
    pub fn limits(&self) -> SpoolLimits {
        self.limits
    }

    fn entry_path(&self, sequence: u64) -> PathBuf {
        self.dir.join(record::file_name(sequence))
    }

    fn forget(&mut self, sequence: u64) {
        if let Some(gone) = self.entries.remove(&sequence) {
            self.bytes -= gone.stored_bytes();
        }
    }

    fn over_limits(&self) -> bool {
        self.entries.len() > self.limits.max_entries || self.bytes > self.limits.max_bytes
    }

    /// The size policy: drop the oldest periodic entries, except `keep`, until within limits.
    fn trim(&mut self, keep: u64) -> Pushed {
        let mut count = self.entries.len();
        let mut bytes = self.bytes;
        let victims: Vec<u64> = self
            .entries
            .values()
            .filter(|p| p.kind == EntryKind::Periodic && p.sequence != keep)
            .take_while(|p| {
                let over = count > self.limits.max_entries || bytes > self.limits.max_bytes;
                if over {
                    count -= 1;
                    bytes -= p.stored_bytes();
                }
                over
            })
            .map(|p| p.sequence)
            .collect();
        let mut pushed = Pushed::default();
        for victim in victims {
            if let Err(failure) = disk::remove(&self.entry_path(victim)) {
                pushed.trim_error = Some(failure.into());
                break;
            }
            self.forget(victim);
            pushed.dropped.push(victim);
        }
        if !pushed.dropped.is_empty()
            && let Err(failure) = disk::sync_dir(&self.dir)
        {
            self.unsynced = true;
            pushed.trim_error.get_or_insert(failure.into());
        }
        pushed.over_limits = self.over_limits();
        pushed
    }
}

fn pending(entry: &Entry) -> Pending {
    Pending {
        sequence: entry.sequence,
        kind: entry.kind,
        // `encode` or `decode` has already checked that the length fits in a u32.
        len: u32::try_from(entry.bytes.len()).unwrap_or(u32::MAX),
    }
}
