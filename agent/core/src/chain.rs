//! The agent's side of the hash chain: the next payload names sequence + 1, the previous
//! digest and the latest collector nonce. Where the chain stands (its head) is the journal's,
//! which advances it only past what was made durable.

use proto_evidence::{
    AttestationPayload, ChainDigest, ChainHead, EvidenceSource, HostId, KeyId, SiteId,
};

use crate::PricedInventory;

/// Who the agent is, for every payload it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The signing key's id.
    pub key_id: KeyId,
    /// The enrolled host.
    pub host_id: HostId,
    /// The enrolled site.
    pub site_id: SiteId,
    /// This agent's version.
    pub agent_version: String,
}

/// What a payload is priced with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// `sha256:…` of the catalogue.
    pub catalogue_digest: String,
    /// `sha256:…` of the policy.
    pub policy_digest: String,
}

/// The agent's side of the chain: the collector's latest nonce, and the next payload after a
/// head. The head itself is the journal's (`agent_spool::Journal`), which moves it only past
/// what it made durable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    nonce: Vec<u8>,
}

impl Chain {
    /// Remembers the collector's latest challenge; the next payload answers it.
    pub fn observe_nonce(&mut self, nonce: Vec<u8>) {
        self.nonce = nonce;
    }

    /// The latest nonce seen.
    pub fn nonce(&self) -> &[u8] {
        &self.nonce
    }

    /// The link after `head` (`None` for a new key): sequence + 1, the head's digest (genesis
    /// for the first).
    #[allow(clippy::too_many_arguments)] // each is one independent part of the payload
    pub fn next_payload(
        &self,
        head: Option<ChainHead>,
        identity: &Identity,
        rules: &Rules,
        inventory: &PricedInventory,
        driver_version: &str,
        source: EvidenceSource,
        now_unix_ms: i64,
    ) -> AttestationPayload {
        let (sequence, previous_digest) = match head {
            Some(head) => (head.sequence + 1, head.digest),
            None => (1, ChainDigest::GENESIS),
        };
        AttestationPayload {
            key_id: identity.key_id,
            host_id: identity.host_id.clone(),
            site_id: identity.site_id.clone(),
            sequence,
            previous_digest,
            issued_at_unix_ms: now_unix_ms,
            collector_nonce: self.nonce.clone(),
            devices: inventory.records(),
            totals: inventory.totals,
            catalogue_digest: rules.catalogue_digest.clone(),
            policy_digest: rules.policy_digest.clone(),
            agent_version: identity.agent_version.clone(),
            source,
            driver_version: driver_version.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proto_accounting::{Catalogue, Policy};

    use super::*;
    use crate::{FakeGpuSource, GpuSource, price};

    fn identity() -> Identity {
        Identity {
            key_id: KeyId::of_public_key(b"agent key"),
            host_id: HostId("gpu-0001".into()),
            site_id: SiteId("us-va-1".into()),
            agent_version: "0.1.0".into(),
        }
    }

    fn make(chain: &Chain, head: Option<ChainHead>, now: i64) -> AttestationPayload {
        let inventory = FakeGpuSource::healthy(8).enumerate().unwrap();
        let priced = price(
            &inventory,
            &Catalogue::builtin().unwrap(),
            &Policy::uveu_2025_us().unwrap(),
        );
        let rules = Rules {
            catalogue_digest: "sha256:c".into(),
            policy_digest: "sha256:p".into(),
        };
        chain.next_payload(
            head,
            &identity(),
            &rules,
            &priced,
            "550",
            EvidenceSource::Simulated,
            now,
        )
    }

    #[test]
    fn links_follow_each_other_and_carry_the_nonce() {
        let mut chain = Chain::default();
        let first = make(&chain, None, 1000);
        assert_eq!(
            (first.sequence, first.previous_digest),
            (1, ChainDigest::GENESIS)
        );
        assert!(first.collector_nonce.is_empty());
        let first_digest = ChainDigest::of_payload(b"first");
        let head = ChainHead::after(&first, first_digest);
        assert_eq!(
            ChainHead::check(None, &first, first_digest),
            Ok(proto_evidence::Link::Next)
        );

        chain.observe_nonce(b"n-1".to_vec());
        let second = make(&chain, Some(head), 2000);
        assert_eq!(second.sequence, 2);
        assert_eq!(second.previous_digest, first_digest);
        assert_eq!(second.collector_nonce, b"n-1");
        assert_eq!(second.totals.tpp, 126_720);
        assert_eq!(
            ChainHead::check(Some(head), &second, ChainDigest::of_payload(b"second")),
            Ok(proto_evidence::Link::Next)
        );
    }
}
