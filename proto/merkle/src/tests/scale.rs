//! Trees far too large to fill: roots and proofs ask for O(log n) nodes, never scan leaves,
//! and stay correct up to 2^64 - 1 leaves.

use std::convert::Infallible;

use sha2::{Digest as _, Sha256};

use super::Recording;
use crate::verify::{consistency_proof_len, inclusion_proof_len};
use crate::{
    Frontier, Hash, NodeSource, consistency_proof, inclusion_proof, leaf_hash, node_hash, root,
    verify_consistency, verify_inclusion,
};

/// Most nodes one root or proof may ask for: two per level.
const MOST: usize = 2 * 64;

const SIZE: u64 = (1 << 40) + 12345;

/// Made-up node hashes, SHA-256(level || index): as good as stored ones for counting.
struct Synthetic;

impl NodeSource for Synthetic {
    type Error = Infallible;

    fn node(&self, level: u32, index: u64) -> Result<Hash, Infallible> {
        let mut hasher = Sha256::new();
        hasher.update(level.to_be_bytes());
        hasher.update(index.to_be_bytes());
        Ok(hasher.finalize().into())
    }
}

/// A tree whose leaves are all the same, so every node of a level is the same and any size
/// has a real root and real proofs.
struct Uniform {
    levels: Vec<Hash>,
}

impl Uniform {
    fn new() -> Self {
        let mut levels = vec![leaf_hash(b"uniform")];
        for level in 0..63 {
            let below = levels[level];
            levels.push(node_hash(&below, &below));
        }
        Self { levels }
    }
}

impl NodeSource for Uniform {
    type Error = Infallible;

    fn node(&self, level: u32, _index: u64) -> Result<Hash, Infallible> {
        Ok(self.levels[level as usize])
    }
}

fn interesting(size: u64) -> Vec<u64> {
    let mut points = vec![0, 1, 2, 12345, size / 3, size / 2, size - 2, size - 1];
    points.extend((0..64).map(|bit| 1u64 << bit).filter(|&point| point < size));
    points.extend(
        (1..64)
            .map(|bit| (1u64 << bit) - 1)
            .filter(|&point| point < size),
    );
    points.retain(|&point| point < size);
    points
}

#[test]
fn roots_and_proofs_ask_for_few_nodes() {
    let source = Recording::new(Synthetic, SIZE);
    root(&source, SIZE).unwrap();
    assert_eq!(source.take().len(), SIZE.count_ones() as usize);
    Frontier::restore(&source, SIZE).unwrap();
    assert_eq!(source.take().len(), SIZE.count_ones() as usize);

    for index in interesting(SIZE) {
        let proof = inclusion_proof(&source, index, SIZE).unwrap();
        let asked = source.take().len();
        assert!(asked <= MOST, "leaf {index}: {asked} nodes");
        assert_eq!(proof.len(), inclusion_proof_len(index, SIZE));
    }
    for old in interesting(SIZE)
        .into_iter()
        .chain([SIZE])
        .filter(|&old| old > 0)
    {
        let proof = consistency_proof(&source, old, SIZE).unwrap();
        let asked = source.take().len();
        assert!(asked <= MOST, "{old} to {SIZE}: {asked} nodes");
        if old < SIZE {
            assert_eq!(proof.len(), consistency_proof_len(old, SIZE));
        }
    }
}

#[test]
fn proofs_of_huge_trees_verify() {
    let uniform = Uniform::new();
    let leaf = uniform.levels[0];
    assert_eq!(root(&uniform, 1 << 63).unwrap(), uniform.levels[63]);
    for size in [SIZE, (1 << 63) - 1, 1 << 63, (1 << 63) + 12345, u64::MAX] {
        let source = Recording::new(Uniform::new(), size);
        let new_root = root(&source, size).unwrap();
        assert_eq!(Frontier::restore(&source, size).unwrap().root(), new_root);
        source.take();
        for index in interesting(size) {
            let proof = inclusion_proof(&source, index, size).unwrap();
            assert!(source.take().len() <= MOST);
            assert_eq!(
                verify_inclusion(&leaf, index, size, &proof, &new_root),
                Ok(()),
                "leaf {index} of {size}"
            );
        }
        for old in interesting(size)
            .into_iter()
            .chain([size])
            .filter(|&old| old > 0)
        {
            let old_root = root(&source, old).unwrap();
            source.take();
            let proof = consistency_proof(&source, old, size).unwrap();
            assert!(source.take().len() <= MOST);
            assert_eq!(
                verify_consistency(old, size, &old_root, &new_root, &proof),
                Ok(()),
                "{old} to {size}"
            );
        }
    }
}

#[test]
fn a_full_tree_takes_no_more_leaves() {
    let mut frontier = Frontier::restore(&Uniform::new(), u64::MAX).unwrap();
    let before = frontier.clone();
    assert_eq!(frontier.push(leaf_hash(b"one too many")), Vec::new());
    assert_eq!(frontier, before);
}
