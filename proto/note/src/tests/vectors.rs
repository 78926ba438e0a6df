//! Every example the C2SP specs publish, and the reference vectors of the Go implementations.
//!
//! Spec sources: github.com/C2SP/C2SP at 5ba5ee830903e91240fc6f9f3a7a9293d49e69c9
//! (2026-07-22): `signed-note.md`, `tlog-checkpoint.md`, `tlog-cosignature.md`,
//! `tlog-witness.md`. Most spec examples are signed by keys the specs do not publish; of those
//! the framing (key IDs, lengths, timestamps, byte-exact re-encoding) is checked. The one
//! example whose key is published (`signed-note.md`, "Verifier keys" / "Example") is verified.
//!
//! Go vectors: golang.org/x/mod `sumdb/note/note_test.go` (`TestNewVerifier`, `TestNewSigner`,
//! `TestSign`, `TestOpen`), and github.com/transparency-dev/formats
//! `note/note_cosigv1_test.go` (`TestCoSigV1NewVerifier`, `TestCoSigV1Timestamp`).

use super::name;
use crate::{
    AddCheckpointRequest, Checkpoint, CosignatureError, CosignatureV1, Ed25519NoteSigner, KeyError,
    KeyId, MAX_TIMESTAMP, NoteError, SignatureLineError, SignatureType, SignedNote, SignerKey,
    VerifierKey, VerifyError, b64, cosigned_message, parse_cosignatures,
};

// --- signed-note.md ------------------------------------------------------------------------

/// signed-note.md, "Verifier keys" / "Example": the verifier key.
const EXAMPLE_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";

/// signed-note.md, "Verifier keys" / "Example": the note it verifies.
const EXAMPLE_NOTE: &str = "This is an example message.\n\
\n\
— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

/// signed-note.md, the introduction: a note whose text holds an empty line, by a key the spec
/// does not publish.
const QUASIMODO_NOTE: &str = "Ognuno sta solo sul cuor della terra\n\
trafitto da un raggio di sole:\n\
\n\
ed è subito sera.\n\
\n\
— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";

#[test]
fn signed_note_example_verifies_with_the_example_verifier_key() {
    let key = VerifierKey::parse(EXAMPLE_VKEY).unwrap();
    assert_eq!(key.name().as_str(), "example.com/foo");
    assert_eq!(key.id(), KeyId(0x530d_903a));
    assert_eq!(key.signature_type(), SignatureType::Ed25519);
    assert_eq!(key.to_string(), EXAMPLE_VKEY);
    // The key ID is SHA-256(name || 0x0A || 0x01 || key)[:4].
    assert_eq!(
        KeyId::compute(key.name(), 0x01, key.public_key()),
        KeyId(0x530d_903a)
    );

    let note = SignedNote::parse(EXAMPLE_NOTE.as_bytes()).unwrap();
    assert_eq!(note.text(), "This is an example message.\n");
    assert_eq!(note.to_string(), EXAMPLE_NOTE);
    let verified = note.verify(std::slice::from_ref(&key)).unwrap();
    assert_eq!(verified.verified().len(), 1);
    assert_eq!(verified.verified()[0].key(), &key);
    assert_eq!(verified.verified()[0].timestamp(), None);

    // One changed byte of text, or a signature under the same name by another key, fails.
    let tampered = EXAMPLE_NOTE.replace("example message", "example massage");
    let tampered = SignedNote::parse(tampered.as_bytes()).unwrap();
    assert!(matches!(
        tampered.verify(std::slice::from_ref(&key)),
        Err(VerifyError::BadSignature { .. })
    ));
    // The same key as a cosignature key has another key ID: the signature is ignored.
    let as_cosigner = key.with_type(SignatureType::CosignatureV1);
    assert_ne!(as_cosigner.id(), key.id());
    assert!(matches!(
        note.verify(&[as_cosigner]),
        Err(VerifyError::NoKnownSignature { .. })
    ));
}

#[test]
fn signed_note_introduction_separates_text_at_the_last_blank_line() {
    let note = SignedNote::parse(QUASIMODO_NOTE.as_bytes()).unwrap();
    assert_eq!(
        note.text(),
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    );
    let [signature] = note.signatures() else {
        panic!("one signature expected");
    };
    assert_eq!(signature.name().as_str(), "quasimodo.example/salvatore");
    assert_eq!(signature.id(), KeyId(0x367b_a04b));
    assert_eq!(signature.signature().len(), 64);
    assert_eq!(note.to_string(), QUASIMODO_NOTE);
    // Its key is not published: with the example key, the signature is unknown and ignored,
    // so the note has no trusted signature.
    let key = VerifierKey::parse(EXAMPLE_VKEY).unwrap();
    assert_eq!(
        note.verify(&[key]),
        Err(VerifyError::NoKnownSignature {
            found: vec!["quasimodo.example/salvatore+367ba04b".into()]
        })
    );
}

// --- tlog-checkpoint.md and tlog-cosignature.md ----------------------------------------------

/// tlog-checkpoint.md, the introduction; also the first two lines of tlog-cosignature.md's
/// example.
const CHECKPOINT_TEXT: &str = "example.com/behind-the-sofa\n\
20852163\n\
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

const LOG_SIGNATURE: &str = "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

/// tlog-cosignature.md, the introduction: the witness's cosignature line.
const WITNESS_COSIGNATURE: &str = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";

/// tlog-cosignature.md, "Ed25519 signed message": the message for the example checkpoint.
const COSIGNED_MESSAGE: &str = "cosignature/v1\n\
time 1679315147\n\
example.com/behind-the-sofa\n\
20852163\n\
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

#[test]
fn checkpoint_example_parses_and_encodes_back() {
    let encoded = format!("{CHECKPOINT_TEXT}\n{LOG_SIGNATURE}");
    let note = SignedNote::parse(encoded.as_bytes()).unwrap();
    assert_eq!(note.to_string(), encoded);
    let checkpoint = Checkpoint::parse(note.text()).unwrap();
    assert_eq!(checkpoint.origin(), "example.com/behind-the-sofa");
    assert_eq!(checkpoint.size(), 20_852_163);
    assert_eq!(
        b64::encode(checkpoint.root()),
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    );
    assert!(checkpoint.extensions().is_empty());
    assert_eq!(checkpoint.to_text(), CHECKPOINT_TEXT);
    // The log names its key after its origin; an Ed25519 signature is 64 bytes.
    let [signature] = note.signatures() else {
        panic!("one signature expected");
    };
    assert_eq!(signature.name().as_str(), checkpoint.origin());
    assert_eq!(signature.id(), KeyId(0x033d_e0ae));
    assert_eq!(signature.signature().len(), 64);
}

#[test]
fn cosignature_example_frames_a_timestamp_and_its_message_is_the_specs() {
    let encoded = format!("{CHECKPOINT_TEXT}\n{LOG_SIGNATURE}{WITNESS_COSIGNATURE}");
    let note = SignedNote::parse(encoded.as_bytes()).unwrap();
    assert_eq!(note.to_string(), encoded);
    let [_, witness] = note.signatures() else {
        panic!("two signatures expected");
    };
    assert_eq!(witness.name().as_str(), "witness.example.com/w1");
    assert_eq!(witness.id(), KeyId(0x8d66_cf3f));
    let cosignature = CosignatureV1::from_note_signature(witness).unwrap();
    // The example's timestamp is the one of the spec's signed-message example.
    assert_eq!(cosignature.timestamp, 1_679_315_147);
    assert_eq!(cosignature.to_bytes().as_slice(), witness.signature());
    assert_eq!(
        cosigned_message(1_679_315_147, note.text()),
        COSIGNED_MESSAGE.as_bytes()
    );
}

// --- tlog-witness.md -------------------------------------------------------------------------

/// tlog-witness.md, "add-checkpoint": the example request body.
const ADD_CHECKPOINT_BODY: &str = "old 20852014\n\
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n\
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n\
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n\
\n\
example.com/behind-the-sofa\n\
20852163\n\
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\
\n\
— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n";

/// tlog-witness.md, "add-checkpoint": the example response body.
const ADD_CHECKPOINT_RESPONSE: &str = "— witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n\
— witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==\n\
— witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==\n";

#[test]
fn add_checkpoint_example_request_parses_and_encodes_back() {
    let request = AddCheckpointRequest::parse(ADD_CHECKPOINT_BODY.as_bytes()).unwrap();
    assert_eq!(request.old_size(), 20_852_014);
    let proof: Vec<String> = request.proof().iter().map(|h| b64::encode(h)).collect();
    assert_eq!(
        proof,
        [
            "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=",
            "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=",
            "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=",
            "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=",
        ]
    );
    assert_eq!(request.checkpoint().origin(), "example.com/behind-the-sofa");
    assert_eq!(request.checkpoint().size(), 20_852_163);
    // "The submitted checkpoint MAY include multiple signatures."
    assert_eq!(request.note().signatures().len(), 2);
    assert_eq!(request.to_string(), ADD_CHECKPOINT_BODY);
}

#[test]
fn add_checkpoint_example_response_is_three_signature_lines() {
    let lines = parse_cosignatures(ADD_CHECKPOINT_RESPONSE.as_bytes()).unwrap();
    let names: Vec<&str> = lines.iter().map(|l| l.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "witness.example/w1",
            "witness.example/w1",
            "witness.example/w2"
        ]
    );
    for line in &lines {
        // Key ID, then a 72-byte timestamped signature.
        assert_eq!(line.signature().len(), CosignatureV1::LEN);
    }
    assert_eq!(crate::format_cosignatures(&lines), ADD_CHECKPOINT_RESPONSE);
    // The example's bytes are illustrative: the first two state timestamps past 2^63 - 1,
    // which a cosignature must not, and are refused as cosignatures.
    assert!(matches!(
        CosignatureV1::from_note_signature(&lines[0]),
        Err(CosignatureError::Timestamp { timestamp }) if timestamp > MAX_TIMESTAMP
    ));
    assert!(CosignatureV1::from_note_signature(&lines[1]).is_err());
    assert_eq!(
        CosignatureV1::from_note_signature(&lines[2])
            .unwrap()
            .timestamp,
        2_970_657_736_413_210_787
    );
}

// --- Go: golang.org/x/mod/sumdb/note, note_test.go --------------------------------------------

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

#[test]
fn go_sign_produces_the_reference_note_byte_for_byte() {
    // TestSign: Ed25519 is deterministic, so the signer key must make exactly this note.
    let key = SignerKey::parse(PETER_SKEY).unwrap();
    assert_eq!(key.to_secret_string(), PETER_SKEY);
    assert_eq!(key.verifier_key().to_string(), PETER_VKEY);
    let signer = Ed25519NoteSigner::from_signer_key(&key).unwrap();
    let note = SignedNote::sign(GO_TEXT, &[&signer]).unwrap();
    assert_eq!(note.to_string(), format!("{GO_TEXT}\n{PETER_SIG}"));
}

#[test]
fn go_open_verifies_known_keys_and_keeps_unknown_ones() {
    // TestOpen.
    let peter = VerifierKey::parse(PETER_VKEY).unwrap();
    let enoch = VerifierKey::parse(ENOCH_VKEY).unwrap();
    let both = format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let note = SignedNote::parse(both.as_bytes()).unwrap();

    let one = note.verify(std::slice::from_ref(&peter)).unwrap();
    assert_eq!(one.text(), GO_TEXT);
    assert_eq!(one.verified().len(), 1);
    assert_eq!(one.unverified().len(), 1);
    assert_eq!(one.unverified()[0].name().as_str(), "EnochRoot");
    assert_eq!(one.unverified()[0].id(), KeyId(0xaf0c_fe78));

    let two = note.verify(&[peter.clone(), enoch.clone()]).unwrap();
    assert_eq!(two.verified().len(), 2);
    assert!(two.unverified().is_empty());

    assert!(matches!(
        note.verify(&[]),
        Err(VerifyError::NoKnownSignature { found }) if found.len() == 2
    ));

    // Repeated signatures count once; repeated unknown ones are kept once.
    let repeated = format!("{GO_TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}");
    let note = SignedNote::parse(repeated.as_bytes()).unwrap();
    assert_eq!(note.to_string(), repeated);
    let verified = note.verify(std::slice::from_ref(&peter)).unwrap();
    assert_eq!(verified.verified().len(), 1);
    assert_eq!(verified.unverified().len(), 1);

    // Too many signatures (Go: 101 is refused).
    let many = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(101));
    assert_eq!(
        SignedNote::parse(many.as_bytes()),
        Err(NoteError::TooManySignatures { limit: 100 })
    );
    let hundred = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(100));
    assert!(SignedNote::parse(hundred.as_bytes()).is_ok());

    // A known key's invalid signature rejects the whole note.
    let (head, tail) = PETER_SIG.split_at(60);
    let invalid = format!("{GO_TEXT}\n{head}ABCD{tail}");
    let note = SignedNote::parse(invalid.as_bytes()).unwrap();
    assert_eq!(
        note.verify(&[peter]),
        Err(VerifyError::BadSignature {
            name: "PeterNeumann".into(),
            id: KeyId(0xc74f_20a3)
        })
    );
}

#[test]
fn go_malformed_messages_are_refused_each_with_its_reason() {
    // TestOpen's badMsgs, with the reason each fails for here.
    let no_newline = &PETER_SIG[..PETER_SIG.len() - 1];
    let cases: Vec<(String, NoteError)> = vec![
        (GO_TEXT.to_owned(), NoteError::NoSeparator),
        (format!("{GO_TEXT}\n"), NoteError::NoSignatures),
        (
            format!("{GO_TEXT}\n{no_newline}"),
            NoteError::UnterminatedSignature,
        ),
        (
            format!("\x01{GO_TEXT}\n{PETER_SIG}"),
            NoteError::ControlCharacter { offset: 0, byte: 1 },
        ),
        (
            format!(
                "{GO_TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
            ),
            NoteError::UnterminatedSignature,
        ),
        (
            format!(
                "{GO_TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            ),
            NoteError::SignatureLine {
                line: 4,
                error: SignatureLineError::NotBase64,
            },
        ),
        (
            format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n"),
            NoteError::SignatureLine {
                line: 5,
                error: SignatureLineError::NoEmDash,
            },
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(
            SignedNote::parse(message.as_bytes()),
            Err(expected),
            "{message}"
        );
    }
    let mut invalid_utf8 = b"\xff".to_vec();
    invalid_utf8.extend_from_slice(format!("{GO_TEXT}\n{PETER_SIG}").as_bytes());
    assert_eq!(
        SignedNote::parse(&invalid_utf8),
        Err(NoteError::NotUtf8 { offset: 0 })
    );
}

#[test]
fn go_verifier_and_signer_keys_refuse_every_mangling() {
    // TestNewVerifier and TestNewSigner: every proper substring and every one-byte increment.
    VerifierKey::parse(PETER_VKEY).unwrap();
    SignerKey::parse(PETER_SKEY).unwrap();
    for (key, parse) in [
        (
            PETER_VKEY,
            (|t: &str| VerifierKey::parse(t).is_ok()) as fn(&str) -> bool,
        ),
        (PETER_SKEY, |t: &str| SignerKey::parse(t).is_ok()),
    ] {
        let bytes = key.as_bytes();
        for i in 0..=bytes.len() {
            for j in i + 1..=bytes.len() {
                if (i, j) != (0, bytes.len()) {
                    let part = String::from_utf8_lossy(&bytes[i..j]);
                    assert!(!parse(&part), "{part}");
                }
            }
        }
        for i in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            changed[i] = changed[i].wrapping_add(1);
            let changed = String::from_utf8_lossy(&changed);
            assert!(!parse(&changed), "{changed}");
        }
    }
    // A key of the wrong length and an unknown type, each with a matching key ID. The first
    // ends in non-canonical base64 (non-zero trailing bits), which Go's decoder accepts and
    // this crate's strict one refuses before it sees the length.
    assert_eq!(
        VerifierKey::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        ),
        Err(KeyError::KeyNotBase64)
    );
    assert_eq!(
        VerifierKey::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEQ=="
        ),
        Err(KeyError::KeyLength(36))
    );
    assert_eq!(
        VerifierKey::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(KeyError::UnsupportedType(0x65))
    );
}

// --- Go: transparency-dev/formats, note/note_cosigv1_test.go ---------------------------------

#[test]
fn transparency_dev_verifier_keys_of_both_types_parse() {
    // TestCoSigV1NewVerifier: a type 0x01 key whose base64 holds '+', and a native 0x04 key.
    let plain =
        VerifierKey::parse("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6").unwrap();
    assert_eq!(plain.signature_type(), SignatureType::Ed25519);
    let native =
        VerifierKey::parse("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
            .unwrap();
    assert_eq!(native.signature_type(), SignatureType::CosignatureV1);
    assert_eq!(native.id(), KeyId(0xda77_ade7));
    for bad in [
        "bananas.sigstore.dev+12344556",
        "rekor.sigstore.dev+12345678+THIS_IS_NOT_BASE64!",
        "rekor.sigstore.dev+12345678+AwEB",
    ] {
        assert!(VerifierKey::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn transparency_dev_cosignature_timestamp() {
    // TestCoSigV1Timestamp: "works" and "wrong type of signature".
    let bytes = b64::decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==").unwrap();
    assert_eq!(
        CosignatureV1::from_bytes(&bytes[4..]).unwrap().timestamp,
        1_727_964_367
    );
    let plain = b64::decode("eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=").unwrap();
    assert_eq!(
        CosignatureV1::from_bytes(&plain[4..]),
        Err(CosignatureError::Length { bytes: 64 })
    );
}

#[test]
fn a_cosigner_from_a_plain_go_signer_key_uses_the_cosignature_key_id() {
    // transparency-dev/formats NewSignerForCosignatureV1 takes a type 0x01 signer key and
    // signs with key ID SHA-256(name || 0x0A || 0x04 || key)[:4]; so does this crate.
    let key = SignerKey::parse(PETER_SKEY).unwrap();
    let cosigner = crate::Cosigner::from_signer_key(&key).unwrap();
    let expected = VerifierKey::parse(PETER_VKEY)
        .unwrap()
        .with_type(SignatureType::CosignatureV1);
    assert_eq!(cosigner.verifier_key(), &expected);
    assert_ne!(expected.id(), KeyId(0xc74f_20a3));
    assert_eq!(name("PeterNeumann"), *expected.name());
}
