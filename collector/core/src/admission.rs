//! Admission: the rules of the moment a signature-checked attestation must pass before the
//! ledger sees it: the TLS identity it arrived on, its site in the registry, idempotent
//! resubmission, the collector's clock window, the nonce, simulated evidence and prices. What
//! the log can replay (key binding, revocation, chain, issue-time order, GPU identities) is the
//! ledger's (`crate::ledger`), never repeated here. Each failure names its reason; a
//! resubmitted stored attestation is acknowledged before any other rule.

use proto_accounting::catalogue::Catalogue;
use proto_accounting::policy::SimulatedEvidence;
use proto_accounting::{PciId, Policy};
use proto_evidence::{AttestationPayload, ChainDigest, EvidenceSource, KeyId};

use crate::{Reason, SiteRegistry};

/// What the collector knows about an enrolled key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentBinding {
    /// The key.
    pub key_id: KeyId,
    /// The host it was enrolled for.
    pub host_id: String,
    /// The site it was enrolled at.
    pub site_id: String,
    /// The TLS client identity the key is bound to.
    pub identity: String,
}

/// What the nonce an attestation carries is worth, as the collector's nonce issuer judged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// No nonce: made before the agent's first challenge (a backlog or a start attestation).
    Absent,
    /// A nonce this collector issued to this key.
    Issued {
        /// When it was issued.
        issued_at_ms: i64,
        /// How long a statement answering it counts as fresh.
        valid_for_ms: i64,
    },
    /// Not a nonce this collector issued to this key.
    Foreign,
}

/// The fixed inputs of admission.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionContext<'a> {
    /// Prices devices.
    pub catalogue: &'a Catalogue,
    /// Counts devices and decides on unknown and simulated evidence.
    pub policy: &'a Policy,
    /// Where sites are.
    pub sites: &'a SiteRegistry,
    /// The collector's clock.
    pub now_ms: i64,
    /// How far in the future an issue time may be.
    pub max_future_skew_ms: i64,
    /// How old a (spooled, replayed) attestation may be.
    pub max_backlog_ms: i64,
}

/// An attestation to admit.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    /// The TLS identity of the stream it arrived on.
    pub presenting_identity: &'a str,
    /// The decoded, signature-checked payload.
    pub payload: &'a AttestationPayload,
    /// Its chain digest.
    pub digest: ChainDigest,
    /// The nonce issuer's judgement.
    pub nonce: NonceCheck,
}

/// An admitted attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// New evidence: the ledger decides what it does, then it is stored and acknowledged.
    Accept {
        /// It answered a live nonce within its validity.
        fresh: bool,
    },
    /// Already stored with the same digest: acknowledge again, store nothing.
    Duplicate,
}

/// The largest count or sequence the stores keep (a signed 64-bit column).
const STORABLE: u64 = i64::MAX as u64;

/// A refusal and its detail.
pub type Refusal = (Reason, String);

/// Applies every rule of the moment. `stored` is the digest already stored at the payload's
/// sequence, if any.
pub fn admit(
    agent: &AgentBinding,
    stored: Option<ChainDigest>,
    submission: Submission<'_>,
    context: AdmissionContext<'_>,
) -> Result<Admission, Refusal> {
    let payload = submission.payload;
    if submission.presenting_identity != agent.identity {
        return Err((
            Reason::KeyIdentityMismatch,
            format!(
                "key {} is bound to identity {}, presented by {}",
                agent.key_id, agent.identity, submission.presenting_identity
            ),
        ));
    }
    if context.sites.get(&agent.site_id).is_none() {
        return Err((
            Reason::SiteMismatch,
            format!("site {} is not in the site registry", agent.site_id),
        ));
    }
    match stored {
        Some(digest) if digest == submission.digest => return Ok(Admission::Duplicate),
        Some(_) => {
            return Err((
                Reason::Fork,
                format!(
                    "sequence {} is already stored with another digest",
                    payload.sequence
                ),
            ));
        }
        None => {}
    }
    // Numbers the books cannot hold are refused here, one attestation at a time, never by a
    // store that would fail the whole batch with them.
    for (what, value) in [
        ("sequence", payload.sequence),
        ("total TPP", payload.totals.tpp),
    ] {
        if value > STORABLE {
            return Err((
                Reason::Malformed,
                format!("{what} {value} is beyond the largest storable value {STORABLE}"),
            ));
        }
    }
    let issued = payload.issued_at_unix_ms;
    if issued > context.now_ms + context.max_future_skew_ms {
        return Err((
            Reason::ClockSkew,
            format!("issued {} ms in the future", issued - context.now_ms),
        ));
    }
    if issued < context.now_ms - context.max_backlog_ms {
        return Err((
            Reason::ClockSkew,
            format!(
                "issued {} ms ago, older than the backlog window",
                context.now_ms - issued
            ),
        ));
    }
    let fresh = match submission.nonce {
        NonceCheck::Absent => false,
        NonceCheck::Foreign => {
            return Err((
                Reason::StaleNonce,
                "the nonce was not issued to this key by this collector".into(),
            ));
        }
        NonceCheck::Issued {
            issued_at_ms,
            valid_for_ms,
        } => {
            if issued < issued_at_ms {
                return Err((
                    Reason::StaleNonce,
                    "the statement predates the nonce it answers".into(),
                ));
            }
            issued <= issued_at_ms + valid_for_ms
        }
    };
    check_evidence(payload, context.catalogue, context.policy)?;
    Ok(Admission::Accept { fresh })
}

/// The rules of the moment that depend only on the signed payload and the rules in force:
/// simulated evidence under the policy, and every device's catalogue id and TPP. What an
/// offline verifier re-applies to logged evidence with the bundle's policy and catalogue.
pub fn check_evidence(
    payload: &AttestationPayload,
    catalogue: &Catalogue,
    policy: &Policy,
) -> Result<(), Refusal> {
    if payload.source == EvidenceSource::Simulated
        && policy.counting.simulated_evidence == SimulatedEvidence::Reject
    {
        return Err((
            Reason::SimulatedEvidence,
            format!(
                "policy {} does not accept simulated evidence (the fake NVML library's); a demo \
                 or test collector needs a policy with [counting] simulated_evidence = \"accept\" \
                 in [rules] policy, such as deploy/policies/uveu-2025-us-simulated.toml",
                policy.id
            ),
        ));
    }
    check_prices(payload, catalogue, policy)
}

/// Every device's catalogue id and TPP must be what this collector's catalogue and policy say.
fn check_prices(
    payload: &AttestationPayload,
    catalogue: &Catalogue,
    policy: &Policy,
) -> Result<(), Refusal> {
    for device in &payload.devices {
        let pci = (device.pci_device_id != 0)
            .then(|| PciId::from_nvml(device.pci_device_id, device.pci_subsystem_id));
        let (expected_id, expected_tpp) = match catalogue.identify(pci, &device.name) {
            Some(found) => {
                let tpp = if policy.counts(found.accelerator) {
                    found.accelerator.tpp
                } else {
                    0
                };
                (found.accelerator.id.as_str(), tpp)
            }
            None => {
                let architecture =
                    (!device.architecture.is_empty()).then_some(device.architecture.as_str());
                let tpp = policy
                    .unknown_device_tpp(catalogue, architecture)
                    .map_err(|_| {
                        (
                            Reason::CatalogueMismatch,
                            format!(
                                "device {} is unknown and policy {} rejects unknown devices",
                                device.index, policy.id
                            ),
                        )
                    })?;
                ("", tpp)
            }
        };
        if device.catalogue_id != expected_id
            || device.tpp != expected_tpp
            || device.unknown != expected_id.is_empty()
        {
            return Err((
                Reason::CatalogueMismatch,
                format!(
                    "device {} claims {:?} at {} TPP; the catalogue {} says {:?} at {}",
                    device.index,
                    device.catalogue_id,
                    device.tpp,
                    catalogue.digest(),
                    expected_id,
                    expected_tpp
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
