//! Signed bytes as an attestation payload: signed with the seeds' attestation key, then opened,
//! so every byte reaches the decoder (field checks, device strings, totals). What opens seals
//! and opens again to the same payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_evidence::ATTESTATION_CONTEXT;
use veu_fuzz::signer;

fuzz_target!(|data: &[u8]| {
    let signer = signer(1);
    let envelope = signer.sign(ATTESTATION_CONTEXT, data.to_vec());
    let unverified = proto_seal::decode_payload_unverified(&envelope);
    match proto_seal::open(envelope, &signer.public_key()) {
        Ok(opened) => {
            assert_eq!(unverified.as_ref(), Ok(opened.payload()));
            let again = proto_seal::seal(opened.payload(), &signer).expect("it was within bounds");
            let reopened = proto_seal::open(again, &signer.public_key()).expect("it opens again");
            assert_eq!(reopened.payload(), opened.payload());
        }
        Err(proto_seal::OpenError::Malformed(error)) => {
            assert_eq!(unverified, Err(error));
        }
        Err(other) => assert!(
            matches!(
                other,
                proto_seal::OpenError::Oversized(_)
                    | proto_seal::OpenError::PayloadKeyMismatch { .. }
            ),
            "{other}"
        ),
    }
});
