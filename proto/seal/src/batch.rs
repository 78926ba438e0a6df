//! Opening many attestations at once: one ed25519-dalek batch verification for all their
//! signatures, and ring, one signature at a time, whenever the batch does not verify.

use ed25519_dalek::{Signature, VerifyingKey};
use proto_evidence::{ATTESTATION_CONTEXT, Envelope};

use crate::{OpenError, PublicKey, VerifiedAttestation, decode_verified};

/// Fewer signatures than this are verified one at a time with ring: a batch pays for its
/// multi-scalar multiplication only when it shares that work among several signatures.
const MIN_BATCH: usize = 2;

/// Verifies and decodes many attestations, each with its own key, with the same outcome per
/// attestation as [`open`](crate::open), in the same order.
///
/// The signatures that pass the checks of `open` before verification (key, size) are verified
/// together with one `ed25519_dalek::verify_batch` call over exactly what `open` verifies: the
/// attestation context followed by the received bytes. When the batch does not verify, every
/// signature of it is verified again alone with ring, so a forgery costs the batch its speed
/// but nobody else their acceptance: the bad ones are rejected as `open` rejects them.
///
/// Why the batch check cannot let a forgery in although it is not ring's check: ring checks
/// the cofactorless equation `[s]B = R + [h]A` of RFC 8032; a batch checks a random linear
/// combination of those equations, with 128-bit coefficients derived from a hash of every
/// message, key and signature of the batch. A batch can thus pass although one of its equations
/// fails only when that equation is off by a point of small order (a torsion component in `R`
/// or in `A`); every other difference survives the random combination except with probability
/// about 2^-128. A signature whose `R` is off by such a point, yet satisfies the equation with
/// the challenge `h` hashed over that very `R`, needs `s = r + h a` with the key's secret
/// scalar `a`: only the key's holder can make one, and the holder can sign any statement
/// anyway. Keys whose point itself has small order, under which anyone could make such
/// signatures, are refused when a [`PublicKey`] is decoded (`KeyError::WeakPublicKey`), and
/// non-canonical `s` is refused by both libraries. The batch therefore accepts exactly the
/// statements the key holder signed, as ring does; it may also accept a malformed signature
/// the holder deliberately made of their own statement, which ring would refuse.
pub fn open_batch<'k>(
    items: impl IntoIterator<Item = (Envelope, &'k PublicKey)>,
) -> Vec<Result<VerifiedAttestation, OpenError>> {
    let items: Vec<(Envelope, &PublicKey)> = items.into_iter().collect();
    let checked: Vec<Result<(), OpenError>> = items
        .iter()
        .map(|(envelope, key)| key.check_envelope(envelope))
        .collect();

    // What each signature covers, the context and the payload, written once into one buffer.
    let length = checked
        .iter()
        .zip(&items)
        .filter(|(check, _)| check.is_ok())
        .map(|(_, (envelope, _))| ATTESTATION_CONTEXT.len() + envelope.payload.len())
        .sum();
    let mut buffer = Vec::with_capacity(length);
    let mut spans = Vec::with_capacity(items.len());
    for (check, (envelope, _)) in checked.iter().zip(&items) {
        let start = buffer.len();
        if check.is_ok() {
            buffer.extend_from_slice(ATTESTATION_CONTEXT);
            buffer.extend_from_slice(&envelope.payload);
        }
        spans.push(start..buffer.len());
    }

    let candidates: Vec<(&[u8], &Envelope, &PublicKey)> = checked
        .iter()
        .zip(&items)
        .zip(&spans)
        .filter(|((check, _), _)| check.is_ok())
        .map(|((_, (envelope, key)), span)| (&buffer[span.clone()], envelope, *key))
        .collect();
    let batch_verified = candidates.len() >= MIN_BATCH && batch_holds(&candidates);

    let verdicts: Vec<Result<(), OpenError>> = checked
        .into_iter()
        .zip(&items)
        .zip(&spans)
        .map(|((check, (envelope, key)), span)| {
            check?;
            if batch_verified {
                Ok(())
            } else {
                key.verify_message(&buffer[span.clone()], envelope)
            }
        })
        .collect();
    items
        .into_iter()
        .zip(verdicts)
        .map(|((envelope, _), verdict)| verdict.and_then(|()| decode_verified(envelope)))
        .collect()
}

/// Whether all signatures verify together (ed25519-dalek batch verification). `false` says only
/// that at least one of them (or a 64-byte length) is wrong, not which.
fn batch_holds(candidates: &[(&[u8], &Envelope, &PublicKey)]) -> bool {
    let mut messages = Vec::with_capacity(candidates.len());
    let mut signatures = Vec::with_capacity(candidates.len());
    let mut keys: Vec<VerifyingKey> = Vec::with_capacity(candidates.len());
    for (message, envelope, key) in candidates {
        let Ok(signature) = Signature::from_slice(&envelope.signature) else {
            return false;
        };
        messages.push(*message);
        signatures.push(signature);
        keys.push(key.point);
    }
    ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
}

#[cfg(test)]
mod tests;
