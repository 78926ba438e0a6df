//! Properties over arbitrary input: no parser panics; what parses encodes back to the same
//! bytes; no changed byte of a signed note verifies as another text.

use proptest::prelude::*;

use super::{cosigner, log};
use crate::{
    AddCheckpointRequest, Checkpoint, CosignatureV1, NoteSignature, SignedNote, SignerKey,
    VerifierKey, parse_cosignatures, parse_size_body,
};

/// Pieces that make arbitrary input reach past the first checks.
const TOKENS: &[&str] = &[
    "\n",
    "\n\n",
    "— ",
    " ",
    "+",
    "old ",
    "0",
    "17",
    "example.com/log",
    "AAAA",
    "=",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "\r",
    "é",
    "PRIVATE+KEY+",
    "530d903a",
];

fn tokens() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..40)
        .prop_map(|pieces| pieces.concat().into_bytes())
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..512), tokens()]
}

/// Every parser on the same input: none may panic; whatever parses encodes back exactly.
fn parse_everything(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(note) = SignedNote::parse(bytes) {
        assert_eq!(note.to_string().as_bytes(), bytes);
        let key = log("example.com/log", 1).verifier_key().clone();
        let _ = note.verify(&[key]);
    }
    if let Ok(checkpoint) = Checkpoint::parse(&text) {
        assert_eq!(checkpoint.to_text(), text);
    }
    if let Ok(request) = AddCheckpointRequest::parse(bytes) {
        assert_eq!(request.to_string().as_bytes(), bytes);
    }
    if let Ok(lines) = parse_cosignatures(bytes) {
        assert_eq!(crate::format_cosignatures(&lines).as_bytes(), bytes);
    }
    let _ = parse_size_body(bytes);
    if let Ok(key) = VerifierKey::parse(&text) {
        assert_eq!(key.to_string(), text);
    }
    let _ = SignerKey::parse(&text);
    let _ = CosignatureV1::from_bytes(bytes);
    let _ = NoteSignature::parse_line(&text);
}

proptest! {
    #[test]
    fn no_input_panics_a_parser(bytes in input()) {
        parse_everything(&bytes);
    }

    #[test]
    fn no_changed_byte_verifies_as_another_text(position in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let log = log("example.com/log", 1);
        let witness = cosigner("witness.example/w1", 2);
        let mut note = log.sign_checkpoint(1234, [3; 32]).unwrap();
        note.add_signature(witness.cosign(note.text(), 99).unwrap()).unwrap();
        let original = note.text().to_owned();
        let mut bytes = note.to_string().into_bytes();
        let at = position.index(bytes.len());
        bytes[at] = byte;
        parse_everything(&bytes);
        let keys = [log.verifier_key().clone(), witness.verifier_key().clone()];
        if let Ok(parsed) = SignedNote::parse(&bytes)
            && let Ok(verified) = parsed.verify(&keys)
        {
            prop_assert_eq!(verified.text(), original.as_str());
        }
    }

    #[test]
    fn checkpoints_of_any_origin_size_and_root_round_trip(
        origin in "[!-*,-~]{1,40}",
        size in any::<u64>(),
        root in any::<[u8; 32]>(),
        timestamp in 0..=crate::MAX_TIMESTAMP,
    ) {
        let log = log(&origin, 5);
        let witness = cosigner("w", 6);
        let mut note = log.sign_checkpoint(size, root).unwrap();
        note.add_signature(witness.cosign(note.text(), timestamp).unwrap()).unwrap();
        let parsed = SignedNote::parse(note.to_string().as_bytes()).unwrap();
        let verified = parsed
            .verify(&[log.verifier_key().clone(), witness.verifier_key().clone()])
            .unwrap();
        prop_assert_eq!(verified.verified()[1].timestamp(), Some(timestamp));
        let checkpoint = Checkpoint::parse(verified.text()).unwrap();
        prop_assert_eq!(checkpoint.origin(), origin.as_str());
        prop_assert_eq!(checkpoint.size(), size);
        prop_assert_eq!(checkpoint.root(), &root);
    }
}
