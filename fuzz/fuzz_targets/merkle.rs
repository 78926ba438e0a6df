//! Merkle proof verification (proto-merkle, RFC 9162): for a tree of up to 300 leaves and a
//! proof from the input, verification never panics, and it accepts a proof only when it is
//! the one proof the tree has (a valid proof for a given index, sizes and roots is unique).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_merkle::{
    Hash, MemoryTree, consistency_proof, inclusion_proof, leaf_hash, verify_consistency,
    verify_inclusion,
};

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let size = u64::from(u16::from_le_bytes([data[0], data[1]]) % 301);
    let a = u64::from(u16::from_le_bytes([data[2], data[3]]) % 302);
    let b = u64::from(data[4]);
    let proof: Vec<Hash> = data[6..]
        .chunks_exact(32)
        .map(|chunk| chunk.try_into().expect("32 bytes"))
        .collect();
    let tree = MemoryTree::from_leaves((0..size).map(|i| leaf_hash(&i.to_be_bytes())));
    let root = tree.root();
    // Sizes and indexes out of range as well as in range.
    let index = a;
    let leaf = leaf_hash(&index.to_be_bytes());
    let accepted = verify_inclusion(&leaf, index, size, &proof, &root).is_ok();
    if index < size {
        let real = inclusion_proof(&tree, index, size).expect("an index in range has a proof");
        assert!(verify_inclusion(&leaf, index, size, &real, &root).is_ok());
        assert_eq!(
            accepted,
            proof == real,
            "a proof other than the tree's was accepted"
        );
    } else {
        assert!(!accepted);
    }
    let old = a.min(size);
    let old_root = MemoryTree::from_leaves((0..old).map(|i| leaf_hash(&i.to_be_bytes()))).root();
    let accepted = verify_consistency(old, size, &old_root, &root, &proof).is_ok();
    if let Ok(real) = consistency_proof(&tree, old, size) {
        assert!(verify_consistency(old, size, &old_root, &root, &real).is_ok());
        if accepted {
            assert_eq!(
                proof, real,
                "a consistency proof other than the tree's was accepted"
            );
        }
    }
    // Roots from the input: nothing panics whatever the claim.
    let claimed: Hash = data[6..]
        .get(..32)
        .and_then(|s| s.try_into().ok())
        .unwrap_or(root);
    let _ = verify_consistency(b, size, &claimed, &root, &proof);
    let _ = verify_consistency(size, b.saturating_add(size), &root, &claimed, &proof);
    let _ = verify_inclusion(&claimed, b, u64::MAX - u64::from(data[5]), &proof, &claimed);
});
