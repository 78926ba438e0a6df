//! Deterministic test data: the same arguments always give the same values, so a test (or a
//! process killed mid-way) can recompute what it stored and compare byte for byte.

use proto_evidence::location::{Coordinates, Measurement, SignedMeasurement};
use proto_evidence::{LogDecodeError, Sha256};

use crate::{
    AcceptedAttestation, AgentRecord, Batch, ChainDigest, Event, Gpu, HostChange, HostId,
    HostState, HostUpdate, KeyId, Rejection, SiteId,
};

/// The size of a realistic 8-GPU envelope.
pub const ENVELOPE_BYTES: usize = 2_560;

/// Key number `n`.
pub fn key(n: u8) -> KeyId {
    let mut key = [n; 32];
    key[0] = 0xa0;
    KeyId(Sha256::from_bytes(key))
}

/// An enrolled agent for key `n` on `host` at site `site-<host>`.
pub fn agent(n: u8, host: &str) -> AgentRecord {
    AgentRecord {
        key_id: key(n),
        public_key: [n ^ 0x5a; 32],
        host_id: HostId(host.to_owned()),
        site_id: SiteId(format!("site-{host}")),
        country: "DE".to_owned(),
        identity: format!("{:064x}", u64::from(n)),
        enrolled_at_ms: 1_000 * i64::from(n),
        revoked_at_ms: None,
    }
}

/// The digest of link `sequence` of key `n`'s chain.
pub fn digest(n: u8, sequence: u64) -> ChainDigest {
    let mut random = SplitMix(u64::from(n) << 56 ^ sequence);
    let mut digest = [0; 32];
    for chunk in digest.chunks_mut(8) {
        chunk.copy_from_slice(&random.next().to_le_bytes());
    }
    ChainDigest(Sha256::from_bytes(digest))
}

/// `digest` with its first bit flipped: the digest of a fork of the same link.
pub fn forked(digest: ChainDigest) -> ChainDigest {
    let mut bytes = *digest.0.as_bytes();
    bytes[0] ^= 1;
    ChainDigest(Sha256::from_bytes(bytes))
}

/// `len` bytes that differ per (key, sequence) and include every byte value.
pub fn envelope(n: u8, sequence: u64, len: usize) -> Vec<u8> {
    let mut random = SplitMix(u64::from(n) << 48 ^ sequence ^ 0xe4e1);
    (0..len)
        .map(|i| {
            if i < 256 {
                i as u8
            } else {
                random.next() as u8
            }
        })
        .collect()
}

/// GPU `index` of `host`, with its serial and a catalogue TPP.
pub fn gpu(host: &str, index: usize) -> Gpu {
    Gpu {
        uuid: format!("GPU-{host}-{index:04}-ünï"),
        serial: format!("SN-{host}-{index}"),
        catalogue_id: "h100-sxm5-80gb".to_owned(),
        tpp: 63_328,
        counted: true,
        hardware: String::new(),
        hardware_at_ms: 0,
    }
}

/// GPU `index` of `host` with verified hardware evidence: a device-certificate identity that
/// differs per GPU, proven at `at_ms`.
pub fn attested_gpu(host: &str, index: usize, at_ms: i64) -> Gpu {
    let seed = host.bytes().fold(index as u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    let mut random = SplitMix(seed);
    Gpu {
        hardware: format!("NVIDIA:GH100:{:016X}{:016X}", random.next(), random.next()),
        hardware_at_ms: at_ms,
        ..gpu(host, index)
    }
}

/// The counted TPP of `gpus` whose hardware identity is proven.
pub fn hardware_tpp(gpus: &[Gpu]) -> u64 {
    gpus.iter()
        .filter(|g| g.counted && !g.hardware.is_empty())
        .map(|g| g.tpp)
        .sum()
}

/// Link `sequence` of key `n`'s chain from `host`, received at `at_ms` (issued 50 ms earlier),
/// with eight GPUs and an envelope of `ENVELOPE_BYTES`.
pub fn attestation(n: u8, sequence: u64, host: &str, at_ms: i64) -> AcceptedAttestation {
    let gpus: Vec<Gpu> = (0..8).map(|i| gpu(host, i)).collect();
    AcceptedAttestation {
        key_id: key(n),
        sequence,
        digest: digest(n, sequence),
        previous_digest: digest(n, sequence.wrapping_sub(1)),
        host_id: HostId(host.to_owned()),
        site_id: SiteId(format!("site-{host}")),
        country: "DE".to_owned(),
        issued_at_ms: at_ms - 50,
        received_at_ms: at_ms,
        tpp: gpus.iter().map(|g| g.tpp).sum(),
        devices: 8,
        simulated: false,
        gap_before: 0,
        fresh: sequence.is_multiple_of(2),
        envelope: envelope(n, sequence, ENVELOPE_BYTES),
        gpus,
        log_index: None,
    }
}

/// Landmark `n`'s signed measurement of `host` (key `n`'s agent) at `measured_at_ms`, encoded
/// as the collector logs it; the signature is not a real one (stores never check it).
pub fn measurement(n: u8, host: &str, measured_at_ms: i64) -> Result<Vec<u8>, LogDecodeError> {
    let at = Coordinates::from_e7(501_109_000 + i32::from(n), 86_821_000)
        .map_err(|_| LogDecodeError::Range("coordinates"))?;
    let statement = Measurement {
        landmark: format!("landmark-{n}"),
        at,
        host: host.to_owned(),
        agent_key: agent(n, host).public_key,
        min_rtt_us: 1_000 + u64::from(n),
        rounds: 10,
        measured_at_ms,
        nonce: *digest(n, measured_at_ms as u64).0.as_bytes(),
        answer: [n; 64],
    }
    .encode()?;
    SignedMeasurement {
        statement,
        signature: [n ^ 0x33; 64],
    }
    .encode()
}

/// The host state that `a` leaves behind.
pub fn state_of(a: &AcceptedAttestation, decommissioned_at_ms: Option<i64>) -> HostState {
    HostState {
        host_id: a.host_id.clone(),
        site_id: a.site_id.clone(),
        country: a.country.clone(),
        key_id: a.key_id,
        last_sequence: a.sequence,
        last_digest: a.digest,
        last_issued_at_ms: a.issued_at_ms,
        last_received_at_ms: a.received_at_ms,
        tpp: a.tpp,
        devices: a.devices,
        decommissioned_at_ms,
    }
}

pub fn event(at_ms: i64, kind: &str, detail: &str) -> Event {
    Event {
        at_ms,
        kind: kind.to_owned(),
        host_id: Some(HostId("host-a".to_owned())),
        key_id: Some(key(1)),
        detail: detail.to_owned(),
        value: Some(at_ms / 2),
    }
}

pub fn rejection(at_ms: i64, reason: &str, detail: &str) -> Rejection {
    Rejection {
        at_ms,
        reason: reason.to_owned(),
        key_id: Some(key(1)),
        host_id: None,
        sequence: Some(7),
        peer: "192.0.2.10:50443".to_owned(),
        detail: detail.to_owned(),
        count: 1,
    }
}

/// A batch of attestations, each with the host update a ledger makes of a plain chain: the
/// host moves to it, and its change is recorded.
pub fn batch(attestations: Vec<AcceptedAttestation>) -> Batch {
    Batch {
        hosts: updates(&attestations),
        attestations,
        events: Vec::new(),
        rejections: Vec::new(),
    }
}

/// The host updates of `attestations`, as `batch` makes them.
pub fn updates(attestations: &[AcceptedAttestation]) -> Vec<HostUpdate> {
    attestations
        .iter()
        .map(|a| HostUpdate {
            state: state_of(a, None),
            gpus: a.gpus.clone(),
            change: Some(HostChange {
                at_ms: a.received_at_ms,
                host_id: a.host_id.clone(),
                site_id: a.site_id.clone(),
                country: a.country.clone(),
                tpp: a.tpp,
                devices: a.devices,
                decommissioned: false,
                hardware_tpp: hardware_tpp(&a.gpus),
            }),
        })
        .collect()
}

/// The state `put_agent` gives a host before its first attestation.
pub fn enrolled_state(agent: &AgentRecord) -> HostState {
    HostState::enrolled(agent)
}

/// SplitMix64: small, deterministic, good enough for test bytes.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The attestations without the log index the store assigned, to compare with what was
/// committed.
pub fn unindexed(mut attestations: Vec<AcceptedAttestation>) -> Vec<AcceptedAttestation> {
    for attestation in &mut attestations {
        attestation.log_index = None;
    }
    attestations
}
