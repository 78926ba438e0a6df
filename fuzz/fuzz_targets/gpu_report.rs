//! GPU hardware evidence (proto-gpu-evidence): an NVIDIA attestation report with its
//! certificate chain, a reference integrity manifest, and an OCSP answer, as an agent or a
//! file hands them to the collector and the offline verifier. The first byte picks the parser;
//! for a report, the next two give its length and the rest is the chain. Nothing may panic,
//! and nothing made of fuzzed bytes verifies against NVIDIA's root for a nonce of zeros.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_gpu_evidence::{Expected, OcspCache, RimSet, Trust, verify};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            let Some((length, rest)) = rest.split_first_chunk::<2>() else {
                return;
            };
            let at = usize::from(u16::from_be_bytes(*length)).min(rest.len());
            let (report, chain) = rest.split_at(at);
            let expected = Expected {
                nonce: [0; 32],
                at_unix_ms: 1_780_000_000_000,
                driver_version: None,
                vbios_version: None,
            };
            // NVIDIA's recorded reports answer other nonces: none of them passes here.
            assert!(verify(report, chain, &expected, &Trust::nvidia(), None).is_err());
        }
        1 => {
            let _ = RimSet::from_files([("fuzzed.swidtag", rest)]);
        }
        _ => {
            let _ = OcspCache::from_responses([rest]);
        }
    }
});
