//! The tlog-witness bodies (proto-note): add-checkpoint requests, 200 (cosignatures) and 409
//! (size) answers, cosignature/v1 bytes and signer keys. What parses encodes back byte for
//! byte, and a request's consistency proof is checked without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_note::{
    AddCheckpointRequest, CosignatureV1, SignerKey, format_cosignatures, format_size_body,
    parse_cosignatures, parse_size_body,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = AddCheckpointRequest::parse(data) {
        assert_eq!(request.to_string().as_bytes(), data);
        let checkpoint = request.checkpoint();
        let _ = proto_merkle::verify_consistency(
            request.old_size(),
            checkpoint.size(),
            checkpoint.root(),
            checkpoint.root(),
            request.proof(),
        );
    }
    if let Ok(signatures) = parse_cosignatures(data) {
        assert_eq!(format_cosignatures(&signatures).as_bytes(), data);
        for signature in &signatures {
            if let Ok(cosignature) = CosignatureV1::from_note_signature(signature) {
                assert_eq!(cosignature.to_bytes().as_slice(), signature.signature());
            }
        }
    }
    if let Ok(size) = parse_size_body(data) {
        assert_eq!(format_size_body(size).as_bytes(), data);
    }
    if let Ok(cosignature) = CosignatureV1::from_bytes(data) {
        assert_eq!(cosignature.to_bytes().as_slice(), data);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(key) = SignerKey::parse(text)
    {
        assert_eq!(
            SignerKey::parse(&key.to_secret_string())
                .ok()
                .map(|k| k.verifier_key()),
            Some(key.verifier_key())
        );
    }
});
