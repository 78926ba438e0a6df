//! What the fuzz targets share: splitting one input into several files, and the fixed keys the
//! targets verify with (so a seed made with them reaches past the signature checks).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proto_seal::{Ed25519Signer, PublicKey};

/// The separator between the parts of an input that stands for several files.
pub const SEPARATOR: &[u8] = b"\n--8<--\n";

/// `data` cut at each [`SEPARATOR`], always `N` parts (missing ones empty).
pub fn parts<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out = [&data[..0]; N];
    let mut rest = data;
    for slot in out.iter_mut().take(N - 1) {
        match find(rest, SEPARATOR) {
            Some(at) => {
                *slot = &rest[..at];
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => {
                *slot = rest;
                rest = &rest[rest.len()..];
            }
        }
    }
    out[N - 1] = rest;
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The signer whose seed is `[seed; 32]`: seed 1 signs the attestation seeds, seed 2 is the
/// log key of the bundle and tree-head seeds.
pub fn signer(seed: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(&[seed; 32]).unwrap()
}

/// [`signer`]'s public key.
pub fn public_key(seed: u8) -> PublicKey {
    signer(seed).public_key()
}
