//! The Merkle tree of the collector's append-only transparency log, as RFC 6962 section 2.1
//! defines it and RFC 9162 section 2.1 verifies it: leaf and node hashes, tree heads,
//! inclusion and consistency proofs, their verification, and the frontier that lets a log
//! append a leaf and compute its root from O(log n) stored hashes.
//!
//! Invariant: pure. SHA-256 only, no I/O: stored nodes come in through [`NodeSource`], and
//! every function asks it only for complete, aligned subtrees, O(log n) of them per root or
//! proof, never for every leaf. Verification never panics, whatever its input.

mod frontier;
mod memory;
mod proof;
mod verify;

use sha2::{Digest as _, Sha256};

pub use frontier::Frontier;
pub use memory::MemoryTree;
pub use proof::{NodeSource, ProofError, consistency_proof, inclusion_proof, root};
pub use verify::{VerifyError, verify_consistency, verify_inclusion};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// SHA-256 of the empty string: the root of the empty tree.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Prefix of a leaf hash's input, so no leaf can pass for an interior node.
const LEAF_PREFIX: u8 = 0x00;

/// Prefix of an interior node hash's input.
const NODE_PREFIX: u8 = 0x01;

/// The hash of a leaf holding `data`: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(data);
    hasher.finalize().into()
}

/// The hash of an interior node with children `left` and `right`:
/// SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests;
