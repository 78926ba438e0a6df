//! The right edge of a growing tree: the roots of the complete subtrees that make up the
//! first `size` leaves, one per set bit of `size`, largest first. Appending a leaf merges the
//! equal-sized subtrees at the end, the way adding one carries through the low set bits.

use crate::proof::{NodeSource, ProofError, fold_right, subtree_roots};
use crate::{Hash, node_hash};

/// The right edge of a growing tree: O(log n) hashes, enough to append and to compute the root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    /// How many leaves the tree holds.
    size: u64,
    /// Roots of the complete subtrees for the set bits of `size`, largest first.
    subtrees: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many leaves the tree holds.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash; returns every complete subtree node this append completed,
    /// as (level, index, hash), starting with the leaf itself at level 0, lowest level first.
    ///
    /// A tree holds at most `u64::MAX` leaves: pushing onto a full tree leaves it unchanged and
    /// returns no nodes.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let old_size = self.size;
        let Some(new_size) = old_size.checked_add(1) else {
            return Vec::new();
        };
        let mut completed = Vec::with_capacity(old_size.trailing_ones() as usize + 1);
        completed.push((0, old_size, leaf));
        let mut carry = leaf;
        // Each set low bit of the old size is a complete subtree of the same size as the carry,
        // right before it: the two merge into their parent. `subtrees` holds one root per set
        // bit, so the pop always finds one.
        for level in 0..old_size.trailing_ones() {
            let Some(left) = self.subtrees.pop() else {
                break;
            };
            carry = node_hash(&left, &carry);
            completed.push((level + 1, old_size >> (level + 1), carry));
        }
        self.subtrees.push(carry);
        self.size = new_size;
        completed
    }

    /// The tree head of the leaves pushed so far; [`crate::EMPTY_ROOT`] for none.
    pub fn root(&self) -> Hash {
        fold_right(&self.subtrees)
    }

    /// Rebuilds the frontier of a tree of `size` leaves from stored complete-subtree nodes
    /// (one node per set bit of `size`).
    pub fn restore<S: NodeSource>(source: &S, size: u64) -> Result<Self, ProofError<S::Error>> {
        let subtrees = subtree_roots(source, 0, size).map_err(ProofError::Source)?;
        Ok(Self { size, subtrees })
    }
}
