//! Published RFC 6962 test vectors.
//!
//! Hashes, leaves, proofs and the corruptions tried against them come from
//! transparency-dev/merkle, `proof/verify_test.go` (`leaves`, `roots`, `inclusionProofs`,
//! `consistencyProofs`, `corruptInclusionProof`, `corruptConsistencyProof`), the reference tree
//! certificate-transparency's `merkle_tree_test.cc` also uses. Leaf and empty-tree hashes come
//! from transparency-dev/merkle, `rfc6962/rfc6962_test.go`. The node sets of proofs come from
//! transparency-dev/merkle, `proof/proof_test.go` (`TestInclusion`, `TestConsistency`).

use super::{Recording, hex};
use crate::{
    EMPTY_ROOT, Frontier, Hash, MemoryTree, VerifyError, consistency_proof, inclusion_proof,
    leaf_hash, root, verify_consistency, verify_inclusion,
};

/// The eight leaves of the reference tree.
const LEAVES: [&[u8]; 8] = [
    b"",
    &[0x00],
    &[0x10],
    &[0x20, 0x21],
    &[0x30, 0x31],
    &[0x40, 0x41, 0x42, 0x43],
    &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
    &[
        0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e,
        0x6f,
    ],
];

/// Roots of the first 1 to 8 leaves.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, audit path). The source numbers leaves from 1; these from 0.
const INCLUSION: [(u64, u64, &[&str]); 5] = [
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old size, new size, consistency proof).
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// `sha256SomeHash` of the source: a hash of no tree.
const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

fn tree() -> MemoryTree {
    MemoryTree::from_leaves(LEAVES.iter().map(|data| leaf_hash(data)))
}

fn hashes(texts: &[&str]) -> Vec<Hash> {
    texts.iter().map(|text| hex(text)).collect()
}

fn published_root(size: u64) -> Hash {
    hex(ROOTS[size as usize - 1])
}

#[test]
fn hashes_match_rfc6962_test() {
    // echo -n | sha256sum
    assert_eq!(
        EMPTY_ROOT,
        hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    // echo -n 00 | xxd -r -p | sha256sum
    assert_eq!(
        leaf_hash(b""),
        hex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    // echo -n 004C313233343536 | xxd -r -p | sha256sum
    assert_eq!(
        leaf_hash(b"L123456"),
        hex("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    );
}

#[test]
fn roots_of_every_prefix() {
    let full = tree();
    assert_eq!(root(&full, 0).unwrap(), EMPTY_ROOT);
    let mut frontier = Frontier::new();
    for (size, data) in (1..=8).zip(LEAVES) {
        frontier.push(leaf_hash(data));
        let prefix = MemoryTree::from_leaves(LEAVES[..size as usize].iter().map(|d| leaf_hash(d)));
        assert_eq!(
            root(&full, size).unwrap(),
            published_root(size),
            "size {size}"
        );
        assert_eq!(prefix.root(), published_root(size), "size {size}");
        assert_eq!(frontier.root(), published_root(size), "size {size}");
    }
}

#[test]
fn inclusion_proofs_are_the_published_ones() {
    let full = tree();
    for (index, size, expected) in INCLUSION {
        let proof = inclusion_proof(&full, index, size).unwrap();
        assert_eq!(proof, hashes(expected), "leaf {index} of {size}");
    }
}

#[test]
fn consistency_proofs_are_the_published_ones() {
    let full = tree();
    for (old_size, new_size, expected) in CONSISTENCY {
        let proof = consistency_proof(&full, old_size, new_size).unwrap();
        assert_eq!(proof, hashes(expected), "{old_size} to {new_size}");
    }
}

#[test]
fn published_inclusion_proofs_verify_and_their_corruptions_do_not() {
    let some = hex(SOME_HASH);
    let fails = |what: &str, leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash| {
        let verified = verify_inclusion(leaf, index, size, proof, root);
        assert!(verified.is_err(), "{what} verified leaf {index} of {size}");
    };
    for (index, size, proof) in INCLUSION {
        let proof = hashes(proof);
        let leaf = leaf_hash(LEAVES[index as usize]);
        let root = published_root(size);
        assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));

        let (p, r) = (&proof[..], &root);
        fails("index - 1", &leaf, index.wrapping_sub(1), size, p, r);
        fails("index + 1", &leaf, index + 1, size, p, r);
        fails("index ^ 2", &leaf, index ^ 2, size, p, r);
        fails("size * 2", &leaf, index, size * 2, p, r);
        fails("size / 2", &leaf, index, size / 2, p, r);
        fails("wrong leaf", &leaf_hash(b"WrongLeaf"), index, size, p, r);
        fails("empty root", &leaf, index, size, p, &EMPTY_ROOT);
        fails("random root", &leaf, index, size, p, &some);
        fails(
            "trailing root",
            &leaf,
            index,
            size,
            &[p, &[root]].concat(),
            r,
        );
        fails(
            "preceding root",
            &leaf,
            index,
            size,
            &[&[root], p].concat(),
            r,
        );
        for at in 0..proof.len() {
            let mut flipped = proof.clone();
            flipped[at][0] ^= 8;
            fails(
                &format!("proof[{at}] bit 3"),
                &leaf,
                index,
                size,
                &flipped,
                r,
            );
        }
        if let Some((_, shorter)) = proof.split_last() {
            fails("removed component", &leaf, index, size, shorter, r);
        }
        if let [first, rest @ ..] = p
            && !rest.is_empty()
        {
            let inserted = [&[*first, some], rest].concat();
            fails("inserted component", &leaf, index, size, &inserted, r);
        }
    }
}

#[test]
fn published_consistency_proofs_verify_and_their_corruptions_do_not() {
    let some = hex(SOME_HASH);
    let fails =
        |what: &str, old: u64, new: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]| {
            let verified = verify_consistency(old, new, old_root, new_root, proof);
            assert!(verified.is_err(), "{what} verified {old} to {new}");
        };
    for (old, new, proof) in CONSISTENCY {
        let proof = hashes(proof);
        let (r1, r2) = (published_root(old), published_root(new));
        assert_eq!(verify_consistency(old, new, &r1, &r2, &proof), Ok(()));
        let (Some(&first), Some((_, shorter))) = (proof.first(), proof.split_last()) else {
            continue;
        };
        let p = &proof[..];
        fails("old - 1", old - 1, new, &r1, &r2, p);
        fails("old + 1", old + 1, new, &r1, &r2, p);
        fails("old ^ 2", old ^ 2, new, &r1, &r2, p);
        fails("new * 2", old, new * 2, &r1, &r2, p);
        fails("new / 2", old, new / 2, &r1, &r2, p);
        fails("wrong old root", old, new, &some, &r2, p);
        fails("wrong new root", old, new, &r1, &some, p);
        fails("swapped roots", old, new, &r2, &r1, p);
        fails("empty proof", old, new, &r1, &r2, &[]);
        for extra in [r1, r2, first] {
            fails("trailing hash", old, new, &r1, &r2, &[p, &[extra]].concat());
            fails(
                "preceding hash",
                old,
                new,
                &r1,
                &r2,
                &[&[extra], p].concat(),
            );
        }
        fails("truncated proof", old, new, &r1, &r2, shorter);
        for at in 0..proof.len() {
            let mut flipped = proof.clone();
            flipped[at][0] ^= 16;
            fails(&format!("proof[{at}] bit 4"), old, new, &r1, &r2, &flipped);
        }
    }
}

/// The cases of `TestVerifyConsistency` with "don't care" roots. The source accepts any old
/// root for an empty old tree; here the empty tree's root is `EMPTY_ROOT` and nothing else.
#[test]
fn trivial_consistency_cases() {
    use VerifyError::{EmptyOldTree, RootMismatch, SizeOrder, WrongProofLength};
    let (root1, root2, empty) = (leaf_hash(b"1"), leaf_hash(b"2"), EMPTY_ROOT);
    let one = [EMPTY_ROOT];
    let check = |old, new, old_root, new_root, proof: &[Hash], expected| {
        let verified = verify_consistency(old, new, &old_root, &new_root, proof);
        assert_eq!(verified, expected, "{old} to {new}");
    };
    check(0, 0, root1, root2, &[], Err(RootMismatch));
    check(1, 1, root1, root2, &[], Err(RootMismatch));
    // Sizes that are always consistent.
    check(0, 0, empty, empty, &[], Ok(()));
    check(0, 1, empty, root2, &[], Ok(()));
    check(0, 1, root1, root2, &[], Err(RootMismatch));
    check(1, 1, root2, root2, &[], Ok(()));
    // Time travel to the past.
    check(
        1,
        0,
        root1,
        root2,
        &[],
        Err(SizeOrder {
            old_size: 1,
            new_size: 0,
        }),
    );
    check(
        2,
        1,
        root1,
        root2,
        &[],
        Err(SizeOrder {
            old_size: 2,
            new_size: 1,
        }),
    );
    // Empty proof.
    let short = WrongProofLength {
        expected: 1,
        actual: 0,
    };
    check(1, 2, root1, root2, &[], Err(short));
    // Roots don't match.
    check(0, 0, empty, root2, &[], Err(RootMismatch));
    check(1, 1, empty, root2, &[], Err(RootMismatch));
    // Roots match but the proof is not empty.
    check(0, 0, empty, empty, &one, Err(EmptyOldTree { actual: 1 }));
    check(0, 1, empty, empty, &one, Err(EmptyOldTree { actual: 1 }));
    let long = WrongProofLength {
        expected: 0,
        actual: 1,
    };
    check(1, 1, empty, empty, &one, Err(long));
}

/// The cases of `TestVerifyInclusion` and `TestVerifyInclusionSingleEntry`.
#[test]
fn trivial_inclusion_cases() {
    let some = hex(SOME_HASH);
    for (index, size) in [(0, 0), (0, 1), (1, 0), (2, 1)] {
        assert!(verify_inclusion(&some, index, size, &[], &[0; 32]).is_err());
        assert!(verify_inclusion(&[0; 32], index, size, &[], &EMPTY_ROOT).is_err());
        assert!(verify_inclusion(&some, index, size, &[], &EMPTY_ROOT).is_err());
    }
    let hash = leaf_hash(b"data");
    assert_eq!(verify_inclusion(&hash, 0, 1, &[], &hash), Ok(()));
    assert_eq!(
        verify_inclusion(&hash, 0, 1, &[], &EMPTY_ROOT),
        Err(VerifyError::RootMismatch)
    );
    assert_eq!(
        verify_inclusion(&hash, 1, 1, &[], &hash),
        Err(VerifyError::IndexOutOfRange { index: 1, size: 1 })
    );
}

/// Node ids as (level, index).
type Ids = &'static [(u32, u64)];

/// (tree size, leaf index, the nodes its audit path is made of).
const INCLUSION_NODES: [(u64, u64, Ids); 18] = [
    (1, 0, &[]),
    (2, 0, &[(0, 1)]),
    (2, 1, &[(0, 0)]),
    (3, 1, &[(0, 0), (0, 2)]),
    (7, 0, &[(0, 1), (1, 1), (0, 6), (1, 2)]),
    (7, 1, &[(0, 0), (1, 1), (0, 6), (1, 2)]),
    (7, 2, &[(0, 3), (1, 0), (0, 6), (1, 2)]),
    (7, 3, &[(0, 2), (1, 0), (0, 6), (1, 2)]),
    (7, 4, &[(0, 5), (0, 6), (2, 0)]),
    (7, 5, &[(0, 4), (0, 6), (2, 0)]),
    (7, 6, &[(1, 2), (2, 0)]),
    (4, 2, &[(0, 3), (1, 0)]),
    (5, 3, &[(0, 2), (1, 0), (0, 4)]),
    (6, 3, &[(0, 2), (1, 0), (1, 2)]),
    (6, 4, &[(0, 5), (2, 0)]),
    (15, 10, &[(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)]),
    (
        31,
        24,
        &[(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)],
    ),
    (
        95,
        81,
        &[
            (0, 80),
            (1, 41),
            (2, 21),
            (0, 94),
            (1, 46),
            (2, 22),
            (4, 4),
            (6, 0),
        ],
    ),
];

/// (old size, new size, the nodes their consistency proof is made of).
const CONSISTENCY_NODES: [(u64, u64, Ids); 25] = [
    (1, 2, &[(0, 1)]),
    (1, 4, &[(0, 1), (1, 1)]),
    (1, 6, &[(0, 1), (1, 1), (1, 2)]),
    (2, 3, &[(0, 2)]),
    (2, 8, &[(1, 1), (2, 1)]),
    (3, 7, &[(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)]),
    (4, 7, &[(0, 6), (1, 2)]),
    (5, 7, &[(0, 4), (0, 5), (0, 6), (2, 0)]),
    (6, 7, &[(1, 2), (0, 6), (2, 0)]),
    (7, 8, &[(0, 6), (0, 7), (1, 2), (2, 0)]),
    (1, 1, &[]),
    (2, 2, &[]),
    (3, 3, &[]),
    (4, 4, &[]),
    (5, 5, &[]),
    (7, 7, &[]),
    (8, 8, &[]),
    (2, 4, &[(1, 1)]),
    (3, 5, &[(0, 2), (0, 3), (1, 0), (0, 4)]),
    (3, 6, &[(0, 2), (0, 3), (1, 0), (1, 2)]),
    (4, 6, &[(1, 2)]),
    (1, 7, &[(0, 1), (1, 1), (0, 6), (1, 2)]),
    (10, 15, &[(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)]),
    (24, 31, &[(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)]),
    (
        81,
        95,
        &[
            (0, 80),
            (0, 81),
            (1, 41),
            (2, 21),
            (0, 94),
            (1, 46),
            (2, 22),
            (4, 4),
            (6, 0),
        ],
    ),
];

/// A range that is not one complete subtree is asked for as the complete subtrees it splits
/// into, where the source lists the range's parts and the hash they make up.
#[test]
fn proofs_ask_for_the_published_node_sets() {
    let sorted = |ids: Ids| {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids
    };
    let tree = MemoryTree::from_leaves(super::leaves(95, 0));
    for (size, index, expected) in INCLUSION_NODES {
        let source = Recording::new(tree.clone(), size);
        inclusion_proof(&source, index, size).unwrap();
        assert_eq!(source.take(), sorted(expected), "leaf {index} of {size}");
    }
    for (old, new, expected) in CONSISTENCY_NODES {
        let source = Recording::new(tree.clone(), new);
        consistency_proof(&source, old, new).unwrap();
        assert_eq!(source.take(), sorted(expected), "{old} to {new}");
    }
}
