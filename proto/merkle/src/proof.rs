//! Tree heads and proofs over stored nodes, following the recursions of RFC 6962 section 2.1.
//!
//! In that recursion a range `[a, a + n)` always starts at a multiple of the smallest power of
//! two that is at least `n`, so it splits into the complete aligned subtrees of the set bits
//! of `n`, largest first; its hash folds them from the right. The left part `[0, k)` of every
//! split is itself one complete subtree. Each function below therefore walks one path from
//! the root and asks the source for O(log n) nodes.

use crate::{EMPTY_ROOT, Hash, node_hash};

/// Where the complete subtrees of a tree are stored.
///
/// Node `(level, index)` is the complete, aligned subtree over leaves
/// `[index << level, (index + 1) << level)`; level 0 nodes are leaf hashes.
pub trait NodeSource {
    /// Why a node could not be read.
    type Error;

    /// Hash of the complete subtree `(level, index)`. Callers only ask for subtrees that lie
    /// entirely inside the tree size they work with.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// Why a root or proof could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProofError<E> {
    /// The request does not describe a proof: a leaf index at or past the tree size, or an
    /// old tree size that is zero or larger than the new one.
    #[error("{requested} is outside the valid range for a tree of {size} leaves")]
    OutOfRange {
        /// The leaf index, or the old tree size of a consistency proof.
        requested: u64,
        /// The tree size, or the new tree size of a consistency proof.
        size: u64,
    },
    /// The node source failed.
    #[error("cannot read a tree node")]
    Source(#[source] E),
}

/// The tree head MTH(D\[0:size\]) of the first `size` leaves; [`EMPTY_ROOT`] for 0.
pub fn root<S: NodeSource>(source: &S, size: u64) -> Result<Hash, ProofError<S::Error>> {
    range_root(source, 0, size).map_err(ProofError::Source)
}

/// The audit path PATH(index, D\[0:size\]) of RFC 6962 section 2.1.1: sibling hashes from the
/// leaf up to the root. Requires `index < size`.
pub fn inclusion_proof<S: NodeSource>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if index >= size {
        return Err(ProofError::OutOfRange {
            requested: index,
            size,
        });
    }
    // Collected from the root down; the proof lists them from the leaf up.
    let mut path = Vec::new();
    let (mut start, mut len, mut index) = (0, size, index);
    while len > 1 {
        let k = split(len);
        if index < k {
            path.push(range_root(source, start + k, len - k).map_err(ProofError::Source)?);
            len = k;
        } else {
            path.push(subtree(source, start, k).map_err(ProofError::Source)?);
            start += k;
            index -= k;
            len -= k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof PROOF(old_size, D\[0:new_size\]) of RFC 6962 section 2.1.2.
/// Requires `0 < old_size <= new_size`; equal sizes give an empty proof.
pub fn consistency_proof<S: NodeSource>(
    source: &S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if old_size == 0 || old_size > new_size {
        return Err(ProofError::OutOfRange {
            requested: old_size,
            size: new_size,
        });
    }
    // SUBPROOF(m, D[start:start + len], whole), unrolled; collected from the root down.
    let mut path = Vec::new();
    let (mut start, mut len, mut old, mut whole) = (0, new_size, old_size, true);
    while old < len {
        let k = split(len);
        if old <= k {
            path.push(range_root(source, start + k, len - k).map_err(ProofError::Source)?);
            len = k;
        } else {
            path.push(subtree(source, start, k).map_err(ProofError::Source)?);
            start += k;
            old -= k;
            len -= k;
            whole = false;
        }
    }
    if !whole {
        path.push(range_root(source, start, len).map_err(ProofError::Source)?);
    }
    path.reverse();
    Ok(path)
}

/// The largest power of two strictly below `len`, for `len >= 2`.
fn split(len: u64) -> u64 {
    1 << (63 - (len - 1).leading_zeros())
}

/// The complete subtree of `len` leaves (a power of two) starting at leaf `start`.
fn subtree<S: NodeSource>(source: &S, start: u64, len: u64) -> Result<Hash, S::Error> {
    let level = len.trailing_zeros();
    source.node(level, start >> level)
}

/// MTH(D\[start:start + len\]) for a range that starts at a multiple of the smallest power of
/// two at least `len`, as every range in the RFC recursion does.
pub(crate) fn range_root<S: NodeSource>(
    source: &S,
    start: u64,
    len: u64,
) -> Result<Hash, S::Error> {
    Ok(fold_right(&subtree_roots(source, start, len)?))
}

/// The complete aligned subtrees that make up such a range: one per set bit of `len`,
/// largest first.
pub(crate) fn subtree_roots<S: NodeSource>(
    source: &S,
    start: u64,
    len: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut subtrees = Vec::with_capacity(len.count_ones() as usize);
    let mut at = start;
    for level in (0..u64::BITS).rev() {
        if len >> level & 1 == 1 {
            subtrees.push(source.node(level, at >> level)?);
            // Stays within start + len, which lies inside the tree.
            at = at.wrapping_add(1 << level);
        }
    }
    Ok(subtrees)
}

/// The root of consecutive complete subtrees, largest first: each one is the left child of
/// the root of the ones after it. The empty tree's root for none.
pub(crate) fn fold_right(subtrees: &[Hash]) -> Hash {
    let mut nodes = subtrees.iter().rev();
    match nodes.next() {
        None => EMPTY_ROOT,
        Some(last) => nodes.fold(*last, |right, left| node_hash(left, &right)),
    }
}
