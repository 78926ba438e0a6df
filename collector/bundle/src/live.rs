//! Checks on what a collector answers live: a signed tree head, a leaf's inclusion proof and a
//! consistency proof between two heads, each against the log key the auditor pinned. The same
//! mathematics [`crate::verify`] applies to a bundle; `veuctl log` prints what these find.
//!
//! Invariant: the collector's unsigned copies (size, root, time) are only compared with the
//! signed bytes, never used instead of them; every problem is collected, none stops the rest.

use collector_report::render::grouped;
use proto_evidence::{Envelope, LogEntry, Sha256, TreeHead};
use proto_merkle::Hash;
use proto_seal::{InvalidEnvelope, PublicKey};
use veu_daemon_kit::hex;

/// A tree head as a collector presents it: an unsigned copy beside the signed envelope.
#[derive(Debug, Clone, Copy)]
pub struct PresentedHead<'a> {
    /// Leaves, as the unsigned copy says.
    pub tree_size: u64,
    /// The root, as the unsigned copy says (32 bytes when well formed).
    pub root: &'a [u8],
    /// When it was signed, Unix ms, as the unsigned copy says.
    pub timestamp_ms: i64,
    /// The signed envelope: `None` when the head carries none, an error when it is malformed.
    pub signature: Option<&'a Result<Envelope, InvalidEnvelope>>,
    /// The log's public key as the collector presents it.
    pub log_public_key: &'a [u8],
}

/// One reason a live answer does not hold. `what` names the head (`the head`, `the old head`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveProblem {
    /// The head's signature envelope does not decode.
    #[error("{what}: its signature envelope is malformed: {error}")]
    MalformedSignature {
        what: &'static str,
        error: InvalidEnvelope,
    },
    /// The head carries no signature.
    #[error("{what}: it carries no signature")]
    Unsigned { what: &'static str },
    /// The signed bytes are not a tree head.
    #[error("{what}: its signed bytes are not a tree head: {error}")]
    NotATreeHead { what: &'static str, error: String },
    /// The unsigned copy differs from the signed head.
    #[error(
        "{what}: the unsigned size, root and time ({}, {}, {}) differ from the signed ones",
        copy.tree_size, hex(&copy.root), copy.timestamp_ms
    )]
    CopyDiffers { what: &'static str, copy: TreeHead },
    /// The collector presents another log key than the pinned one.
    #[error(
        "{what}: the collector presents log key {}, not the pinned key {}",
        hex(presented),
        hex(pinned)
    )]
    OtherKey {
        what: &'static str,
        presented: Vec<u8>,
        pinned: [u8; 32],
    },
    /// The pinned key did not sign the head.
    #[error("{what}: the signature does not verify with the pinned log key: {error}")]
    BadSignature { what: &'static str, error: String },
    /// A head of another size than the one asked for.
    #[error("asked for the head of {asked} leaves, got one of {got}")]
    WrongSize { asked: u64, got: u64 },
    /// The leaf asked for is past the head's tree.
    #[error("leaf {index} is not in the tree of {} the head signs", leaves(*tree_size))]
    LeafPastHead { index: u64, tree_size: u64 },
    /// The proof is for another leaf or another tree.
    #[error(
        "the collector answered for leaf {answered_index} in a tree of {answered_size}, not leaf {index} in {tree_size}"
    )]
    OtherLeaf {
        index: u64,
        tree_size: u64,
        answered_index: u64,
        answered_size: u64,
    },
    /// An audit-path hash is not 32 bytes.
    #[error("inclusion: the audit path holds a hash that is not 32 bytes")]
    PathHashLength,
    /// The leaf does not lead to the head's root.
    #[error("inclusion: {0}")]
    NotIncluded(String),
    /// The leaf's bytes are not a log entry.
    #[error("the leaf's bytes are not a log entry: {0}")]
    NotAnEntry(String),
    /// The envelope returned is not the one the leaf commits to.
    #[error("the envelope returned has SHA-256 {actual}, but the leaf commits to {committed}")]
    EnvelopeMismatch { actual: Sha256, committed: Sha256 },
    /// The older head is larger than the newer.
    #[error(
        "the old head ({}) is larger than the new one ({})",
        leaves(*old_size), grouped(*new_size)
    )]
    Shrunk { old_size: u64, new_size: u64 },
    /// The consistency proof is for other sizes.
    #[error(
        "the collector answered for sizes {answered_first} and {answered_second}, not {first} and {second}"
    )]
    OtherSizes {
        first: u64,
        second: u64,
        answered_first: u64,
        answered_second: u64,
    },
    /// A consistency-proof hash is not 32 bytes.
    #[error("consistency: the proof holds a hash that is not 32 bytes")]
    ProofHashLength,
    /// The newer tree does not extend the older one.
    #[error("consistency: {0}")]
    Inconsistent(String),
}

/// `n leaves`, grouped, singular for one.
fn leaves(count: u64) -> String {
    format!(
        "{} {}",
        grouped(count),
        if count == 1 { "leaf" } else { "leaves" }
    )
}

/// A head as checked: the signed fields (the unsigned copy's when nothing signed could be
/// read), who signed it and whether the pinned key verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedHead {
    /// The head's fields.
    pub signed: TreeHead,
    /// The key id the signature names; empty without a readable signature.
    pub key_id: String,
    /// Whether the pinned key verified it.
    pub verified: bool,
    /// The encoded signed envelope, when there was one: what `veuctl verify --known-head`
    /// reads back from a kept head.
    pub envelope: Option<Vec<u8>>,
}

/// Checks `head`: its signed bytes decode, its unsigned copy agrees with them and, with a
/// pinned key, the signature verifies and the collector presents that key. Every problem goes
/// to `problems`, named with `what`.
pub fn check_head(
    head: &PresentedHead<'_>,
    pinned: Option<&PublicKey>,
    what: &'static str,
    problems: &mut Vec<LiveProblem>,
) -> CheckedHead {
    let copy = TreeHead {
        tree_size: head.tree_size,
        root: hash32(head.root).unwrap_or_default(),
        timestamp_ms: head.timestamp_ms,
    };
    let unsigned = |copy: TreeHead| CheckedHead {
        signed: copy,
        key_id: String::new(),
        verified: false,
        envelope: None,
    };
    let envelope = match head.signature {
        Some(Ok(envelope)) => envelope,
        Some(Err(error)) => {
            problems.push(LiveProblem::MalformedSignature {
                what,
                error: error.clone(),
            });
            return unsigned(copy);
        }
        None => {
            problems.push(LiveProblem::Unsigned { what });
            return unsigned(copy);
        }
    };
    let signed = match TreeHead::decode(&envelope.payload) {
        Ok(signed) => signed,
        Err(error) => {
            problems.push(LiveProblem::NotATreeHead {
                what,
                error: error.to_string(),
            });
            return unsigned(copy);
        }
    };
    if signed != copy {
        problems.push(LiveProblem::CopyDiffers { what, copy });
    }
    let mut verified = false;
    if let Some(key) = pinned {
        if head.log_public_key != key.as_bytes() {
            problems.push(LiveProblem::OtherKey {
                what,
                presented: head.log_public_key.to_vec(),
                pinned: *key.as_bytes(),
            });
        }
        match proto_seal::open_tree_head(envelope, key) {
            Ok(_) => verified = true,
            Err(error) => problems.push(LiveProblem::BadSignature {
                what,
                error: error.to_string(),
            }),
        }
    }
    CheckedHead {
        signed,
        key_id: envelope.key_id.to_string(),
        verified,
        envelope: Some(proto_seal::encode_envelope(envelope)),
    }
}

/// A head of `got` leaves where `asked` (when given) was asked for.
pub fn check_size(asked: Option<u64>, got: u64, problems: &mut Vec<LiveProblem>) {
    if let Some(asked) = asked
        && asked != got
    {
        problems.push(LiveProblem::WrongSize { asked, got });
    }
}

/// An inclusion proof as a collector sends it.
#[derive(Debug, Clone, Copy)]
pub struct PresentedInclusion<'a> {
    /// The leaf the proof is for.
    pub log_index: u64,
    /// The tree it is in.
    pub tree_size: u64,
    /// Sibling hashes from the leaf up.
    pub audit_path: &'a [Vec<u8>],
    /// The leaf's exact entry bytes.
    pub entry: &'a [u8],
    /// For an attestation, the stored envelope bytes the leaf commits to.
    pub envelope: &'a [u8],
}

/// Checks that leaf `index` is in `head`'s tree by `proof` and, for an attestation, that the
/// envelope returned is the one the leaf commits to. The leaf's entry when it decodes (for a
/// caller to describe it), whatever else was found.
pub fn check_inclusion(
    index: u64,
    head: &TreeHead,
    proof: &PresentedInclusion<'_>,
    problems: &mut Vec<LiveProblem>,
) -> Option<LogEntry> {
    if proof.log_index != index || proof.tree_size != head.tree_size {
        problems.push(LiveProblem::OtherLeaf {
            index,
            tree_size: head.tree_size,
            answered_index: proof.log_index,
            answered_size: proof.tree_size,
        });
    }
    match hashes(proof.audit_path) {
        Some(path) => {
            let leaf = proto_merkle::leaf_hash(proof.entry);
            if let Err(error) =
                proto_merkle::verify_inclusion(&leaf, index, head.tree_size, &path, &head.root)
            {
                problems.push(LiveProblem::NotIncluded(error.to_string()));
            }
        }
        None => problems.push(LiveProblem::PathHashLength),
    }
    let entry = match LogEntry::decode(proof.entry) {
        Ok(entry) => entry,
        Err(error) => {
            problems.push(LiveProblem::NotAnEntry(error.to_string()));
            return None;
        }
    };
    if let LogEntry::Attestation { envelope, .. } = &entry {
        let actual = Sha256::of(proof.envelope);
        if actual != *envelope {
            problems.push(LiveProblem::EnvelopeMismatch {
                actual,
                committed: *envelope,
            });
        }
    }
    Some(entry)
}

/// A consistency proof as a collector sends it.
#[derive(Debug, Clone, Copy)]
pub struct PresentedConsistency<'a> {
    /// The older tree's size.
    pub first_tree_size: u64,
    /// The newer tree's size.
    pub second_tree_size: u64,
    /// The proof's hashes.
    pub proof: &'a [Vec<u8>],
}

/// Checks that `new`'s tree extends `old`'s unchanged by `proof`; `None` when the collector
/// sent none because the old head is the larger.
pub fn check_consistency(
    old: &TreeHead,
    new: &TreeHead,
    proof: Option<&PresentedConsistency<'_>>,
    problems: &mut Vec<LiveProblem>,
) {
    let Some(proof) = proof.filter(|_| old.tree_size <= new.tree_size) else {
        problems.push(LiveProblem::Shrunk {
            old_size: old.tree_size,
            new_size: new.tree_size,
        });
        return;
    };
    if (proof.first_tree_size, proof.second_tree_size) != (old.tree_size, new.tree_size) {
        problems.push(LiveProblem::OtherSizes {
            first: old.tree_size,
            second: new.tree_size,
            answered_first: proof.first_tree_size,
            answered_second: proof.second_tree_size,
        });
    }
    match hashes(proof.proof) {
        Some(path) => {
            if let Err(error) = proto_merkle::verify_consistency(
                old.tree_size,
                new.tree_size,
                &old.root,
                &new.root,
                &path,
            ) {
                problems.push(LiveProblem::Inconsistent(error.to_string()));
            }
        }
        None => problems.push(LiveProblem::ProofHashLength),
    }
}

fn hash32(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

fn hashes(list: &[Vec<u8>]) -> Option<Vec<Hash>> {
    list.iter().map(|h| hash32(h)).collect()
}

#[cfg(test)]
mod tests {
    use proto_seal::Ed25519Signer;

    use super::*;

    fn log_key() -> Ed25519Signer {
        Ed25519Signer::from_seed(&[7; 32]).unwrap()
    }

    fn leaves_of(count: u8) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| {
                LogEntry::KeyRevoked {
                    at_ms: i64::from(i),
                    key_id: proto_evidence::KeyId::of_public_key(&[i; 32]),
                }
                .encode()
                .unwrap()
            })
            .collect()
    }

    fn tree_of(leaves: &[Vec<u8>]) -> proto_merkle::MemoryTree {
        proto_merkle::MemoryTree::from_leaves(leaves.iter().map(|l| proto_merkle::leaf_hash(l)))
    }

    fn signed_head(leaves: &[Vec<u8>]) -> (TreeHead, Result<Envelope, InvalidEnvelope>) {
        let tree = tree_of(leaves);
        let head = TreeHead {
            tree_size: tree.size(),
            root: tree.root(),
            timestamp_ms: 1_000,
        };
        let envelope = log_key().sign(proto_evidence::TREE_HEAD_CONTEXT, head.encode());
        (head, Ok(envelope))
    }

    fn presented<'a>(
        head: &'a TreeHead,
        signature: &'a Result<Envelope, InvalidEnvelope>,
        key: &'a [u8],
    ) -> PresentedHead<'a> {
        PresentedHead {
            tree_size: head.tree_size,
            root: &head.root,
            timestamp_ms: head.timestamp_ms,
            signature: Some(signature),
            log_public_key: key,
        }
    }

    #[test]
    fn an_honest_head_verifies_and_a_lying_copy_or_key_does_not() {
        let pinned = log_key().public_key();
        let (head, signature) = signed_head(&leaves_of(5));
        let mut problems = Vec::new();
        let checked = check_head(
            &presented(&head, &signature, pinned.as_bytes()),
            Some(&pinned),
            "the head",
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert!(checked.verified);
        assert_eq!(checked.signed, head);

        // The unsigned copy claims more leaves than were signed: the signed head is what
        // counts, and the lie is reported.
        let lying = TreeHead {
            tree_size: 9,
            ..head
        };
        let mut problems = Vec::new();
        let checked = check_head(
            &presented(&lying, &signature, pinned.as_bytes()),
            Some(&pinned),
            "the head",
            &mut problems,
        );
        assert_eq!(checked.signed.tree_size, 5);
        assert!(matches!(problems[..], [LiveProblem::CopyDiffers { .. }]));

        // Signed by another key, presented as that key: the pinned key refuses it.
        let other = Ed25519Signer::from_seed(&[8; 32]).unwrap();
        let forged = Ok(other.sign(proto_evidence::TREE_HEAD_CONTEXT, head.encode()));
        let mut problems = Vec::new();
        let checked = check_head(
            &presented(&head, &forged, other.public_key().as_bytes()),
            Some(&pinned),
            "the head",
            &mut problems,
        );
        assert!(!checked.verified);
        assert!(matches!(
            problems[..],
            [
                LiveProblem::OtherKey { .. },
                LiveProblem::BadSignature { .. }
            ]
        ));
        assert!(
            problems[0]
                .to_string()
                .starts_with("the head: the collector presents log key")
        );
    }

    #[test]
    fn inclusion_holds_only_for_the_leaf_and_tree_it_was_made_for() {
        let leaves = leaves_of(7);
        let (head, _) = signed_head(&leaves);
        let path: Vec<Vec<u8>> = proto_merkle::inclusion_proof(&tree_of(&leaves), 3, 7)
            .unwrap()
            .iter()
            .map(|h| h.to_vec())
            .collect();
        let proof = PresentedInclusion {
            log_index: 3,
            tree_size: 7,
            audit_path: &path,
            entry: &leaves[3],
            envelope: &[],
        };
        let mut problems = Vec::new();
        assert!(check_inclusion(3, &head, &proof, &mut problems).is_some());
        assert!(problems.is_empty(), "{problems:?}");

        // Another leaf's bytes on the same path.
        let swapped = PresentedInclusion {
            entry: &leaves[4],
            ..proof
        };
        let mut problems = Vec::new();
        check_inclusion(3, &head, &swapped, &mut problems);
        assert!(matches!(problems[..], [LiveProblem::NotIncluded(_)]));

        // The proof of leaf 3 offered for leaf 2.
        let mut problems = Vec::new();
        check_inclusion(2, &head, &proof, &mut problems);
        assert!(matches!(problems[0], LiveProblem::OtherLeaf { .. }));

        // A truncated hash in the path.
        let short = vec![vec![0; 31]];
        let broken = PresentedInclusion {
            audit_path: &short,
            ..proof
        };
        let mut problems = Vec::new();
        check_inclusion(3, &head, &broken, &mut problems);
        assert_eq!(problems, [LiveProblem::PathHashLength]);
    }

    #[test]
    fn consistency_holds_for_a_grown_log_and_not_for_a_rewritten_one() {
        let leaves = leaves_of(9);
        let (old, _) = signed_head(&leaves[..4]);
        let (new, _) = signed_head(&leaves);
        let proof: Vec<Vec<u8>> = proto_merkle::consistency_proof(&tree_of(&leaves), 4, 9)
            .unwrap()
            .iter()
            .map(|h| h.to_vec())
            .collect();
        let sent = PresentedConsistency {
            first_tree_size: 4,
            second_tree_size: 9,
            proof: &proof,
        };
        let mut problems = Vec::new();
        check_consistency(&old, &new, Some(&sent), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");

        // The first four leaves rewritten: the old head no longer fits the new tree.
        let mut rewritten = leaves.clone();
        rewritten[1] = leaves_of(12)[11].clone();
        let (new_rewritten, _) = signed_head(&rewritten);
        let mut problems = Vec::new();
        check_consistency(&old, &new_rewritten, Some(&sent), &mut problems);
        assert!(matches!(problems[..], [LiveProblem::Inconsistent(_)]));

        // Asked the wrong way round.
        let mut problems = Vec::new();
        check_consistency(&new, &old, None, &mut problems);
        assert_eq!(
            problems[0].to_string(),
            "the old head (9 leaves) is larger than the new one (4)"
        );
    }
}
