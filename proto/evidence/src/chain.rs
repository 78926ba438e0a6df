//! The hash chain: each attestation names its sequence and the digest of the one before.
//! Both the agent (to never fork on restart) and the collector (to reject rollback, forks and
//! reordering, and to record gaps) apply these rules.

use crate::{AttestationPayload, ChainDigest};

/// Where a chain stands: the last accepted sequence and its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Last accepted sequence number.
    pub sequence: u64,
    /// Its chain digest.
    pub digest: ChainDigest,
}

/// How a new attestation relates to the chain head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The first attestation of a chain, or exactly the next one.
    Next,
    /// Later than the next: `missing` attestations were lost (accepted; the gap is recorded).
    Gap {
        /// How many sequence numbers were skipped.
        missing: u64,
    },
}

/// An attestation that cannot extend the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A sequence at or below the head with different content: a rewind or replay.
    #[error("sequence {sequence} is not after the chain head {head}")]
    Rollback {
        /// The offered sequence.
        sequence: u64,
        /// The head's sequence.
        head: u64,
    },
    /// The same sequence as the head with a different digest: two histories.
    #[error("sequence {sequence} forks the chain: a different attestation has that sequence")]
    Fork {
        /// The forked sequence.
        sequence: u64,
    },
    /// The next sequence, but naming another predecessor.
    #[error("sequence {sequence} names a previous digest that is not the chain head's")]
    PreviousDigestMismatch {
        /// The offered sequence.
        sequence: u64,
    },
    /// Sequence 0, or a first attestation with a previous digest.
    #[error("sequence {sequence} cannot start a chain")]
    BadStart {
        /// The offered sequence.
        sequence: u64,
    },
}

impl ChainHead {
    /// Checks that `payload` (whose own chain digest is `digest`) may follow this head;
    /// `None` for a chain with nothing accepted yet.
    pub fn check(
        head: Option<ChainHead>,
        payload: &AttestationPayload,
        digest: ChainDigest,
    ) -> Result<Link, ChainError> {
        let sequence = payload.sequence;
        if sequence == 0 {
            return Err(ChainError::BadStart { sequence });
        }
        let Some(head) = head else {
            // The collector may first see a chain after its start (an agent enrolled elsewhere
            // or history lost); sequence 1 must start from genesis.
            return match sequence {
                1 if payload.previous_digest != ChainDigest::GENESIS => {
                    Err(ChainError::BadStart { sequence })
                }
                1 => Ok(Link::Next),
                _ => Ok(Link::Gap {
                    missing: sequence - 1,
                }),
            };
        };
        if sequence == head.sequence && digest != head.digest {
            return Err(ChainError::Fork { sequence });
        }
        if sequence <= head.sequence {
            return Err(ChainError::Rollback {
                sequence,
                head: head.sequence,
            });
        }
        if sequence == head.sequence + 1 {
            return if payload.previous_digest == head.digest {
                Ok(Link::Next)
            } else {
                Err(ChainError::PreviousDigestMismatch { sequence })
            };
        }
        Ok(Link::Gap {
            missing: sequence - head.sequence - 1,
        })
    }

    /// The head after accepting `payload`.
    pub fn after(payload: &AttestationPayload, digest: ChainDigest) -> ChainHead {
        ChainHead {
            sequence: payload.sequence,
            digest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EvidenceSource, HostId, KeyId, SiteId, Totals};

    fn payload(sequence: u64, previous: ChainDigest) -> AttestationPayload {
        AttestationPayload {
            key_id: KeyId::of_public_key(b"key"),
            host_id: HostId("host".into()),
            site_id: SiteId("site".into()),
            sequence,
            previous_digest: previous,
            issued_at_unix_ms: 0,
            collector_nonce: Vec::new(),
            devices: Vec::new(),
            totals: Totals::default(),
            catalogue_digest: String::new(),
            policy_digest: String::new(),
            agent_version: String::new(),
            source: EvidenceSource::Simulated,
            driver_version: String::new(),
        }
    }

    fn digest(byte: u8) -> ChainDigest {
        ChainDigest::of_payload(&[byte])
    }

    #[test]
    fn a_chain_starts_at_one_from_genesis() {
        assert_eq!(
            ChainHead::check(None, &payload(1, ChainDigest::GENESIS), digest(1)),
            Ok(Link::Next)
        );
        assert_eq!(
            ChainHead::check(None, &payload(1, digest(9)), digest(1)),
            Err(ChainError::BadStart { sequence: 1 })
        );
        assert_eq!(
            ChainHead::check(None, &payload(0, ChainDigest::GENESIS), digest(1)),
            Err(ChainError::BadStart { sequence: 0 })
        );
        assert_eq!(
            ChainHead::check(None, &payload(5, digest(4)), digest(5)),
            Ok(Link::Gap { missing: 4 })
        );
    }

    #[test]
    fn next_gap_rollback_fork_and_mismatch() {
        let head = Some(ChainHead {
            sequence: 7,
            digest: digest(7),
        });
        assert_eq!(
            ChainHead::check(head, &payload(8, digest(7)), digest(8)),
            Ok(Link::Next)
        );
        assert_eq!(
            ChainHead::check(head, &payload(8, digest(6)), digest(8)),
            Err(ChainError::PreviousDigestMismatch { sequence: 8 })
        );
        assert_eq!(
            ChainHead::check(head, &payload(10, digest(9)), digest(10)),
            Ok(Link::Gap { missing: 2 })
        );
        assert_eq!(
            ChainHead::check(head, &payload(7, digest(6)), digest(70)),
            Err(ChainError::Fork { sequence: 7 })
        );
        assert_eq!(
            ChainHead::check(head, &payload(3, digest(2)), digest(3)),
            Err(ChainError::Rollback {
                sequence: 3,
                head: 7
            })
        );
        // Resubmitting the head itself is a rollback to the chain; the collector acknowledges
        // stored (key, sequence) pairs before it asks the chain.
        assert_eq!(
            ChainHead::check(head, &payload(7, digest(6)), digest(7)),
            Err(ChainError::Rollback {
                sequence: 7,
                head: 7
            })
        );
    }
}
