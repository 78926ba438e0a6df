//! Signed notes and checkpoints (proto-note, C2SP): what parses encodes back byte for byte,
//! verifying against the seeds' log key never panics, and a checkpoint note's text parses as a
//! checkpoint that prints back to the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_note::{Checkpoint, KeyName, SignatureType, SignedNote, VerifierKey};
use veu_fuzz::public_key;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = SignedNote::parse(data) {
        assert_eq!(note.to_string().as_bytes(), data);
        let origin = note.text().lines().next().unwrap_or_default();
        if let Ok(name) = KeyName::new(origin) {
            let key = VerifierKey::new(name, SignatureType::Ed25519, *public_key(2).as_bytes());
            let _ = note.verify(&[key]);
        }
        if let Ok(checkpoint) = Checkpoint::parse(note.text()) {
            assert_eq!(checkpoint.to_string(), note.text());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(checkpoint) = Checkpoint::parse(text) {
            assert_eq!(checkpoint.to_string(), text);
        }
        if let Ok(key) = VerifierKey::parse(text) {
            assert_eq!(VerifierKey::parse(&key.to_string()).as_ref(), Ok(&key));
        }
        if let Ok(line) = proto_note::NoteSignature::parse_line(text) {
            assert_eq!(line.to_line(), format!("{text}\n"));
        }
    }
});
