//! One simulated agent's hash chain: each call seals the next attestation of the same board,
//! carrying the latest collector nonce, signed with the agent's own Ed25519 key. The payload is
//! encoded and signed on every call, as a real agent does.

use proto_evidence::{
    AttestationPayload, ChainDigest, Envelope, EvidenceSource, HostId, KeyId, SiteId, Totals,
};
use proto_seal::{Ed25519Signer, SealError};
use veu_daemon_kit::now_unix_ms;

use crate::inventory::Board;

/// What the simulated agent calls itself in payloads and `Hello`.
pub const AGENT_VERSION: &str = concat!("veu-loadgen/", env!("CARGO_PKG_VERSION"));

/// NVML driver version the simulated hosts report.
const DRIVER_VERSION: &str = "550.90.07";

/// A chain of attestations for one enrolled key.
#[derive(Debug)]
pub struct Attestor {
    signer: Ed25519Signer,
    payload: AttestationPayload,
    previous: ChainDigest,
}

impl Attestor {
    /// A chain starting at sequence 1 (from genesis) for `host_id` at `site_id`.
    pub fn new(signer: Ed25519Signer, host_id: &str, site_id: &str, board: Board) -> Self {
        // `Totals::of` fails only on overflow, impossible for 8 devices of catalogue TPP.
        let totals = Totals::of(&board.devices).unwrap_or_default();
        let payload = AttestationPayload {
            key_id: signer.key_id(),
            host_id: HostId(host_id.to_owned()),
            site_id: SiteId(site_id.to_owned()),
            sequence: 0,
            previous_digest: ChainDigest::GENESIS,
            issued_at_unix_ms: 0,
            collector_nonce: Vec::new(),
            devices: board.devices,
            totals,
            catalogue_digest: board.catalogue_digest,
            policy_digest: board.policy_digest,
            agent_version: AGENT_VERSION.to_owned(),
            source: EvidenceSource::Simulated,
            driver_version: DRIVER_VERSION.to_owned(),
        };
        Self {
            signer,
            payload,
            previous: ChainDigest::GENESIS,
        }
    }

    /// The signing key's id.
    pub fn key_id(&self) -> KeyId {
        self.signer.key_id()
    }

    /// The signer, for challenge responses.
    pub fn signer(&self) -> &Ed25519Signer {
        &self.signer
    }

    /// The last sequence sealed, 0 before the first.
    pub fn sequence(&self) -> u64 {
        self.payload.sequence
    }

    /// The last chain digest, genesis before the first.
    pub fn head_digest(&self) -> ChainDigest {
        self.previous
    }

    /// Seals the next attestation, issued now, answering `nonce`.
    pub fn next(&mut self, nonce: &[u8]) -> Result<Envelope, SealError> {
        let sequence = self.payload.sequence + 1;
        self.payload.sequence = sequence;
        self.payload.previous_digest = self.previous;
        self.payload.issued_at_unix_ms = now_unix_ms();
        if self.payload.collector_nonce != nonce {
            self.payload.collector_nonce = nonce.to_vec();
        }
        match proto_seal::seal(&self.payload, &self.signer) {
            Ok(envelope) => {
                self.previous = envelope.chain_digest();
                Ok(envelope)
            }
            Err(error) => {
                self.payload.sequence = sequence - 1;
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::BoardTemplate;

    #[test]
    fn attestations_chain_and_verify_with_the_agents_key() {
        let signer = Ed25519Signer::from_seed(&[9; 32]).unwrap();
        let public = signer.public_key();
        let board = BoardTemplate::h100().unwrap().board(1, 0);
        let mut attestor = Attestor::new(signer, "host-1", "us-va-1", board);
        let first = attestor.next(b"").unwrap();
        let second = attestor.next(b"nonce").unwrap();
        let first = proto_seal::open(first, &public).unwrap();
        let second = proto_seal::open(second, &public).unwrap();
        assert_eq!(first.payload().sequence, 1);
        assert_eq!(first.payload().previous_digest, ChainDigest::GENESIS);
        assert_eq!(second.payload().sequence, 2);
        assert_eq!(second.payload().previous_digest, first.digest());
        assert_eq!(second.payload().collector_nonce, b"nonce");
        assert_eq!(attestor.head_digest(), second.digest());
        assert_eq!(second.payload().totals.devices, 8);
    }
}
