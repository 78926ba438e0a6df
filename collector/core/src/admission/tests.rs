//! One test per rule, each with a real refused input.

use proto_accounting::policy::SimulatedEvidence;
use proto_evidence::{DeviceRecord, HostId, SiteId, Totals};

use super::*;

const NOW: i64 = 1_764_403_200_000;

struct World {
    catalogue: Catalogue,
    policy: Policy,
    sites: SiteRegistry,
}

fn world() -> World {
    World {
        catalogue: Catalogue::builtin().unwrap(),
        policy: Policy::uveu_2025_us().unwrap(),
        sites: SiteRegistry::from_toml("[[site]]\nid = \"us-va-1\"\ncountry = \"US\"\n[[site]]\nid = \"my-1\"\ncountry = \"MY\"\n").unwrap(),
    }
}

fn context(world: &World) -> AdmissionContext<'_> {
    AdmissionContext {
        catalogue: &world.catalogue,
        policy: &world.policy,
        sites: &world.sites,
        now_ms: NOW,
        max_future_skew_ms: 300_000,
        max_backlog_ms: 30 * 86_400_000,
    }
}

fn key() -> KeyId {
    KeyId::of_public_key(b"agent-1")
}

fn agent() -> AgentBinding {
    AgentBinding {
        key_id: key(),
        host_id: "gpu-1".into(),
        site_id: "us-va-1".into(),
        identity: "cert:abc".into(),
    }
}

fn h100(index: u32) -> DeviceRecord {
    DeviceRecord {
        index,
        uuid: format!("GPU-{index}"),
        name: "NVIDIA H100 80GB HBM3".into(),
        pci_device_id: 0x2330_10de,
        architecture: "Hopper".into(),
        catalogue_id: "H100-SXM5-80GB".into(),
        tpp: 15840,
        ..DeviceRecord::default()
    }
}

fn payload(sequence: u64, previous: ChainDigest) -> AttestationPayload {
    let devices: Vec<DeviceRecord> = (0..8).map(h100).collect();
    AttestationPayload {
        key_id: key(),
        host_id: HostId("gpu-1".into()),
        site_id: SiteId("us-va-1".into()),
        sequence,
        previous_digest: previous,
        issued_at_unix_ms: NOW - 1000,
        collector_nonce: Vec::new(),
        totals: Totals::of(&devices).unwrap(),
        devices,
        catalogue_digest: String::new(),
        policy_digest: String::new(),
        agent_version: "0.1.0".into(),
        source: EvidenceSource::Nvml,
        driver_version: "550".into(),
    }
}

fn digest(byte: u8) -> ChainDigest {
    ChainDigest::of_payload(&[byte])
}

fn submit(payload: &AttestationPayload, nonce: NonceCheck) -> Submission<'_> {
    Submission {
        presenting_identity: "cert:abc",
        payload,
        digest: digest(payload.sequence as u8),
        nonce,
    }
}

fn reason(result: Result<Admission, Refusal>) -> Reason {
    result.expect_err("expected a refusal").0
}

#[test]
fn a_valid_first_attestation_is_accepted() {
    let w = world();
    let p = payload(1, ChainDigest::GENESIS);
    let admission = admit(&agent(), None, submit(&p, NonceCheck::Absent), context(&w)).unwrap();
    assert_eq!(admission, Admission::Accept { fresh: false });
}

/// Key binding, revocation and chain rules are the ledger's (`crate::ledger::tests`); these
/// are the rules of the moment.
#[test]
fn identity_and_site_rules() {
    let w = world();
    let p = payload(1, ChainDigest::GENESIS);
    let mut other_identity = submit(&p, NonceCheck::Absent);
    other_identity.presenting_identity = "cert:stolen";
    assert_eq!(
        reason(admit(&agent(), None, other_identity, context(&w))),
        Reason::KeyIdentityMismatch
    );

    let nowhere = AgentBinding {
        site_id: "xx-1".into(),
        ..agent()
    };
    let mut p2 = p.clone();
    p2.site_id = SiteId("xx-1".into());
    assert_eq!(
        reason(admit(
            &nowhere,
            None,
            submit(&p2, NonceCheck::Absent),
            context(&w)
        )),
        Reason::SiteMismatch
    );
}

#[test]
fn idempotent_resubmission() {
    let w = world();
    // The stored attestation again: acknowledged, not stored twice.
    let same = payload(5, digest(4));
    assert_eq!(
        admit(
            &agent(),
            Some(digest(5)),
            submit(&same, NonceCheck::Absent),
            context(&w)
        ),
        Ok(Admission::Duplicate)
    );
    // Other content at a stored sequence.
    assert_eq!(
        reason(admit(
            &agent(),
            Some(digest(99)),
            submit(&same, NonceCheck::Absent),
            context(&w)
        )),
        Reason::Fork
    );
}

#[test]
fn clock_and_nonce_rules() {
    let w = world();
    let mut future = payload(1, ChainDigest::GENESIS);
    future.issued_at_unix_ms = NOW + 600_000;
    assert_eq!(
        reason(admit(
            &agent(),
            None,
            submit(&future, NonceCheck::Absent),
            context(&w)
        )),
        Reason::ClockSkew
    );
    let mut ancient = payload(1, ChainDigest::GENESIS);
    ancient.issued_at_unix_ms = NOW - 31 * 86_400_000;
    assert_eq!(
        reason(admit(
            &agent(),
            None,
            submit(&ancient, NonceCheck::Absent),
            context(&w)
        )),
        Reason::ClockSkew
    );

    let p = payload(1, ChainDigest::GENESIS);
    assert_eq!(
        reason(admit(
            &agent(),
            None,
            submit(&p, NonceCheck::Foreign),
            context(&w)
        )),
        Reason::StaleNonce
    );
    let after_statement = NonceCheck::Issued {
        issued_at_ms: NOW,
        valid_for_ms: 300_000,
    };
    assert_eq!(
        reason(admit(
            &agent(),
            None,
            submit(&p, after_statement),
            context(&w)
        )),
        Reason::StaleNonce
    );

    let live = NonceCheck::Issued {
        issued_at_ms: NOW - 5000,
        valid_for_ms: 300_000,
    };
    assert!(matches!(
        admit(&agent(), None, submit(&p, live), context(&w)),
        Ok(Admission::Accept { fresh: true, .. })
    ));
    // A spooled statement answering an old nonce is accepted as evidence, not as fresh.
    let expired = NonceCheck::Issued {
        issued_at_ms: NOW - 3_600_000,
        valid_for_ms: 300_000,
    };
    assert!(matches!(
        admit(&agent(), None, submit(&p, expired), context(&w)),
        Ok(Admission::Accept { fresh: false, .. })
    ));
}

#[test]
fn simulated_evidence_follows_the_policy() {
    let mut w = world();
    let mut p = payload(1, ChainDigest::GENESIS);
    p.source = EvidenceSource::Simulated;
    let (reason, detail) =
        admit(&agent(), None, submit(&p, NonceCheck::Absent), context(&w)).unwrap_err();
    assert_eq!(reason, Reason::SimulatedEvidence);
    // The refusal says what to do on a demo or test collector.
    assert!(
        detail.contains("deploy/policies/uveu-2025-us-simulated.toml"),
        "{detail}"
    );
    w.policy.counting.simulated_evidence = SimulatedEvidence::Accept;
    assert!(admit(&agent(), None, submit(&p, NonceCheck::Absent), context(&w)).is_ok());
}

#[test]
fn prices_must_agree_with_the_catalogue() {
    let w = world();
    let mut inflated = payload(1, ChainDigest::GENESIS);
    inflated.devices[2].tpp = 40200;
    assert_eq!(
        reason(admit(
            &agent(),
            None,
            submit(&inflated, NonceCheck::Absent),
            context(&w)
        )),
        Reason::CatalogueMismatch
    );

    let mut relabelled = payload(1, ChainDigest::GENESIS);
    relabelled.devices[0].catalogue_id = "H100-PCIE-80GB".into();
    assert_eq!(
        reason(admit(
            &agent(),
            None,
            submit(&relabelled, NonceCheck::Absent),
            context(&w)
        )),
        Reason::CatalogueMismatch
    );

    // An unknown device priced as the policy says is accepted; priced at zero it is not.
    let mut unknown = payload(1, ChainDigest::GENESIS);
    unknown.devices[0] = DeviceRecord {
        name: "NVIDIA B400".into(),
        pci_device_id: 0x3f00_10de,
        architecture: "Blackwell".into(),
        catalogue_id: String::new(),
        unknown: true,
        tpp: w
            .policy
            .unknown_device_tpp(&w.catalogue, Some("Blackwell"))
            .unwrap(),
        ..h100(0)
    };
    assert!(
        admit(
            &agent(),
            None,
            submit(&unknown, NonceCheck::Absent),
            context(&w)
        )
        .is_ok()
    );
    unknown.devices[0].tpp = 0;
    assert_eq!(
        reason(admit(
            &agent(),
            None,
            submit(&unknown, NonceCheck::Absent),
            context(&w)
        )),
        Reason::CatalogueMismatch
    );
}

#[test]
fn numbers_beyond_the_stores_are_refused_one_attestation_at_a_time() {
    let w = world();
    let far = payload(1 << 63, digest(1));
    let (reason, detail) = admit(
        &agent(),
        None,
        submit(&far, NonceCheck::Absent),
        context(&w),
    )
    .expect_err("sequence 2^63");
    assert_eq!(reason, Reason::Malformed);
    assert!(detail.contains("sequence"), "{detail}");
    let largest = payload(i64::MAX as u64, digest(1));
    assert!(
        admit(
            &agent(),
            None,
            submit(&largest, NonceCheck::Absent),
            context(&w)
        )
        .is_ok()
    );
}
