//! What is made here parses back to the same value and verifies; what is changed does not.

use ring::signature::KeyPair as _;

use super::{cosigner, log, name, pair};
use crate::{
    AddCheckpointRequest, Checkpoint, CosignatureV1, Ed25519NoteSigner, KeyError, LogSigner,
    NoteError, NoteSignature, SignError, SignatureType, SignedNote, SignerKey, VerifierKey,
    VerifyError, format_cosignatures, format_size_body, parse_cosignatures, parse_size_body,
};

#[test]
fn a_log_checkpoint_is_signed_under_its_origin_and_verifies_with_its_vkey() {
    let log = log("veu-attest.example/log/0badc0de", 1);
    let note = log.sign_checkpoint(42, [9; 32]).unwrap();
    let encoded = note.to_string();
    assert!(encoded.starts_with("veu-attest.example/log/0badc0de\n42\n"));
    let parsed = SignedNote::parse(encoded.as_bytes()).unwrap();
    assert_eq!(parsed, note);
    let vkey = VerifierKey::parse(&log.verifier_key().to_string()).unwrap();
    assert_eq!(vkey.name().as_str(), log.origin());
    assert_eq!(vkey.signature_type(), SignatureType::Ed25519);
    let verified = parsed.verify(&[vkey]).unwrap();
    let checkpoint = Checkpoint::parse(verified.text()).unwrap();
    assert_eq!(
        checkpoint,
        Checkpoint::new(log.origin(), 42, [9; 32]).unwrap()
    );
    // Another log key of the same origin does not verify it: its key ID differs, so its
    // signature is unknown, and the note has no trusted signature.
    let other = self::log("veu-attest.example/log/0badc0de", 2);
    assert!(matches!(
        parsed.verify(std::slice::from_ref(other.verifier_key())),
        Err(VerifyError::NoKnownSignature { .. })
    ));
}

#[test]
fn a_log_signer_checks_what_its_signing_function_returns() {
    let held = pair(3);
    let public: [u8; 32] = held.public_key().as_ref().try_into().unwrap();
    let good = LogSigner::new("example.com/log", public, move |message| {
        held.sign(message).as_ref().try_into().ok()
    })
    .unwrap();
    good.sign_checkpoint(1, [0; 32]).unwrap();

    let other = pair(4);
    let wrong = LogSigner::new("example.com/log", public, move |message| {
        other.sign(message).as_ref().try_into().ok()
    })
    .unwrap();
    assert_eq!(
        wrong.sign_checkpoint(1, [0; 32]),
        Err(SignError::WrongKey {
            name: "example.com/log".into()
        })
    );
    let refusing = LogSigner::new("example.com/log", public, |_| None).unwrap();
    assert_eq!(
        refusing.sign_checkpoint(1, [0; 32]),
        Err(SignError::Refused {
            name: "example.com/log".into()
        })
    );
    assert!(matches!(
        LogSigner::new("example.com/my log", public, |_| None),
        Err(KeyError::NameCharacter { character: ' ', .. })
    ));
}

#[test]
fn a_cosignature_verifies_with_its_timestamp_over_the_exact_checkpoint() {
    let log = log("example.com/log", 1);
    let witness = cosigner("witness.example/w1", 2);
    let mut note = log.sign_checkpoint(10, [5; 32]).unwrap();
    let cosignature = witness.cosign(note.text(), 1_700_000_000).unwrap();
    assert_eq!(cosignature.signature().len(), CosignatureV1::LEN);
    note.add_signature(cosignature.clone()).unwrap();

    let parsed = SignedNote::parse(note.to_string().as_bytes()).unwrap();
    let keys = [log.verifier_key().clone(), witness.verifier_key().clone()];
    let verified = parsed.verify(&keys).unwrap();
    assert_eq!(verified.verified().len(), 2);
    assert_eq!(verified.verified()[0].timestamp(), None);
    assert_eq!(verified.verified()[1].timestamp(), Some(1_700_000_000));

    // The same public key as a plain Ed25519 key has another key ID: no trusted signature.
    let plain = witness.verifier_key().with_type(SignatureType::Ed25519);
    assert!(matches!(
        parsed.verify(&[plain]),
        Err(VerifyError::NoKnownSignature { .. })
    ));

    // Another timestamp under the same signature does not verify.
    let mut bytes = cosignature.signature().to_vec();
    bytes[7] ^= 1;
    let shifted = NoteSignature::new(cosignature.name().clone(), cosignature.id(), bytes).unwrap();
    let mut forged = log.sign_checkpoint(10, [5; 32]).unwrap();
    forged.add_signature(shifted).unwrap();
    assert!(matches!(
        forged.verify(std::slice::from_ref(witness.verifier_key())),
        Err(VerifyError::BadSignature { .. })
    ));

    // The cosignature moved onto another checkpoint does not verify.
    let mut moved = log.sign_checkpoint(11, [5; 32]).unwrap();
    moved.add_signature(cosignature).unwrap();
    assert!(matches!(
        moved.verify(std::slice::from_ref(witness.verifier_key())),
        Err(VerifyError::BadSignature { .. })
    ));
}

#[test]
fn a_cosignature_covers_extension_lines() {
    // transparency-dev/formats TestSigCoversExtensionLines, in this crate's terms.
    let witness = cosigner("witness.example/w1", 2);
    let text = Checkpoint::new("example.com/log", 123, [1; 32])
        .unwrap()
        .with_extension("Extendo")
        .unwrap()
        .to_text();
    let cosignature = witness.cosign(&text, 5).unwrap();
    let signed =
        SignedNote::parse(format!("{text}\n{}", cosignature.to_line()).as_bytes()).unwrap();
    signed
        .verify(std::slice::from_ref(witness.verifier_key()))
        .unwrap();
    let changed = text.replace("Extendo", "Extend@");
    let signed =
        SignedNote::parse(format!("{changed}\n{}", cosignature.to_line()).as_bytes()).unwrap();
    assert!(matches!(
        signed.verify(std::slice::from_ref(witness.verifier_key())),
        Err(VerifyError::BadSignature { .. })
    ));
}

#[test]
fn signer_keys_encode_and_parse_back() {
    for signature_type in [SignatureType::Ed25519, SignatureType::CosignatureV1] {
        let key =
            SignerKey::from_seed(name("witness.example/w1"), signature_type, [8; 32]).unwrap();
        let parsed = SignerKey::parse(&key.to_secret_string()).unwrap();
        assert_eq!(parsed.verifier_key(), key.verifier_key());
        assert_eq!(parsed.signature_type(), signature_type);
        assert_eq!(parsed.public_key(), key.public_key());
        let vkey = key.verifier_key();
        assert_eq!(VerifierKey::parse(&vkey.to_string()).unwrap(), vkey);
    }
}

#[test]
fn notes_sign_with_several_keys_and_replace_a_key_s_earlier_signature() {
    let a = Ed25519NoteSigner::from_key_pair(name("a"), pair(1));
    let b = Ed25519NoteSigner::from_key_pair(name("b"), pair(2));
    let mut note = SignedNote::sign("hello\n\nworld\n", &[&a, &b]).unwrap();
    assert_eq!(note.signatures().len(), 2);
    assert_eq!(
        SignedNote::parse(note.to_string().as_bytes()).unwrap(),
        note
    );
    note.verify(&[a.verifier_key().clone(), b.verifier_key().clone()])
        .unwrap();
    let again = note.signatures()[0].clone();
    note.add_signature(again).unwrap();
    assert_eq!(note.signatures().len(), 2);
    // An identical key given twice is not ambiguous.
    note.verify(&[a.verifier_key().clone(), a.verifier_key().clone()])
        .unwrap();

    // A note rebuilt from the verified signatures only.
    let verified = note.verify(std::slice::from_ref(a.verifier_key())).unwrap();
    let kept: Vec<NoteSignature> = verified
        .verified()
        .iter()
        .map(|v| v.signature().clone())
        .collect();
    let rebuilt = SignedNote::new(verified.text().to_owned(), kept).unwrap();
    assert_eq!(rebuilt.signatures().len(), 1);
    rebuilt
        .verify(std::slice::from_ref(a.verifier_key()))
        .unwrap();
    assert_eq!(
        SignedNote::new("x\n".into(), vec![]),
        Err(NoteError::NoSignatures)
    );
    assert_eq!(
        SignedNote::new("x".into(), rebuilt.signatures().to_vec()),
        Err(NoteError::TextNotTerminated)
    );

    assert_eq!(SignedNote::sign("x\n", &[]), Err(SignError::NoSigners));
    assert_eq!(
        SignedNote::sign("x", &[&a]),
        Err(SignError::Text(NoteError::TextNotTerminated))
    );
}

#[test]
fn a_note_holds_at_most_the_signature_limit() {
    let a = Ed25519NoteSigner::from_key_pair(name("a"), pair(1));
    let mut note = SignedNote::sign("x\n", &[&a]).unwrap();
    for index in 1..crate::MAX_SIGNATURES {
        let line =
            NoteSignature::new(name(&format!("k{index}")), crate::KeyId(0), vec![1]).unwrap();
        note.add_signature(line).unwrap();
    }
    let one_more = NoteSignature::new(name("last"), crate::KeyId(0), vec![1]).unwrap();
    assert_eq!(
        note.add_signature(one_more),
        Err(NoteError::TooManySignatures { limit: 100 })
    );
    assert!(SignedNote::parse(note.to_string().as_bytes()).is_ok());
}

#[test]
fn witness_bodies_encode_and_parse_back() {
    let note = log("example.com/log", 1)
        .sign_checkpoint(8, [1; 32])
        .unwrap();
    let request = AddCheckpointRequest::new(5, vec![[2; 32], [3; 32], [4; 32]], note).unwrap();
    let body = request.to_string();
    assert_eq!(
        AddCheckpointRequest::parse(body.as_bytes()).unwrap(),
        request
    );
    assert!(body.starts_with("old 5\nAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\n"));

    assert_eq!(format_size_body(20_852_014), "20852014\n");
    assert_eq!(
        parse_size_body(format_size_body(u64::MAX).as_bytes()),
        Ok(u64::MAX)
    );

    let witness = cosigner("witness.example/w1", 2);
    let text = request.note().text();
    let lines = vec![
        witness.cosign(text, 1).unwrap(),
        witness.cosign(text, 2).unwrap(),
    ];
    assert_eq!(
        parse_cosignatures(format_cosignatures(&lines).as_bytes()),
        Ok(lines)
    );
}
