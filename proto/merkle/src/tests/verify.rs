//! Verification answers every input, however malformed, without panicking.

use proptest::prelude::*;

use crate::verify::{consistency_proof_len, inclusion_proof_len};
use crate::{Hash, leaf_hash, verify_consistency, verify_inclusion};

/// Sizes and indexes, weighted towards the edges of u64 and of powers of two.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0..8u64,
        (u64::MAX - 8)..=u64::MAX,
        (0..64u32, -2..=2i64).prop_map(|(bit, delta)| (1u64 << bit).wrapping_add_signed(delta)),
    ]
}

/// `len` distinct hashes.
fn hashes(len: usize, seed: u8) -> Vec<Hash> {
    (0..len).map(|at| leaf_hash(&[seed, at as u8])).collect()
}

/// A proof length near the one the sizes imply, so the verifiers' loops run too.
fn length(implied: Option<usize>, delta: i64, any: usize) -> usize {
    match implied {
        Some(implied) if delta.abs() <= 1 => implied.saturating_add_signed(delta as isize),
        _ => any,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, ..ProptestConfig::default() })]

    #[test]
    fn inclusion_answers_anything(
        index in number(),
        size in number(),
        delta in -3..=3i64,
        any_len in 0..80usize,
        seed in any::<u8>(),
        leaf in any::<[u8; 32]>(),
        root in any::<[u8; 32]>(),
    ) {
        let implied = (index < size).then(|| inclusion_proof_len(index, size));
        let proof = hashes(length(implied, delta, any_len), seed);
        let _ = verify_inclusion(&leaf, index, size, &proof, &root);
    }

    #[test]
    fn consistency_answers_anything(
        old in number(),
        new in number(),
        delta in -3..=3i64,
        any_len in 0..80usize,
        seed in any::<u8>(),
        old_root in any::<[u8; 32]>(),
        new_root in any::<[u8; 32]>(),
    ) {
        let implied = (0 < old && old < new).then(|| consistency_proof_len(old, new));
        let proof = hashes(length(implied, delta, any_len), seed);
        let _ = verify_consistency(old, new, &old_root, &new_root, &proof);
        let _ = verify_consistency(old, new, &old_root, &old_root, &proof);
    }
}
