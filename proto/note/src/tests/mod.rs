//! The specs' published examples, Go's reference vectors, malformed input of every kind,
//! round trips, and property tests that no input panics a parser.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fuzz;
mod malformed;
mod roundtrip;
mod vectors;

use ring::signature::Ed25519KeyPair;

use crate::{Cosigner, KeyName, LogSigner, SignatureType, SignerKey};

/// A deterministic key pair.
fn pair(seed: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
}

fn name(text: &str) -> KeyName {
    KeyName::new(text).unwrap()
}

fn log(origin: &str, seed: u8) -> LogSigner {
    LogSigner::from_key_pair(origin, pair(seed)).unwrap()
}

fn cosigner(witness: &str, seed: u8) -> Cosigner {
    Cosigner::from_signer_key(
        &SignerKey::from_seed(name(witness), SignatureType::CosignatureV1, [seed; 32]).unwrap(),
    )
    .unwrap()
}
