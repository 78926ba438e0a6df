//! The books recomputed from log entries with the collector's own ledger: what the offline
//! verifier (and anyone holding the log) gets, entry by entry, in log order.

use std::collections::{BTreeMap, HashMap};

use collector_core::ledger::Ledger;
use collector_core::ledger::{Binding, Effect, Entry, Refused};
use collector_core::{LedgerEvent, LocationBook, SiteRegistry};
use collector_report::{ChangeKind, HostChange};
use proto_accounting::{Catalogue, CountryCode, EvidenceRule, Policy};
use proto_evidence::{Envelope, KeyId, Link, LogEntry, Measurement, Sha256};
use proto_gpu_evidence::{ChainCache, Trust};
use proto_seal::{MeasurementError, PublicKey};

use crate::verify::Finding;

/// What a replay of the log found and computed.
#[derive(Debug)]
pub struct Replay {
    /// Every entry the ledger (or a signature, an envelope or a price) refuses.
    pub failures: Vec<Finding>,
    /// Facts that do not fail (gaps the collector recorded).
    pub notes: Vec<String>,
    /// Attestation entries seen.
    pub attestations: usize,
    /// The books after the last entry.
    pub ledger: Ledger,
    /// Each host change, in the ledger's order and at its instants.
    pub changes: Vec<HostChange>,
    /// The log index of the entry that made each change, in step with `changes`.
    pub change_leaves: Vec<u64>,
    /// Landmarks' measurements admitted, by the collector's own rule, in log order.
    pub locations: LocationBook,
    /// Measurement entries seen.
    pub measurements: usize,
}

/// What round-trip measurements are judged with: the landmarks trusted (the auditor's own, or
/// the bundle's), where each site says it is, and the policy's terms.
#[derive(Debug, Clone, Copy)]
pub struct Locating<'a> {
    /// Landmarks whose measurements count.
    pub landmarks: &'a proto_location::Landmarks,
    /// The site registry.
    pub sites: &'a SiteRegistry,
    /// The policy's `[location]` terms.
    pub rule: proto_location::LocationRule,
}

impl Replay {
    fn fail(&mut self, code: &'static str, detail: String) {
        self.failures.push(Finding { code, detail });
    }
}

/// Replays `entries` (log index, entry, the stored envelope for attestations) in the order
/// given, which must be the log's. With `prices`, each attestation is also checked against
/// that policy and catalogue as admission checked it (simulated evidence, device prices).
/// GPU hardware reports are judged again with `gpu` (the roots the auditor trusts) at each
/// attestation's receipt time, as the collector judged them. Landmarks' measurements are
/// opened with `location`'s landmarks and admitted by the location book's rule at their
/// place in the log (without `location`, none counts).
pub fn replay<'a>(
    entries: impl IntoIterator<Item = (u64, &'a LogEntry, Option<&'a [u8]>)>,
    prices: Option<(&Policy, &Catalogue)>,
    gpu: &Trust,
    location: Option<Locating<'_>>,
) -> Replay {
    let mut replayer = Replayer::new(prices, gpu, location);
    let entries: Vec<_> = entries.into_iter().collect();
    for chunk in entries.chunks(OPEN_AHEAD) {
        replayer.open_ahead(chunk.iter().map(|(index, entry, _)| (*index, *entry)));
        for (index, entry, envelope) in chunk {
            replayer.step(*index, entry, *envelope);
        }
    }
    replayer.finish()
}

/// How many entries' measurement leaves are opened at once, in parallel, ahead of replaying
/// them: enough to keep every core busy, few enough that the opened statements stay small.
pub const OPEN_AHEAD: usize = 4096;

/// [`replay`] one entry at a time, for a caller that looks at the books between entries.
#[derive(Debug)]
pub struct Replayer<'a> {
    out: Replay,
    keys: BTreeMap<KeyId, PublicKey>,
    ledger: Ledger,
    cache: ChainCache,
    prices: Option<(&'a Policy, &'a Catalogue)>,
    gpu: &'a Trust,
    location: Option<Locating<'a>>,
    /// Measurement leaves opened ahead, by log index, until their step takes them.
    opened: HashMap<u64, Result<Measurement, MeasurementError>>,
}

impl<'a> Replayer<'a> {
    /// Before the first entry; the arguments are [`replay`]'s.
    pub fn new(
        prices: Option<(&'a Policy, &'a Catalogue)>,
        gpu: &'a Trust,
        location: Option<Locating<'a>>,
    ) -> Self {
        let rule = location.map_or_else(proto_location::LocationRule::default, |l| l.rule);
        let evidence =
            prices.map_or_else(EvidenceRule::default, |(policy, _)| policy.evidence.clone());
        Self {
            out: Replay {
                failures: Vec::new(),
                notes: Vec::new(),
                attestations: 0,
                ledger: Ledger::new(0, EvidenceRule::default()),
                changes: Vec::new(),
                change_leaves: Vec::new(),
                locations: LocationBook::new(rule),
                measurements: 0,
            },
            keys: BTreeMap::new(),
            ledger: Ledger::new(i64::MAX / 4, evidence),
            cache: ChainCache::default(),
            prices,
            gpu,
            location,
            opened: HashMap::new(),
        }
    }

    /// Opens the measurement leaves among `entries` (the ones the next steps replay) with the
    /// trusted landmarks, spread over the machine's cores: their two signatures are nearly
    /// all a measurement's replay costs, and each leaf opens alone. Each step then takes its
    /// leaf's outcome instead of opening it; the outcome is the same either way.
    pub fn open_ahead<'e>(&mut self, entries: impl IntoIterator<Item = (u64, &'e LogEntry)>) {
        let Some(location) = self.location else {
            return;
        };
        let leaves: Vec<(u64, &[u8])> = entries
            .into_iter()
            .filter_map(|(index, entry)| match entry {
                LogEntry::Measurement { measurement, .. } => Some((index, measurement.as_slice())),
                _ => None,
            })
            .collect();
        if leaves.is_empty() {
            return;
        }
        let threads = std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .min(leaves.len());
        let per_thread = leaves.len().div_ceil(threads);
        let landmarks = location.landmarks;
        std::thread::scope(|scope| {
            let workers: Vec<_> = leaves
                .chunks(per_thread)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(index, bytes)| (*index, open(bytes, landmarks)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for worker in workers {
                // A worker that failed leaves its leaves to be opened by their steps.
                if let Ok(opened) = worker.join() {
                    self.opened.extend(opened);
                }
            }
        });
    }

    /// The books after the entries stepped so far.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The measurements admitted so far.
    pub fn locations(&self) -> &LocationBook {
        &self.out.locations
    }

    /// Everything found and computed.
    pub fn finish(mut self) -> Replay {
        self.out.ledger = self.ledger;
        self.out
    }

    /// Replays the next entry of the log.
    pub fn step(&mut self, index: u64, entry: &LogEntry, envelope: Option<&[u8]>) {
        let Self {
            out,
            keys,
            ledger,
            cache,
            prices,
            gpu,
            location,
            opened,
        } = self;
        let (prices, gpu, location) = (*prices, *gpu, *location);
        let effect = match entry {
            LogEntry::Measurement {
                received_at_ms,
                measurement,
            } => {
                out.measurements += 1;
                if let Some(location) = location {
                    let opened = opened
                        .remove(&index)
                        .unwrap_or_else(|| open(measurement, location.landmarks));
                    admit_measurement(out, ledger, location, index, *received_at_ms, opened);
                }
                return;
            }
            LogEntry::KeyEnrolled {
                at_ms,
                public_key,
                host_id,
                site_id,
                country,
            }
            | LogEntry::HostRebound {
                at_ms,
                public_key,
                host_id,
                site_id,
                country,
            } => {
                let public = match PublicKey::from_slice(public_key) {
                    Ok(public) => public,
                    Err(e) => {
                        out.fail("leaf_malformed", format!("leaf {index}: {e}"));
                        return;
                    }
                };
                let country = match CountryCode::parse(country) {
                    Ok(country) => country,
                    Err(e) => {
                        out.fail(
                            "leaf_malformed",
                            format!("leaf {index}: host {host_id} enrolled in {country:?}: {e}"),
                        );
                        return;
                    }
                };
                let binding = Binding {
                    at_ms: *at_ms,
                    key: public.key_id(),
                    host: host_id,
                    site: site_id,
                    country,
                };
                let rebind = matches!(entry, LogEntry::HostRebound { .. });
                let entry = if rebind {
                    Entry::Rebound(binding)
                } else {
                    Entry::Enrolled(binding)
                };
                let effect = ledger.apply(&entry);
                if effect.is_ok() {
                    keys.insert(public.key_id(), public);
                }
                effect
            }
            LogEntry::KeyRevoked { at_ms, key_id } => ledger.apply(&Entry::Revoked {
                at_ms: *at_ms,
                key: *key_id,
            }),
            LogEntry::HostDecommissioned { at_ms, host_id } => {
                ledger.apply(&Entry::Decommissioned {
                    at_ms: *at_ms,
                    host: host_id,
                })
            }
            LogEntry::Attestation {
                received_at_ms,
                envelope: committed,
            } => {
                out.attestations += 1;
                let Some(bytes) = envelope else {
                    out.fail(
                        "envelope_missing",
                        format!("leaf {index}: the attestation's envelope is not in the bundle"),
                    );
                    return;
                };
                if Sha256::of(bytes) != *committed {
                    out.fail(
                        "envelope_mismatch",
                        format!("leaf {index}: the envelope is not the one the log committed to"),
                    );
                    return;
                }
                let envelope: Envelope = match proto_seal::decode_envelope(bytes) {
                    Ok(envelope) => envelope,
                    Err(e) => {
                        out.fail("leaf_malformed", format!("leaf {index}: {e}"));
                        return;
                    }
                };
                let Some(public) = keys.get(&envelope.key_id) else {
                    out.fail(
                        "unknown_key",
                        format!(
                            "leaf {index}: key {} has no enrolment in the log before it",
                            envelope.key_id
                        ),
                    );
                    return;
                };
                let verified = match proto_seal::open(envelope, public) {
                    Ok(verified) => verified,
                    Err(e) => {
                        out.fail("bad_signature", format!("leaf {index}: {e}"));
                        return;
                    }
                };
                let payload = verified.payload();
                if let Some((policy, catalogue)) = prices
                    && let Err((reason, detail)) =
                        collector_core::admission::check_evidence(payload, catalogue, policy)
                {
                    out.fail(
                        reason.as_str(),
                        format!("leaf {index}: the collector would have refused it: {detail}"),
                    );
                    return;
                }
                let proofs =
                    proto_gpu_evidence::assess(payload, *received_at_ms, gpu, Some(&*cache));
                let effect = ledger.apply(&Entry::Attested {
                    at_ms: *received_at_ms,
                    digest: verified.digest(),
                    payload,
                    gpu: &proofs,
                });
                if let Ok(Effect::Attested(applied)) = &effect {
                    if let Link::Gap { missing } = applied.link {
                        out.notes.push(format!(
                            "host {}: {missing} sequence(s) before {} are not in the log (a gap the collector recorded)",
                            payload.host_id, payload.sequence
                        ));
                    }
                    for event in &applied.events {
                        match event {
                            LedgerEvent::GpuEvidenceRefused { reason, detail, .. } => {
                                out.notes.push(format!(
                                    "leaf {index}: host {}: a GPU report counts as NVML evidence only ({reason}): {detail}",
                                    payload.host_id
                                ));
                            }
                            LedgerEvent::GpuRelabelled { detail, .. } => {
                                out.notes.push(format!(
                                    "leaf {index}: host {}: {detail}",
                                    payload.host_id
                                ));
                            }
                            _ => {}
                        }
                    }
                }
                effect
            }
        };
        match effect {
            Ok(effect) => {
                if let Some(change) = effect.change() {
                    out.change_leaves.push(index);
                    out.changes.push(HostChange {
                        at_ms: change.at_ms,
                        host_id: change.host.clone(),
                        site_id: change.site.clone(),
                        country: change.country,
                        tpp: change.tpp,
                        hardware_tpp: change.hardware_tpp,
                        devices: change.devices,
                        kind: if change.counts {
                            ChangeKind::Attested
                        } else {
                            ChangeKind::Decommissioned
                        },
                    });
                }
            }
            Err(refused) => {
                let code = match &refused {
                    Refused::Attestation(reason, _) => reason.as_str(),
                    Refused::Enrol(_) => "enrolment_refused",
                    Refused::Admin(_) => "admin_refused",
                };
                out.fail(
                    code,
                    format!("leaf {index}: the collector's ledger refuses it: {refused}"),
                );
            }
        }
    }
}

/// A measurement leaf opened with the trusted landmarks' keys, as the collector opened it.
fn open(
    bytes: &[u8],
    landmarks: &proto_location::Landmarks,
) -> Result<Measurement, MeasurementError> {
    proto_seal::open_delivered(bytes, |id| landmarks.get(id).map(|l| l.public_key))
}

/// One logged measurement, opened and admitted as the collector did.
fn admit_measurement(
    out: &mut Replay,
    ledger: &Ledger,
    location: Locating<'_>,
    index: u64,
    received_at_ms: i64,
    opened: Result<Measurement, MeasurementError>,
) {
    let landmarks = location.landmarks;
    let measurement = match opened {
        Ok(measurement) => measurement,
        Err(MeasurementError::UnknownLandmark(id)) => {
            out.notes.push(format!(
                    "leaf {index}: landmark {id} is not among the landmarks trusted here: its measurement does not count"
                ));
            return;
        }
        Err(error) => {
            out.fail("measurement_invalid", format!("leaf {index}: {error}"));
            return;
        }
    };
    match out
        .locations
        .check(&measurement, None, landmarks, ledger, received_at_ms)
    {
        Ok(()) => out.locations.accept(measurement),
        Err(refusal) => out.fail(
            refusal.code(),
            format!("leaf {index}: the collector's location rule refuses it: {refusal}"),
        ),
    }
}
