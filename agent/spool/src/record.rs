//! One spool file: `b"VEUSPOOL"`, format byte, kind byte, sequence (u64 LE), length (u32 LE),
//! the envelope bytes, then a CRC32 (LE) over everything before it.

use crate::{Entry, EntryKind};

const MAGIC: &[u8; 8] = b"VEUSPOOL";
const FORMAT: u8 = 1;
const HEADER_LEN: usize = 8 + 1 + 1 + 8 + 4;
const CRC_LEN: usize = 4;

/// Bytes a file holds beyond the envelope itself.
pub(crate) const OVERHEAD: u64 = (HEADER_LEN + CRC_LEN) as u64;

/// File name suffix of a complete entry.
pub(crate) const SUFFIX: &str = ".att";
/// File name suffix of an entry being written; never read back, removed on open.
pub(crate) const TEMP_SUFFIX: &str = ".att.tmp";

/// Why a spool file is not a valid entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEntry {
    /// The name is not `{sequence:020}.att` with a sequence that fits in a u64.
    #[error("the file name is not a 20-digit sequence followed by .att")]
    BadName,
    /// Shorter than its header and checksum, or than the length its header declares.
    #[error("truncated: {actual} bytes, expected {expected}")]
    Truncated {
        /// Bytes the file should hold.
        expected: u64,
        /// Bytes it holds.
        actual: u64,
    },
    /// Longer than the length its header declares.
    #[error("{actual} bytes, but the header declares {expected}")]
    TrailingBytes {
        /// Bytes the file should hold.
        expected: u64,
        /// Bytes it holds.
        actual: u64,
    },
    /// Does not start with `VEUSPOOL`.
    #[error("not a spool entry (bad magic)")]
    BadMagic,
    /// A format this build does not read.
    #[error("unsupported spool format {0}")]
    UnsupportedFormat(u8),
    /// The CRC32 does not match the content.
    #[error("checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    Checksum {
        /// The CRC32 in the file.
        stored: u32,
        /// The CRC32 of the content.
        computed: u32,
    },
    /// An entry kind this build does not know.
    #[error("unknown entry kind {0}")]
    UnknownKind(u8),
    /// The file name and the content name different sequences.
    #[error("the file name says sequence {name}, the content says {content}")]
    SequenceMismatch {
        /// Sequence in the file name.
        name: u64,
        /// Sequence in the content.
        content: u64,
    },
}

/// `{sequence:020}.att`: zero-padded so that directory listings sort in sequence order.
pub(crate) fn file_name(sequence: u64) -> String {
    format!("{sequence:020}{SUFFIX}")
}

/// The temporary name an entry is written under before it is renamed into place.
pub(crate) fn temp_name(sequence: u64) -> String {
    format!("{sequence:020}{TEMP_SUFFIX}")
}

/// What a directory entry's name says it is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Name {
    /// A complete entry with this sequence.
    Entry(u64),
    /// Named like an entry, but not a valid one.
    BadEntry,
    /// A leftover temporary file.
    Temp,
    /// Not the spool's.
    Other,
}

pub(crate) fn classify(name: &str) -> Name {
    if name.ends_with(TEMP_SUFFIX) {
        return Name::Temp;
    }
    let Some(digits) = name.strip_suffix(SUFFIX) else {
        return Name::Other;
    };
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Name::BadEntry;
    }
    digits.parse().map_or(Name::BadEntry, Name::Entry)
}

/// Encodes an entry; `None` when its bytes do not fit the format's u32 length.
pub(crate) fn encode(entry: &Entry) -> Option<Vec<u8>> {
    let len = u32::try_from(entry.bytes.len()).ok()?;
    let mut out = Vec::with_capacity(HEADER_LEN + entry.bytes.len() + CRC_LEN);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.push(kind_byte(entry.kind));
    out.extend_from_slice(&entry.sequence.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&entry.bytes);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Some(out)
}

/// Decodes and verifies a file's content; `name_sequence` is the sequence its name carries.
pub(crate) fn decode(content: &[u8], name_sequence: u64) -> Result<Entry, InvalidEntry> {
    let actual = content.len() as u64;
    let truncated = |expected: usize| InvalidEntry::Truncated {
        expected: expected as u64,
        actual,
    };
    let short = || truncated(HEADER_LEN + CRC_LEN);
    if content.len() < HEADER_LEN + CRC_LEN {
        return Err(short());
    }
    if field::<8>(content, 0).ok_or_else(short)? != *MAGIC {
        return Err(InvalidEntry::BadMagic);
    }
    let [format, kind] = field::<2>(content, 8).ok_or_else(short)?;
    if format != FORMAT {
        return Err(InvalidEntry::UnsupportedFormat(format));
    }
    let sequence = u64::from_le_bytes(field(content, 10).ok_or_else(short)?);
    let len = u32::from_le_bytes(field(content, 18).ok_or_else(short)?) as usize;
    let expected = HEADER_LEN + len + CRC_LEN;
    if content.len() < expected {
        return Err(truncated(expected));
    }
    if content.len() > expected {
        return Err(InvalidEntry::TrailingBytes {
            expected: expected as u64,
            actual,
        });
    }
    let body = HEADER_LEN + len;
    let stored = u32::from_le_bytes(field(content, body).ok_or_else(|| truncated(expected))?);
    let computed = crc32fast::hash(&content[..body]);
    if stored != computed {
        return Err(InvalidEntry::Checksum { stored, computed });
    }
    let kind = match kind {
        1 => EntryKind::Periodic,
        2 => EntryKind::InventoryChange,
        other => return Err(InvalidEntry::UnknownKind(other)),
    };
    if sequence != name_sequence {
        return Err(InvalidEntry::SequenceMismatch {
            name: name_sequence,
            content: sequence,
        });
    }
    Ok(Entry {
        sequence,
        kind,
        bytes: content[HEADER_LEN..body].to_vec(),
    })
}

fn kind_byte(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::Periodic => 1,
        EntryKind::InventoryChange => 2,
    }
}

/// `N` bytes at `at`; `None` past the end (callers check lengths first, so that is a
/// truncation they report, never a panic).
fn field<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}
