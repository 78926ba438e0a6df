//! A tree that keeps every complete-subtree node in memory, level by level.

use std::convert::Infallible;

use crate::proof::{NodeSource, range_root};
use crate::{Hash, node_hash};

/// Every complete-subtree node kept in memory: a [`NodeSource`] for tests, bundles and small
/// logs. Holds about two hashes per leaf.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    /// `levels[l][i]` is node `(l, i)`; `levels[0]` holds the leaf hashes.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tree of these leaf hashes, in order.
    pub fn from_leaves(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut tree = Self::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Appends one leaf hash, and every node it completes.
    pub fn push(&mut self, leaf: Hash) {
        let mut carry = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let nodes = &mut self.levels[level];
            nodes.push(carry);
            // A node at an odd position completes its parent with its left neighbour.
            match nodes.as_slice() {
                [.., left, right] if nodes.len().is_multiple_of(2) => {
                    carry = node_hash(left, right)
                }
                _ => break,
            }
            level += 1;
        }
    }

    /// How many leaves the tree holds.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// The tree head of all leaves; [`crate::EMPTY_ROOT`] for none.
    pub fn root(&self) -> Hash {
        match range_root(self, 0, self.size()) {
            Ok(root) => root,
            Err(never) => match never {},
        }
    }
}

impl NodeSource for MemoryTree {
    type Error = Infallible;

    /// The stored node. A node outside the tree, which no function of this crate asks for
    /// while the sizes it is given are at most [`MemoryTree::size`], reads as all zeros:
    /// roots and proofs for larger sizes are meaningless.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Infallible> {
        let node = usize::try_from(level).ok().and_then(|level| {
            let index = usize::try_from(index).ok()?;
            self.levels.get(level)?.get(index).copied()
        });
        Ok(node.unwrap_or([0; 32]))
    }
}
