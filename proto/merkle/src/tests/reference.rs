//! The library against MTH, PATH and PROOF exactly as RFC 6962 section 2.1 writes them,
//! recursing over the leaves themselves with their own hashing.

use proptest::prelude::*;
use sha2::{Digest as _, Sha256};

use super::{Recording, leaves};
use crate::verify::{consistency_proof_len, inclusion_proof_len};
use crate::{
    EMPTY_ROOT, Hash, MemoryTree, consistency_proof, inclusion_proof, node_hash, root,
    verify_consistency, verify_inclusion,
};

/// The largest power of two smaller than `n`, by counting.
fn k(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn hash_children(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// MTH(D\[n\]).
fn mth(d: &[Hash]) -> Hash {
    match d {
        [] => Sha256::digest(b"").into(),
        [leaf] => *leaf,
        _ => {
            let k = k(d.len());
            hash_children(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// PATH(m, D\[n\]).
fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() == 1 {
        return Vec::new();
    }
    let k = k(d.len());
    if m < k {
        [path(m, &d[..k]), vec![mth(&d[k..])]].concat()
    } else {
        [path(m - k, &d[k..]), vec![mth(&d[..k])]].concat()
    }
}

/// PROOF(m, D\[n\]).
fn proof(m: usize, d: &[Hash]) -> Vec<Hash> {
    subproof(m, d, true)
}

/// SUBPROOF(m, D\[n\], b).
fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    if m == d.len() {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = k(d.len());
    if m <= k {
        [subproof(m, &d[..k], b), vec![mth(&d[k..])]].concat()
    } else {
        [subproof(m - k, &d[k..], false), vec![mth(&d[..k])]].concat()
    }
}

#[test]
fn the_reference_and_the_library_hash_alike() {
    assert_eq!(mth(&[]), EMPTY_ROOT);
    let [left, right] = [[1; 32], [2; 32]];
    assert_eq!(hash_children(&left, &right), node_hash(&left, &right));
}

/// Every root and proof of every tree up to 64 leaves, from a source holding 70, which
/// refuses nodes past the size asked about.
#[test]
fn every_small_tree_matches_the_reference() {
    let all = leaves(70, 7);
    let tree = MemoryTree::from_leaves(all.clone());
    for size in 0..=64u64 {
        let d = &all[..size as usize];
        let source = Recording::new(tree.clone(), size);
        assert_eq!(root(&source, size).unwrap(), mth(d), "root of {size}");
        for index in 0..size {
            let expected = path(index as usize, d);
            assert_eq!(
                inclusion_proof(&source, index, size).unwrap(),
                expected,
                "leaf {index} of {size}"
            );
            assert_eq!(inclusion_proof_len(index, size), expected.len());
        }
        for old in 1..=size {
            let expected = proof(old as usize, d);
            assert_eq!(
                consistency_proof(&source, old, size).unwrap(),
                expected,
                "{old} to {size}"
            );
            if old < size {
                assert_eq!(consistency_proof_len(old, size), expected.len());
            }
        }
    }
}

/// A tree of `size` leaves inside a larger stored one, a leaf index in it and an old size.
fn case() -> impl Strategy<Value = (u64, u64, u64, u64, u64)> {
    (1..=300u64, 0..40u64, any::<u64>()).prop_flat_map(|(size, extra, seed)| {
        (Just(size), Just(extra), Just(seed), 0..size, 1..=size)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn roots_and_proofs_match_the_reference((size, extra, seed, index, old) in case()) {
        let all = leaves(size + extra, seed);
        let d = &all[..size as usize];
        let source = Recording::new(MemoryTree::from_leaves(all.clone()), size);
        prop_assert_eq!(root(&source, size).unwrap(), mth(d));
        prop_assert_eq!(root(&source, old).unwrap(), mth(&d[..old as usize]));
        prop_assert_eq!(inclusion_proof(&source, index, size).unwrap(), path(index as usize, d));
        prop_assert_eq!(consistency_proof(&source, old, size).unwrap(), proof(old as usize, d));
    }

    #[test]
    fn inclusion_proofs_verify_and_no_corruption_does(
        (size, extra, seed, index, _) in case(),
        byte in 0..32usize,
        mask in 1..=255u8,
        intruder in any::<[u8; 32]>(),
    ) {
        let all = leaves(size + extra, seed);
        let tree = MemoryTree::from_leaves(all.clone());
        let root = root(&tree, size).unwrap();
        let leaf = all[index as usize];
        let proof = inclusion_proof(&tree, index, size).unwrap();
        prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));

        let fails = |leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash| {
            verify_inclusion(leaf, index, size, proof, root).is_err()
        };
        for at in 0..proof.len() {
            let mut flipped = proof.clone();
            flipped[at][byte] ^= mask;
            prop_assert!(fails(&leaf, index, size, &flipped, &root), "flipped proof[{}]", at);
            let mut dropped = proof.clone();
            dropped.remove(at);
            prop_assert!(fails(&leaf, index, size, &dropped, &root), "dropped proof[{}]", at);
        }
        for at in 0..=proof.len() {
            for added in [intruder, leaf, root] {
                let mut longer = proof.clone();
                longer.insert(at, added);
                prop_assert!(fails(&leaf, index, size, &longer, &root), "added at {}", at);
            }
        }
        for other in [index.wrapping_sub(1), index + 1, index ^ 1, index ^ 2, index ^ 4] {
            if other != index {
                prop_assert!(fails(&leaf, other, size, &proof, &root), "index {}", other);
            }
        }
        // Not every other size: a proof binds only the shape of the path, so the proof of leaf
        // 0 of 5 also leads to the 5-leaf root as leaf 0 of "6".
        for other in [size * 2, size / 2, index] {
            prop_assert!(fails(&leaf, index, other, &proof, &root), "size {}", other);
        }
        prop_assert!(fails(&intruder, index, size, &proof, &root));
        prop_assert!(fails(&leaf, index, size, &proof, &intruder));
        if size > 1 {
            let other_leaf = all[((index + 1) % size) as usize];
            prop_assert!(fails(&other_leaf, index, size, &proof, &root));
        }
    }

    #[test]
    fn consistency_proofs_verify_and_no_corruption_does(
        (size, extra, seed, _, old) in case(),
        byte in 0..32usize,
        mask in 1..=255u8,
        intruder in any::<[u8; 32]>(),
    ) {
        let all = leaves(size + extra, seed);
        let tree = MemoryTree::from_leaves(all.clone());
        let (old_root, new_root) = (root(&tree, old).unwrap(), root(&tree, size).unwrap());
        let proof = consistency_proof(&tree, old, size).unwrap();
        prop_assert_eq!(verify_consistency(old, size, &old_root, &new_root, &proof), Ok(()));

        let fails = |old: u64, new: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]| {
            verify_consistency(old, new, old_root, new_root, proof).is_err()
        };
        for at in 0..proof.len() {
            let mut flipped = proof.clone();
            flipped[at][byte] ^= mask;
            prop_assert!(fails(old, size, &old_root, &new_root, &flipped), "flipped {}", at);
            let mut dropped = proof.clone();
            dropped.remove(at);
            prop_assert!(fails(old, size, &old_root, &new_root, &dropped), "dropped {}", at);
        }
        for at in 0..=proof.len() {
            for added in [intruder, old_root, new_root] {
                let mut longer = proof.clone();
                longer.insert(at, added);
                prop_assert!(fails(old, size, &old_root, &new_root, &longer), "added at {}", at);
            }
        }
        prop_assert!(fails(old, size, &intruder, &new_root, &proof));
        prop_assert!(fails(old, size, &old_root, &intruder, &proof));
        if old < size {
            prop_assert!(fails(old, size, &new_root, &old_root, &proof));
            for other in [old - 1, old + 1, old ^ 1, old ^ 2, old ^ 4] {
                if other != old {
                    prop_assert!(fails(other, size, &old_root, &new_root, &proof), "old {}", other);
                }
            }
            // Not every other size: a proof binds only the shape of the path, so the proof from
            // 1 to 4 leaves also leads from 1 to "3" leaves with the 4-leaf root.
            for other in [size * 2, size / 2] {
                prop_assert!(fails(old, other, &old_root, &new_root, &proof), "new {}", other);
            }
        }
    }
}
