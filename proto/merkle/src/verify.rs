//! Proof verification as RFC 9162 sections 2.1.3.2 and 2.1.4.2 specify it, for an auditor
//! that holds signed tree heads and nothing else.
//!
//! The proof length is checked against the one the sizes imply before any hashing, so a
//! wrong length is reported as such. Nothing here indexes, shifts or subtracts out of range:
//! every input, however malformed, gets an answer.

use crate::{EMPTY_ROOT, Hash, node_hash};

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The leaf index is at or past the tree size.
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// The proof holds more or fewer hashes than the sizes imply.
    #[error("the proof holds {actual} hashes where the tree sizes imply {expected}")]
    WrongProofLength {
        /// How many hashes the sizes imply.
        expected: usize,
        /// How many hashes the proof holds.
        actual: usize,
    },
    /// The proof leads to a root other than the one claimed, or a claimed root is wrong on its
    /// own (the empty tree's root is always [`EMPTY_ROOT`]; equal sizes need equal roots).
    #[error("the proof does not lead to the claimed root")]
    RootMismatch,
    /// The old tree is larger than the new one.
    #[error("the old tree size {old_size} is larger than the new tree size {new_size}")]
    SizeOrder {
        /// The claimed old tree size.
        old_size: u64,
        /// The claimed new tree size.
        new_size: u64,
    },
    /// The old tree is empty, which every tree extends with an empty proof, yet the proof is
    /// not empty.
    #[error(
        "every tree extends the empty tree with an empty proof, but this one holds {actual} hashes"
    )]
    EmptyOldTree {
        /// How many hashes the proof holds.
        actual: usize,
    },
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` leaves whose root is `root`,
/// given its audit path `proof` (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(VerifyError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(VerifyError::WrongProofLength {
                expected,
                actual: proof.len(),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ != 0 && fn_ & 1 == 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(VerifyError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    if r != *root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root`, given the consistency proof `proof`
/// (RFC 9162 section 2.1.4.2).
///
/// Equal sizes need an empty proof and equal roots. Every tree extends the empty tree, whose
/// root is [`EMPTY_ROOT`], with an empty proof.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if old_size > new_size {
        return Err(VerifyError::SizeOrder { old_size, new_size });
    }
    if old_size == 0 {
        if !proof.is_empty() {
            return Err(VerifyError::EmptyOldTree {
                actual: proof.len(),
            });
        }
        if *old_root != EMPTY_ROOT || (new_size == 0 && new_root != old_root) {
            return Err(VerifyError::RootMismatch);
        }
        return Ok(());
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(VerifyError::WrongProofLength {
                expected: 0,
                actual: proof.len(),
            });
        }
        if old_root != new_root {
            return Err(VerifyError::RootMismatch);
        }
        return Ok(());
    }
    let expected = consistency_proof_len(old_size, new_size);
    let wrong_length = VerifyError::WrongProofLength {
        expected,
        actual: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }
    // A power-of-two old tree is one complete subtree of the new one: its root starts the
    // walk in place of the proof's first hash.
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (first, rest),
            None => return Err(wrong_length),
        }
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if sn == 0 {
            return Err(wrong_length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ != 0 && fn_ & 1 == 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(wrong_length);
    }
    if fr != *old_root || sr != *new_root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// The length of the audit path of leaf `index` in a tree of `size` leaves, `index < size`:
/// one hash per level below the point where the paths to `index` and to the last leaf part
/// (`inner`), plus one per left sibling above it (`border`), where the last leaf's path runs
/// along the right edge and skips levels that have no right sibling.
pub(crate) fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = bit_len(index ^ (size - 1));
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// The length of the consistency proof between trees of `old_size < new_size` leaves,
/// `old_size > 0`: the audit path of the old tree's last leaf in the new tree, less the levels
/// inside the largest complete subtree that ends the old tree (`shift`), plus that subtree's
/// root unless it is the whole old tree.
pub(crate) fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    let last = old_size - 1;
    let inner = bit_len(last ^ (new_size - 1));
    let border = last.checked_shr(inner).unwrap_or(0).count_ones();
    let shift = old_size.trailing_zeros();
    let seed = u32::from(!old_size.is_power_of_two());
    (seed + inner.saturating_sub(shift) + border) as usize
}

/// How many bits `value` needs.
fn bit_len(value: u64) -> u32 {
    u64::BITS - value.leading_zeros()
}
