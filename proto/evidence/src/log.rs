//! What the collector's transparency log holds, byte for byte: the entries (Merkle leaves),
//! the tree heads it signs, and the detached signature of a monthly report.
//!
//! Every party hashes the same bytes: the collector when it appends, an auditor when it
//! re-derives a leaf from an exported attestation and checks its inclusion proof. The
//! encodings are fixed-width big-endian fields and length-prefixed strings, with a version
//! byte first, so a decoder never guesses.

use std::fmt;

use crate::{KeyId, Sha256};

/// Domain-separation context signed before a tree head.
pub const TREE_HEAD_CONTEXT: &[u8] = b"veu-attest/v1/tree-head\0";

/// Domain-separation context signed before a monthly report (`report.json`'s exact bytes).
pub const REPORT_CONTEXT: &[u8] = b"veu-attest/v1/report\0";

/// Version byte of the entry and tree-head encodings.
const FORMAT: u8 = 1;

/// Longest host or site id an entry holds (the encodings use a 16-bit length).
pub const MAX_ID_BYTES: usize = u16::MAX as usize;

/// One leaf of the log, in append order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogEntry {
    /// An accepted attestation: when the collector received it and the SHA-256 of the exact
    /// envelope bytes it stored.
    Attestation {
        /// Collector time of receipt, ms since the Unix epoch.
        received_at_ms: i64,
        /// SHA-256 of the stored envelope encoding.
        envelope: Sha256,
    },
    /// A key enrolled (or enrolled again) for a host at a site.
    ///
    /// The key id is the SHA-256 of `public_key`.
    KeyEnrolled {
        /// Enrolment time.
        at_ms: i64,
        /// The raw Ed25519 public key; its SHA-256 is the key id.
        public_key: [u8; 32],
        /// The host it attests for.
        host_id: String,
        /// The site it was enrolled at.
        site_id: String,
        /// The site's country (ISO 3166-1 alpha-2): where the host's compute counts.
        country: String,
    },
    /// A key revoked: nothing it signs later is accepted.
    KeyRevoked {
        /// Revocation time.
        at_ms: i64,
        /// The revoked key.
        key_id: KeyId,
    },
    /// An administrator re-bound an existing host to a new key, perhaps at another site: every
    /// earlier key of the host is revoked, and the host counts nothing until the new key
    /// attests. The key id is the SHA-256 of `public_key`.
    HostRebound {
        /// Re-binding time.
        at_ms: i64,
        /// The new key's raw Ed25519 public key.
        public_key: [u8; 32],
        /// The host.
        host_id: String,
        /// Its (new) site.
        site_id: String,
        /// The site's country.
        country: String,
    },
    /// A host decommissioned by an operator: it counts nothing from then on; its later
    /// attestations are kept as evidence and flagged.
    HostDecommissioned {
        /// Decommissioning time.
        at_ms: i64,
        /// The host.
        host_id: String,
    },
    /// A landmark's round-trip measurement of a host's agent key, as the collector accepted it
    /// (`crate::location`): the signed statement's exact encoding.
    Measurement {
        /// Collector time of receipt.
        received_at_ms: i64,
        /// [`crate::location::SignedMeasurement::encode`].
        measurement: Vec<u8>,
    },
}

/// Kind bytes of the encodings.
const ATTESTATION: u8 = 1;
const KEY_ENROLLED: u8 = 2;
const KEY_REVOKED: u8 = 3;
const HOST_DECOMMISSIONED: u8 = 4;
const HOST_REBOUND: u8 = 5;
const MEASUREMENT: u8 = 6;

/// Bytes that are not a log entry or tree head this version knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogDecodeError {
    /// The version byte is not 1.
    #[error("unknown log encoding version {0}")]
    Version(u8),
    /// The kind byte names no entry.
    #[error("unknown log entry kind {0}")]
    Kind(u8),
    /// The bytes end before a field.
    #[error("log record truncated at byte {0}")]
    Truncated(usize),
    /// Bytes remain after the last field.
    #[error("{0} trailing bytes after the log record")]
    Trailing(usize),
    /// A string field is not UTF-8.
    #[error("a string field of the log record is not UTF-8")]
    Utf8,
    /// A string is longer than an entry can hold, or a record longer than its kind allows.
    #[error("a field or record of {0} bytes is longer than allowed")]
    TooLong(usize),
    /// A field holds a value outside its range (named).
    #[error("the {0} field is out of range")]
    Range(&'static str),
}

impl LogEntry {
    /// The entry's instant (receipt time for attestations).
    pub fn at_ms(&self) -> i64 {
        match self {
            Self::Attestation { received_at_ms, .. } | Self::Measurement { received_at_ms, .. } => {
                *received_at_ms
            }
            Self::KeyEnrolled { at_ms, .. }
            | Self::HostRebound { at_ms, .. }
            | Self::KeyRevoked { at_ms, .. }
            | Self::HostDecommissioned { at_ms, .. } => *at_ms,
        }
    }

    /// Short name of the kind: `attestation`, `key_enrolled`, `host_rebound`, `key_revoked`,
    /// `host_decommissioned`, `measurement`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Attestation { .. } => "attestation",
            Self::KeyEnrolled { .. } => "key_enrolled",
            Self::HostRebound { .. } => "host_rebound",
            Self::KeyRevoked { .. } => "key_revoked",
            Self::HostDecommissioned { .. } => "host_decommissioned",
            Self::Measurement { .. } => "measurement",
        }
    }

    /// The leaf's bytes (hashed as the Merkle leaf).
    pub fn encode(&self) -> Result<Vec<u8>, LogDecodeError> {
        let mut out = Vec::with_capacity(48);
        out.push(FORMAT);
        match self {
            Self::Attestation {
                received_at_ms,
                envelope,
            } => {
                out.push(ATTESTATION);
                out.extend_from_slice(&received_at_ms.to_be_bytes());
                out.extend_from_slice(envelope.as_bytes());
            }
            Self::KeyEnrolled {
                at_ms,
                public_key,
                host_id,
                site_id,
                country,
            }
            | Self::HostRebound {
                at_ms,
                public_key,
                host_id,
                site_id,
                country,
            } => {
                out.push(if matches!(self, Self::KeyEnrolled { .. }) {
                    KEY_ENROLLED
                } else {
                    HOST_REBOUND
                });
                out.extend_from_slice(&at_ms.to_be_bytes());
                out.extend_from_slice(public_key);
                put_str(&mut out, host_id)?;
                put_str(&mut out, site_id)?;
                put_str(&mut out, country)?;
            }
            Self::KeyRevoked { at_ms, key_id } => {
                out.push(KEY_REVOKED);
                out.extend_from_slice(&at_ms.to_be_bytes());
                out.extend_from_slice(key_id.0.as_bytes());
            }
            Self::HostDecommissioned { at_ms, host_id } => {
                out.push(HOST_DECOMMISSIONED);
                out.extend_from_slice(&at_ms.to_be_bytes());
                put_str(&mut out, host_id)?;
            }
            Self::Measurement {
                received_at_ms,
                measurement,
            } => {
                if measurement.len() > crate::location::MAX_SIGNED_MEASUREMENT_BYTES {
                    return Err(LogDecodeError::TooLong(measurement.len()));
                }
                out.push(MEASUREMENT);
                out.extend_from_slice(&received_at_ms.to_be_bytes());
                out.extend_from_slice(&(measurement.len() as u16).to_be_bytes());
                out.extend_from_slice(measurement);
            }
        }
        Ok(out)
    }

    /// Reads an entry back; any other bytes are an error, never a guess.
    pub fn decode(bytes: &[u8]) -> Result<Self, LogDecodeError> {
        let mut reader = Reader { bytes, at: 0 };
        let version = reader.byte()?;
        if version != FORMAT {
            return Err(LogDecodeError::Version(version));
        }
        let kind = reader.byte()?;
        let at_ms = reader.i64()?;
        let entry = match kind {
            ATTESTATION => Self::Attestation {
                received_at_ms: at_ms,
                envelope: Sha256(reader.array()?),
            },
            KEY_ENROLLED => Self::KeyEnrolled {
                at_ms,
                public_key: reader.array()?,
                host_id: reader.string()?,
                site_id: reader.string()?,
                country: reader.string()?,
            },
            HOST_REBOUND => Self::HostRebound {
                at_ms,
                public_key: reader.array()?,
                host_id: reader.string()?,
                site_id: reader.string()?,
                country: reader.string()?,
            },
            KEY_REVOKED => Self::KeyRevoked {
                at_ms,
                key_id: KeyId(Sha256(reader.array()?)),
            },
            HOST_DECOMMISSIONED => Self::HostDecommissioned {
                at_ms,
                host_id: reader.string()?,
            },
            MEASUREMENT => {
                let len = usize::from(u16::from_be_bytes(reader.array()?));
                if len > crate::location::MAX_SIGNED_MEASUREMENT_BYTES {
                    return Err(LogDecodeError::TooLong(len));
                }
                Self::Measurement {
                    received_at_ms: at_ms,
                    measurement: reader.take(len)?.to_vec(),
                }
            }
            other => return Err(LogDecodeError::Kind(other)),
        };
        reader.finish()?;
        Ok(entry)
    }
}

/// The log's state the collector signs: its size, its Merkle root and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeHead {
    /// Leaves in the tree.
    pub tree_size: u64,
    /// RFC 6962 Merkle tree hash of those leaves.
    pub root: [u8; 32],
    /// When the collector signed it, ms since the Unix epoch.
    pub timestamp_ms: i64,
}

impl TreeHead {
    /// Length of the encoding.
    pub const ENCODED_LEN: usize = 1 + 8 + 8 + 32;

    /// The signed bytes: version, size, time, root.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_LEN);
        out.push(FORMAT);
        out.extend_from_slice(&self.tree_size.to_be_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.root);
        out
    }

    /// Reads signed bytes back.
    pub fn decode(bytes: &[u8]) -> Result<Self, LogDecodeError> {
        let mut reader = Reader { bytes, at: 0 };
        let version = reader.byte()?;
        if version != FORMAT {
            return Err(LogDecodeError::Version(version));
        }
        let tree_size = reader.u64()?;
        let timestamp_ms = reader.i64()?;
        let root = reader.array()?;
        reader.finish()?;
        Ok(Self {
            tree_size,
            root,
            timestamp_ms,
        })
    }
}

impl fmt::Display for TreeHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "size {} root {}", self.tree_size, Sha256(self.root))
    }
}

pub(crate) fn put_str(out: &mut Vec<u8>, value: &str) -> Result<(), LogDecodeError> {
    let len = u16::try_from(value.len()).map_err(|_| LogDecodeError::TooLong(value.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value.as_bytes());
    Ok(())
}

pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl Reader<'_> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&[u8], LogDecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(LogDecodeError::Truncated(self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], LogDecodeError> {
        let at = self.at;
        self.take(N)?
            .try_into()
            .map_err(|_| LogDecodeError::Truncated(at))
    }

    pub(crate) fn byte(&mut self) -> Result<u8, LogDecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u64(&mut self) -> Result<u64, LogDecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, LogDecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn string(&mut self) -> Result<String, LogDecodeError> {
        let len = u16::from_be_bytes(self.array()?);
        let bytes = self.take(usize::from(len))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| LogDecodeError::Utf8)
    }

    pub(crate) fn finish(&self) -> Result<(), LogDecodeError> {
        match self.bytes.len() - self.at {
            0 => Ok(()),
            trailing => Err(LogDecodeError::Trailing(trailing)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn entries() -> Vec<LogEntry> {
        vec![
            LogEntry::Measurement {
                received_at_ms: 5,
                measurement: vec![1, 0, 2, 7, 7],
            },
            LogEntry::Attestation {
                received_at_ms: 1_764_000_000_000,
                envelope: Sha256::of(b"envelope"),
            },
            LogEntry::KeyEnrolled {
                at_ms: 7,
                public_key: [9; 32],
                host_id: "gpu-node-17".into(),
                site_id: "us-east-1".into(),
                country: "US".into(),
            },
            LogEntry::KeyRevoked {
                at_ms: -1,
                key_id: KeyId::of_public_key(&[9; 32]),
            },
            LogEntry::HostDecommissioned {
                at_ms: i64::MAX,
                host_id: "ü-host".into(),
            },
        ]
    }

    #[test]
    fn entries_round_trip_and_keep_their_kind() {
        for entry in entries() {
            let bytes = entry.encode().unwrap();
            assert_eq!(LogEntry::decode(&bytes).unwrap(), entry);
        }
    }

    #[test]
    fn the_attestation_encoding_is_fixed() {
        let entry = LogEntry::Attestation {
            received_at_ms: 1,
            envelope: Sha256::ZERO,
        };
        let mut expected = vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        expected.extend_from_slice(&[0; 32]);
        assert_eq!(entry.encode().unwrap(), expected);
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        for entry in entries() {
            let bytes = entry.encode().unwrap();
            for cut in 0..bytes.len() {
                assert!(
                    LogEntry::decode(&bytes[..cut]).is_err(),
                    "{entry:?} cut {cut}"
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(LogEntry::decode(&longer), Err(LogDecodeError::Trailing(1)));
        }
        assert_eq!(LogEntry::decode(&[2, 1]), Err(LogDecodeError::Version(2)));
        let mut unknown = entries()[0].encode().unwrap();
        unknown[1] = 9;
        assert_eq!(LogEntry::decode(&unknown), Err(LogDecodeError::Kind(9)));
    }

    #[test]
    fn overlong_ids_are_refused_when_encoding() {
        let entry = LogEntry::HostDecommissioned {
            at_ms: 0,
            host_id: "h".repeat(MAX_ID_BYTES + 1),
        };
        assert_eq!(
            entry.encode(),
            Err(LogDecodeError::TooLong(MAX_ID_BYTES + 1))
        );
    }

    #[test]
    fn tree_heads_round_trip_with_a_fixed_length() {
        let head = TreeHead {
            tree_size: 42,
            root: [7; 32],
            timestamp_ms: 1_764_000_000_000,
        };
        let bytes = head.encode();
        assert_eq!(bytes.len(), TreeHead::ENCODED_LEN);
        assert_eq!(TreeHead::decode(&bytes).unwrap(), head);
        assert!(TreeHead::decode(&bytes[..40]).is_err());
    }
}
