//! Round-trip location evidence: a landmark's signed measurement (as delivered to the collector
//! and as logged), the probe frames between agent and landmark, the landmark registry, and the
//! landmark daemon's configuration. The first byte picks the parser. Nothing may panic; what
//! decodes encodes back to the same bytes; no fuzzed statement opens with a fixed landmark key.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use proto_evidence::{LogEntry, Measurement, SignedMeasurement};
use proto_location::Landmarks;
use proto_location::probe::{HELLO_HEAD, Hello, LandmarkFrame};

/// A landmark key no fuzzed signature is made with.
const LANDMARK_KEY: [u8; 32] = [
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 5 {
        0 => {
            if let Ok(signed) = SignedMeasurement::decode(rest) {
                assert_eq!(signed.encode().unwrap(), rest);
                if let Ok(m) = Measurement::decode(&signed.statement) {
                    assert_eq!(m.encode().unwrap(), signed.statement);
                }
            }
            assert!(proto_seal::open_delivered(rest, |_| Some(LANDMARK_KEY)).is_err());
        }
        1 => {
            if let Ok(entry) = LogEntry::decode(rest) {
                assert_eq!(entry.encode().unwrap(), rest);
            }
        }
        2 => {
            if rest.len() >= HELLO_HEAD {
                let (head, host) = rest.split_at(HELLO_HEAD);
                if let Ok(hello) = Hello::decode(head, host) {
                    assert_eq!(hello.encode().unwrap(), rest);
                }
            }
            if let Some((&frame, body)) = rest.split_first()
                && LandmarkFrame::body_len(frame).is_ok()
            {
                let _ = LandmarkFrame::decode(frame, body);
            }
        }
        3 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(registry) = Landmarks::from_toml(text) {
                assert_eq!(Landmarks::from_toml(&registry.to_toml()).unwrap(), registry);
            }
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Err(errors) =
                veu_landmark::Config::parse(text, Path::new("/etc/veu-landmark/landmark.toml"))
            {
                let _ = errors.to_string();
            }
        }
    }
});
