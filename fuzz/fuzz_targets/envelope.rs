//! A `veu.v1.Envelope` as a collector receives it: decoded, verified with the attestation key
//! of the seeds, and its payload decoded for display. What decodes encodes back to an envelope
//! that decodes to the same thing; a payload that decodes survives sealing and opening.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veu_fuzz::{public_key, signer};

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = proto_seal::decode_envelope(data) else {
        return;
    };
    let encoded = proto_seal::encode_envelope(&envelope);
    assert_eq!(
        proto_seal::decode_envelope(&encoded).as_ref(),
        Ok(&envelope)
    );
    assert_eq!(
        proto_seal::envelope_from_wire(proto_seal::envelope_to_wire(&envelope)).as_ref(),
        Ok(&envelope)
    );
    let _ = proto_seal::open(envelope.clone(), &public_key(1));
    if let Ok(mut payload) = proto_seal::decode_payload_unverified(&envelope) {
        let signer = signer(1);
        payload.key_id = signer.key_id();
        let sealed = proto_seal::seal(&payload, &signer).expect("a decoded payload fits");
        let opened = proto_seal::open(sealed, &signer.public_key()).expect("it opens again");
        assert_eq!(opened.payload(), &payload);
    }
});
