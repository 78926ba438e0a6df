//! Malformed input of every kind, each refused with the reason that names what is wrong.

use super::log;
use crate::{
    AddCheckpointRequest, Checkpoint, CheckpointError, CosignatureError, CosignatureV1,
    DecimalError, KeyError, KeyName, MAX_NOTE_BYTES, NoteError, RequestError, SignError,
    SignatureLineError, SignedNote, SignerKey, VerifierKey, parse_cosignatures, parse_size_body,
};

const ROOT: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

#[test]
fn key_names_refuse_spaces_plus_signs_and_control_characters() {
    assert_eq!(KeyName::new(""), Err(KeyError::EmptyName));
    for (bad, character) in [
        ("a b", ' '),
        ("a+b", '+'),
        ("a\u{a0}b", '\u{a0}'),
        ("a\u{2003}b", '\u{2003}'),
        ("a\u{3000}b", '\u{3000}'),
        ("a\tb", '\t'),
        ("a\rb", '\r'),
        ("a\u{1}b", '\u{1}'),
    ] {
        assert_eq!(
            KeyName::new(bad),
            Err(KeyError::NameCharacter {
                name: bad.into(),
                character
            }),
            "{bad:?}"
        );
    }
    assert!(KeyName::new("example.com/log-ü").is_ok());
}

#[test]
fn verifier_keys_refuse_each_wrong_part() {
    let good = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    VerifierKey::parse(good).unwrap();
    let cases = [
        ("example.com/foo", KeyError::VerifierKeyParts),
        ("example.com/foo+530d903a", KeyError::VerifierKeyParts),
        (
            "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            KeyError::EmptyName,
        ),
        (
            "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            KeyError::KeyIdSyntax("530D903A".into()),
        ),
        (
            "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            KeyError::KeyIdSyntax("530d903".into()),
        ),
        (
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k\n",
            KeyError::KeyNotBase64,
        ),
        (
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",
            KeyError::KeyNotBase64,
        ),
        ("example.com/foo+530d903a+", KeyError::EmptyKey),
        ("example.com/foo+530d903a+AQ==", KeyError::KeyLength(0)),
        (
            "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            KeyError::KeyIdMismatch {
                stated: crate::KeyId(0x530d_903a),
                computed: VerifierKey::parse(good)
                    .unwrap()
                    .with_name_for_test("example.com/bar"),
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(VerifierKey::parse(text), Err(expected), "{text:?}");
    }
}

impl VerifierKey {
    /// The key ID the same key would have under another name.
    fn with_name_for_test(&self, name: &str) -> crate::KeyId {
        crate::KeyId::compute(
            &KeyName::new(name).unwrap(),
            self.signature_type().byte(),
            self.public_key(),
        )
    }
}

#[test]
fn signer_keys_refuse_a_missing_prefix_and_a_key_id_of_another_key() {
    assert_eq!(
        SignerKey::parse("PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
            .err(),
        Some(KeyError::SignerKeyPrefix)
    );
    assert_eq!(
        SignerKey::parse("PRIVATE+KEY+PeterNeumann+c74f20a3").err(),
        Some(KeyError::SignerKeyParts)
    );
    assert!(matches!(
        SignerKey::parse(
            "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
        ),
        Err(KeyError::KeyIdMismatch { .. })
    ));
    // The seed is never printed.
    let key = SignerKey::parse(
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
    )
    .unwrap();
    assert!(!format!("{key:?}").contains("AYEKFALV"));
}

#[test]
fn notes_refuse_carriage_returns_tabs_and_nul() {
    let signed = log("example.com/log", 1)
        .sign_checkpoint(3, [7; 32])
        .unwrap()
        .to_string();
    let crlf = signed.replace('\n', "\r\n");
    assert_eq!(
        SignedNote::parse(crlf.as_bytes()),
        Err(NoteError::ControlCharacter {
            offset: 15,
            byte: b'\r'
        })
    );
    assert!(
        NoteError::ControlCharacter {
            offset: 15,
            byte: b'\r'
        }
        .to_string()
        .contains("carriage return")
    );
    for byte in [0u8, b'\t', 0x1b] {
        let mut bytes = signed.clone().into_bytes();
        bytes[2] = byte;
        assert_eq!(
            SignedNote::parse(&bytes),
            Err(NoteError::ControlCharacter { offset: 2, byte })
        );
    }
}

#[test]
fn notes_over_the_size_limit_are_refused_before_anything_else() {
    let big = vec![b'a'; MAX_NOTE_BYTES + 1];
    assert_eq!(
        SignedNote::parse(&big),
        Err(NoteError::TooLarge {
            size: MAX_NOTE_BYTES + 1,
            limit: MAX_NOTE_BYTES
        })
    );
}

#[test]
fn signature_lines_refuse_each_wrong_part() {
    let text = "a\n\n";
    let cases = [
        ("- k AAAAAAA=", SignatureLineError::NoEmDash),
        ("—k AAAAAAA=", SignatureLineError::NoEmDash),
        ("— kAAAAAAA=", SignatureLineError::NoSeparator),
        (
            "— k+1 AAAAAAA=",
            SignatureLineError::Name(KeyError::NameCharacter {
                name: "k+1".into(),
                character: '+',
            }),
        ),
        ("—  AAAAAAA=", SignatureLineError::Name(KeyError::EmptyName)),
        ("— k AAAAAAA", SignatureLineError::NotBase64),
        ("— k AAAAAAB=", SignatureLineError::NotBase64),
        ("— k AAAAAAA= ", SignatureLineError::NotBase64),
        ("— k ", SignatureLineError::TooShort { bytes: 0 }),
        ("— k AAAAAA==", SignatureLineError::TooShort { bytes: 4 }),
    ];
    for (line, error) in cases {
        let note = format!("{text}{line}\n");
        assert_eq!(
            SignedNote::parse(note.as_bytes()),
            Err(NoteError::SignatureLine { line: 3, error }),
            "{line:?}"
        );
    }
    // Five bytes is the shortest signature.
    assert!(SignedNote::parse("a\n\n— k AAAAAAA=\n".as_bytes()).is_ok());
}

#[test]
fn checkpoints_refuse_each_wrong_line() {
    let cases: Vec<(String, CheckpointError)> = vec![
        ("o\n1\n".into(), CheckpointError::TooFewLines { lines: 2 }),
        (format!("\n1\n{ROOT}\n"), CheckpointError::EmptyOrigin),
        (
            format!("o\n01\n{ROOT}\n"),
            CheckpointError::Size {
                text: "01".into(),
                error: DecimalError::LeadingZero,
            },
        ),
        (
            format!("o\n+1\n{ROOT}\n"),
            CheckpointError::Size {
                text: "+1".into(),
                error: DecimalError::NotDigits,
            },
        ),
        (
            format!("o\n 1\n{ROOT}\n"),
            CheckpointError::Size {
                text: " 1".into(),
                error: DecimalError::NotDigits,
            },
        ),
        (
            format!("o\n\n{ROOT}\n"),
            CheckpointError::Size {
                text: String::new(),
                error: DecimalError::Empty,
            },
        ),
        (
            format!("o\n18446744073709551616\n{ROOT}\n"),
            CheckpointError::Size {
                text: "18446744073709551616".into(),
                error: DecimalError::TooLarge,
            },
        ),
        (
            "o\n1\nAAAA\n".into(),
            CheckpointError::Root {
                text: "AAAA".into(),
            },
        ),
        (
            // 33 bytes.
            "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n".into(),
            CheckpointError::Root {
                text: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            },
        ),
        (
            // Non-canonical trailing bits.
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".into(),
            CheckpointError::Root {
                text: "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=".into(),
            },
        ),
        (
            format!("o\n1\n{ROOT}\next\n\n"),
            CheckpointError::EmptyExtension { line: 5 },
        ),
        (
            format!("o\n1\n{ROOT}"),
            CheckpointError::Text(NoteError::TextNotTerminated),
        ),
        (
            format!("o\r\n1\n{ROOT}\n"),
            CheckpointError::Text(NoteError::ControlCharacter {
                offset: 1,
                byte: b'\r',
            }),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(Checkpoint::parse(&text), Err(expected), "{text:?}");
    }
    assert_eq!(
        Checkpoint::new("", 1, [0; 32]),
        Err(CheckpointError::EmptyOrigin)
    );
    assert!(matches!(
        Checkpoint::new("a\nb", 1, [0; 32]),
        Err(CheckpointError::LineCharacter { .. })
    ));
    assert!(matches!(
        Checkpoint::new("a", 1, [0; 32]).unwrap().with_extension(""),
        Err(CheckpointError::EmptyExtension { line: 4 })
    ));
}

#[test]
fn cosignatures_refuse_other_lengths_and_timestamps_past_2_63() {
    assert_eq!(
        CosignatureV1::from_bytes(&[0; 71]),
        Err(CosignatureError::Length { bytes: 71 })
    );
    assert_eq!(
        CosignatureV1::from_bytes(&[0; 73]),
        Err(CosignatureError::Length { bytes: 73 })
    );
    let mut bytes = [0; 72];
    bytes[0] = 0x80;
    assert_eq!(
        CosignatureV1::from_bytes(&bytes),
        Err(CosignatureError::Timestamp { timestamp: 1 << 63 })
    );
    bytes[0] = 0x7f;
    bytes[1..8].fill(0xff);
    assert_eq!(
        CosignatureV1::from_bytes(&bytes).unwrap().timestamp,
        crate::MAX_TIMESTAMP
    );
    let cosigner = super::cosigner("witness.example/w", 2);
    assert_eq!(
        cosigner.cosign(&format!("o\n1\n{ROOT}\n"), 1 << 63),
        Err(SignError::Timestamp(1 << 63))
    );
    assert!(matches!(
        cosigner.cosign("not a checkpoint\n", 1),
        Err(SignError::NotCheckpoint(_))
    ));
}

#[test]
fn add_checkpoint_bodies_refuse_each_wrong_part() {
    let note = log("example.com/log", 1)
        .sign_checkpoint(8, [1; 32])
        .unwrap()
        .to_string();
    let hash = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let cases: Vec<(String, RequestError)> = vec![
        (String::new(), RequestError::NoOldLine),
        ("old 3".to_owned(), RequestError::NoOldLine),
        (format!("Old 3\n\n{note}"), RequestError::NoOldLine),
        (
            format!("old  3\n\n{note}"),
            RequestError::OldSize {
                text: " 3".into(),
                error: DecimalError::NotDigits,
            },
        ),
        (
            format!("old 03\n\n{note}"),
            RequestError::OldSize {
                text: "03".into(),
                error: DecimalError::LeadingZero,
            },
        ),
        (
            format!("old 3\n{note}"),
            RequestError::ProofLine {
                line: 2,
                text: "example.com/log".into(),
            },
        ),
        (format!("old 3\n{hash}\n"), RequestError::NoBlankLine),
        (format!("old 3\n{hash}"), RequestError::NoBlankLine),
        (
            format!("old 3\n{}\n{note}", format!("{hash}\n").repeat(64)),
            RequestError::TooManyProofHashes { limit: 63 },
        ),
        (
            format!("old 9\n\n{note}"),
            RequestError::OldSizeTooLarge {
                old_size: 9,
                size: 8,
            },
        ),
        (
            "old 3\n\n".to_owned(),
            RequestError::Note(NoteError::NoSeparator),
        ),
        (
            "old 3\n\nno checkpoint\n\n— k AAAAAAA=\n".to_owned(),
            RequestError::Checkpoint(CheckpointError::TooFewLines { lines: 1 }),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            AddCheckpointRequest::parse(body.as_bytes()),
            Err(expected),
            "{body:?}"
        );
    }
    // 63 proof lines are accepted.
    let body = format!("old 3\n{}\n{note}", format!("{hash}\n").repeat(63));
    assert_eq!(
        AddCheckpointRequest::parse(body.as_bytes())
            .unwrap()
            .proof()
            .len(),
        63
    );
}

#[test]
fn answer_bodies_refuse_what_is_not_a_size_or_signature_lines() {
    assert_eq!(parse_size_body(b"42\n"), Ok(42));
    assert_eq!(parse_size_body(b"0\n"), Ok(0));
    for bad in [
        &b"42"[..],
        b"042\n",
        b"42\n\n",
        b" 42\n",
        b"-1\n",
        b"",
        b"\n",
        b"18446744073709551616\n",
        b"99999999999999999999999999\n",
    ] {
        assert!(parse_size_body(bad).is_err(), "{bad:?}");
    }
    assert_eq!(parse_cosignatures(b""), Err(RequestError::NoCosignatures));
    assert_eq!(
        parse_cosignatures("— k AAAAAAA=".as_bytes()),
        Err(RequestError::NoCosignatures)
    );
    assert_eq!(
        parse_cosignatures("— k AAAAAAA=\n\n".as_bytes()),
        Err(RequestError::Note(NoteError::SignatureLine {
            line: 2,
            error: SignatureLineError::NoEmDash
        }))
    );
    assert!(parse_cosignatures("— k AAAAAAA=\r\n".as_bytes()).is_err());
}
