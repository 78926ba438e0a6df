//! Batches with forgeries in them: every honest attestation is still accepted, every bad one
//! rejected with the reason `open` gives it.

use proto_evidence::{CHALLENGE_CONTEXT, Envelope};

use super::*;
use crate::tests::{payload, signer};
use crate::{Ed25519Signer, MAX_PAYLOAD_BYTES, open, seal, wire};

/// `count` consecutive attestations of one signer's chain.
fn chain(signer: &Ed25519Signer, count: u64) -> Vec<Envelope> {
    (1..=count)
        .map(|sequence| {
            let mut statement = payload(signer);
            statement.sequence = sequence;
            seal(&statement, signer).unwrap()
        })
        .collect()
}

/// `open` on each envelope alone: what `open_batch` must give.
fn one_by_one(items: &[(Envelope, PublicKey)]) -> Vec<Result<VerifiedAttestation, OpenError>> {
    items
        .iter()
        .map(|(envelope, key)| open(envelope.clone(), key))
        .collect()
}

fn batch(items: &[(Envelope, PublicKey)]) -> Vec<Result<VerifiedAttestation, OpenError>> {
    open_batch(items.iter().map(|(envelope, key)| (envelope.clone(), key)))
}

/// Whether the candidates of `items` verify as one batch (all pass the pre-checks).
fn holds(items: &[(Envelope, PublicKey)]) -> bool {
    let messages: Vec<Vec<u8>> = items
        .iter()
        .map(|(envelope, _)| proto_evidence::signed_message(ATTESTATION_CONTEXT, &envelope.payload))
        .collect();
    let candidates: Vec<(&[u8], &Envelope, &PublicKey)> = items
        .iter()
        .zip(&messages)
        .map(|((envelope, key), message)| (message.as_slice(), envelope, key))
        .collect();
    batch_holds(&candidates)
}

fn keyed(envelopes: Vec<Envelope>, key: PublicKey) -> Vec<(Envelope, PublicKey)> {
    envelopes.into_iter().map(|e| (e, key)).collect()
}

#[test]
fn an_honest_batch_verifies_as_one_and_opens_like_open() {
    let signer = signer(1);
    let items = keyed(chain(&signer, 64), signer.public_key());
    assert!(
        holds(&items),
        "honest signatures must pass the batch check itself"
    );
    let opened = batch(&items);
    assert_eq!(opened, one_by_one(&items));
    for (sequence, result) in (1..).zip(&opened) {
        assert_eq!(result.as_ref().unwrap().payload().sequence, sequence);
    }
}

#[test]
fn one_forgery_at_any_position_is_rejected_and_the_others_accepted() {
    let signer = signer(1);
    let key = signer.public_key();
    let honest = chain(&signer, 64);
    let mut forged = seal(&payload(&signer), &signer).unwrap();
    forged.payload[20] ^= 0x01;
    for position in 0..=honest.len() {
        let mut envelopes = honest.clone();
        envelopes.insert(position, forged.clone());
        let items = keyed(envelopes, key);
        assert!(!holds(&items));
        let opened = batch(&items);
        assert_eq!(opened.len(), 65);
        for (index, result) in opened.iter().enumerate() {
            if index == position {
                assert_eq!(result, &Err(OpenError::BadSignature), "position {position}");
            } else {
                assert!(
                    result.is_ok(),
                    "position {position}, item {index}: {result:?}"
                );
            }
        }
    }
}

#[test]
fn a_signature_by_a_foreign_key_is_rejected_in_a_batch() {
    let (enrolled, attacker) = (signer(1), signer(2));
    let key = enrolled.public_key();
    let mut items = keyed(chain(&enrolled, 16), key);
    // The attacker signs a statement naming the enrolled key, under its own key id and then
    // relabelled as the enrolled key's.
    let statement = wire::encode_payload(&payload(&enrolled));
    let foreign = attacker.sign(ATTESTATION_CONTEXT, statement);
    let mut relabelled = foreign.clone();
    relabelled.key_id = enrolled.key_id();
    items.insert(3, (foreign, key));
    items.insert(9, (relabelled, key));
    let opened = batch(&items);
    assert_eq!(opened, one_by_one(&items));
    assert!(matches!(opened[3], Err(OpenError::UnknownKey { .. })));
    assert_eq!(opened[9], Err(OpenError::BadSignature));
    assert_eq!(opened.iter().filter(|r| r.is_ok()).count(), 16);
}

#[test]
fn a_challenge_signature_is_not_an_attestation_signature_in_a_batch() {
    let signer = signer(1);
    let mut items = keyed(chain(&signer, 8), signer.public_key());
    let cross_context = signer.sign(CHALLENGE_CONTEXT, wire::encode_payload(&payload(&signer)));
    items.insert(5, (cross_context, signer.public_key()));
    assert!(!holds(&items));
    let opened = batch(&items);
    assert_eq!(opened[5], Err(OpenError::BadSignature));
    assert_eq!(opened.iter().filter(|r| r.is_ok()).count(), 8);
}

#[test]
fn an_empty_batch_opens_nothing() {
    assert_eq!(open_batch(Vec::<(Envelope, &PublicKey)>::new()), Vec::new());
}

#[test]
fn a_batch_of_one_opens_like_open() {
    let signer = signer(1);
    let key = signer.public_key();
    let honest = seal(&payload(&signer), &signer).unwrap();
    let mut forged = honest.clone();
    forged.signature[0] ^= 0x01;
    for envelope in [honest, forged] {
        let items = vec![(envelope, key)];
        assert_eq!(batch(&items), one_by_one(&items));
    }
    assert!(batch(&keyed(chain(&signer, 1), key))[0].is_ok());
}

#[test]
fn batches_of_several_keys_and_every_kind_of_bad_input_open_like_open() {
    let (first, second, other) = (signer(1), signer(2), signer(3));
    let mut items = keyed(chain(&first, 5), first.public_key());
    items.extend(keyed(chain(&second, 5), second.public_key()));
    // All honest, two keys: one batch.
    assert!(holds(&items));
    assert!(batch(&items).iter().all(Result::is_ok));

    let mut short_signature = chain(&first, 1).remove(0);
    short_signature.signature.truncate(63);
    let oversized = first.sign(ATTESTATION_CONTEXT, vec![0; MAX_PAYLOAD_BYTES + 1]);
    let garbage = first.sign(ATTESTATION_CONTEXT, vec![0xff; 40]);
    let naming_another = first.sign(ATTESTATION_CONTEXT, wire::encode_payload(&payload(&other)));
    for (position, bad) in [short_signature, oversized, garbage, naming_another]
        .into_iter()
        .enumerate()
    {
        items.insert(2 + 3 * position, (bad, first.public_key()));
    }
    let opened = batch(&items);
    assert_eq!(opened, one_by_one(&items));
    assert_eq!(opened.iter().filter(|r| r.is_ok()).count(), 10);

    // Signed garbage and a payload naming another key carry good signatures: the batch holds
    // and the decoding rejects them.
    let signed_but_bad: Vec<_> = items
        .iter()
        .filter(|(envelope, key)| {
            key.check_envelope(envelope).is_ok() && envelope.signature.len() == 64
        })
        .cloned()
        .collect();
    assert!(holds(&signed_but_bad));
    let opened = batch(&signed_but_bad);
    assert_eq!(opened, one_by_one(&signed_but_bad));
    assert_eq!(opened.iter().filter(|r| r.is_err()).count(), 2);
}
