//! The books of a real collector process against a model: hundreds of random segments of
//! enrolments (honest, and naming hosts that exist), rebind tokens, revocations,
//! decommissionings and attestations (next links, replays, forks, back-dated issue times, GPUs
//! of other hosts re-spelled, GPUs listed twice), with SIGKILL and restart between segments.
//! Every request is real bytes over mutual TLS; the model is the collector's own pure ledger
//! (`collector_core::Ledger`), fed the same entries in the same order. After every segment the
//! collector's live status, its audit distribution and the model agree exactly, and each
//! refusal or acceptance is the model's; after every restart, and at the end, an exported
//! bundle verifies offline to the same total.

use std::path::Path;

use collector_client::{Channel, Credential};
use collector_core::Ledger;
use collector_core::ledger::Binding;
use collector_testkit::h100 as gpu;
use proto_accounting::CountryCode;
use proto_evidence::{ChainDigest, DeviceRecord, Envelope};
use proto_seal::Ed25519Signer;
use proto_wire::v1;
use proto_wire::v1::admin_client::AdminClient;
use proto_wire::v1::audit_client::AuditClient;
use proto_wire::v1::collector_message::Message as ToAgent;
use proto_wire::v1::enrollment_client::EnrollmentClient;

use crate::support::{Collector, now_ms, ok};

/// Segments per run (`VEU_BOOKS_SEGMENTS` for a longer soak) and steps per segment.
const SEGMENTS: usize = 200;
const STEPS: usize = 5;
/// A restart (SIGKILL, then start) after every this many segments.
const RESTART_EVERY: usize = 25;
const SITES: [(&str, &str); 4] = [
    ("us-va-1", "US"),
    ("de-fra-1", "DE"),
    ("my-jhb-1", "MY"),
    ("in-mum-1", "IN"),
];

struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// One enrolled key: its certificate, and where its chain stands.
struct Actor {
    signer: Ed25519Signer,
    host: String,
    site: String,
    cert: String,
    key: String,
    sequence: u64,
    previous: ChainDigest,
    last: Option<Envelope>,
    last_issued: i64,
}

async fn channel(collector: &Collector, identity: Option<(&str, &str)>) -> Channel {
    collector
        .channel(identity.map(|(cert, key)| Credential::from_pem(cert, key)))
        .await
}

async fn admin(collector: &Collector) -> Channel {
    let pki = collector.dir.join("pki");
    let cert = std::fs::read_to_string(pki.join("admin.pem")).unwrap();
    let key = std::fs::read_to_string(pki.join("admin.key")).unwrap();
    channel(collector, Some((&cert, &key))).await
}

fn country(site: &str) -> CountryCode {
    let (_, code) = SITES.iter().find(|(id, _)| *id == site).unwrap();
    CountryCode::parse(code).unwrap()
}

/// Enrols a fresh key as `host` at `site` (a rebind token when `rebind`); returns the actor, or
/// `None` when the collector refused.
async fn enrol(
    collector: &Collector,
    model: &mut Ledger,
    seed: u64,
    host: &str,
    site: &str,
    rebind: bool,
) -> Option<Actor> {
    let mut admin = AdminClient::new(admin(collector).await);
    let token = admin
        .create_enroll_token(v1::CreateEnrollTokenRequest {
            site_id: site.into(),
            valid_for_seconds: 600,
            rebind_host: if rebind { host.into() } else { String::new() },
        })
        .await;
    let token = match token {
        Ok(token) => token.into_inner().token,
        // A rebind token for a host the collector does not know.
        Err(status) if rebind && status.code() == tonic::Code::NotFound => return None,
        Err(status) => panic!("token: {status:?}"),
    };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_be_bytes());
    bytes[31] = 7;
    let signer = Ed25519Signer::from_seed(&bytes).unwrap();
    let (csr_der, key) = collector_pki::make_csr(host).unwrap();
    let answer = EnrollmentClient::new(channel(collector, None).await)
        .enroll(v1::EnrollRequest {
            token,
            signing_public_key: signer.public_key().as_bytes().to_vec(),
            csr_der,
            host: Some(v1::HostFacts {
                hostname: host.into(),
                ..v1::HostFacts::default()
            }),
        })
        .await;
    let at = now_ms();
    let binding = Binding {
        at_ms: at,
        key: signer.key_id(),
        host,
        site,
        country: country(site),
    };
    let modelled = model.enrol(&binding, rebind);
    match answer {
        Ok(answer) => {
            assert!(
                modelled.is_ok(),
                "enrolled {host}, the model refuses: {modelled:?}"
            );
            let answer = answer.into_inner();
            Some(Actor {
                signer,
                host: host.to_owned(),
                site: site.to_owned(),
                cert: answer.certificate_chain_pem.concat(),
                key,
                sequence: 0,
                previous: ChainDigest::GENESIS,
                last: None,
                last_issued: at,
            })
        }
        Err(status) => {
            assert_eq!(status.code(), tonic::Code::AlreadyExists, "{status:?}");
            assert!(modelled.is_err(), "{host} refused, the model enrols it");
            None
        }
    }
}

/// Sends one envelope on a fresh stream; the collector's answer.
async fn submit(collector: &Collector, actor: &Actor, envelope: &Envelope) -> Option<ToAgent> {
    let channel = channel(collector, Some((&actor.cert, &actor.key))).await;
    collector_testkit::submit_once(channel, &actor.signer, &actor.host, "books", envelope)
        .await
        .ok()
        .flatten()
}

/// The next statement of `actor`, honest or not.
fn statement(random: &mut Random, actor: &Actor, others: &[String]) -> Envelope {
    if let Some(last) = &actor.last
        && random.below(10) == 0
    {
        return last.clone();
    }
    let (mut sequence, mut previous) = (actor.sequence + 1, actor.previous);
    match random.below(20) {
        0 => sequence += 2,
        1 if actor.sequence > 0 => {
            sequence = actor.sequence;
            previous = ChainDigest::of_payload(b"another history");
        }
        _ => {}
    }
    let issued = if random.below(15) == 0 {
        actor.last_issued - 60_000
    } else {
        now_ms()
    };
    let mut devices: Vec<DeviceRecord> = (0..1 + random.below(4))
        .map(|i| gpu(&actor.host, i))
        .collect();
    if !others.is_empty() && random.below(4) == 0 {
        let mut stolen = gpu(&others[random.below(others.len())], 0);
        stolen.uuid = format!("{}  ", stolen.uuid.to_lowercase());
        stolen.index = devices.len() as u32;
        devices.push(stolen);
    }
    if random.below(20) == 0 {
        let mut twin = devices[0].clone();
        twin.index = devices.len() as u32;
        devices.push(twin);
    }
    let payload = collector_testkit::statement(
        &actor.signer,
        &actor.host,
        &actor.site,
        sequence,
        previous,
        issued,
        &[],
        devices,
    );
    proto_seal::seal(&payload, &actor.signer).unwrap()
}

/// (country, TPP) of the non-empty countries of a distribution view.
fn view(view: Option<&v1::DistributionView>) -> Vec<(String, u64)> {
    let mut countries: Vec<(String, u64)> = view
        .map(|v| {
            v.countries
                .iter()
                .filter(|c| c.tpp > 0)
                .map(|c| (c.country.clone(), c.tpp))
                .collect()
        })
        .unwrap_or_default();
    countries.sort();
    countries
}

fn modelled(model: &Ledger) -> Vec<(String, u64)> {
    model
        .distribution()
        .countries()
        .filter(|(_, tpp)| *tpp > 0)
        .map(|(c, tpp)| (c.to_string(), tpp))
        .collect()
}

async fn check(collector: &Collector, model: &Ledger, segment: usize) {
    let expected = modelled(model);
    let status = AdminClient::new(admin(collector).await)
        .status(v1::StatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        view(status.last_known.as_ref()),
        expected,
        "segment {segment}: live status vs the model"
    );
    let audit = AuditClient::new(admin(collector).await)
        .distribution(v1::DistributionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        view(audit.last_known.as_ref()),
        expected,
        "segment {segment}: audit distribution vs the model"
    );
}

fn verify_offline(collector: &Collector, dir: &Path, model: &Ledger, name: &str) {
    let bundle = dir.join(name);
    collector.export_month(&bundle);
    let (code, out) = collector.verify(&bundle, &["--format", "json"]);
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 0, "{value:#}");
    assert_eq!(
        value["total_tpp"].as_u64(),
        Some(model.distribution().total()),
        "{name}: the verifier's total vs the model"
    );
}

#[test]
fn a_real_collector_keeps_the_books_its_ledger_defines_through_attacks_and_restarts() {
    let segments = std::env::var("VEU_BOOKS_SEGMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SEGMENTS);
    let dir = tempfile::tempdir().unwrap();
    let mut collector = Collector::start(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut model = Ledger::new(i64::MAX / 4, proto_accounting::EvidenceRule::default());
    let mut random = Random(0x00b0_0c5e_ed00_0001);
    let mut actors: Vec<Actor> = Vec::new();
    let mut next_host = 0usize;
    let (mut acked, mut refused) = (0usize, 0usize);
    runtime.block_on(async {
        for segment in 0..segments {
            for _ in 0..STEPS {
                let hosts: Vec<String> = actors.iter().map(|a| a.host.clone()).collect();
                match random.below(100) {
                    0..=14 => {
                        let (site, _) = SITES[random.below(SITES.len())];
                        let host = if !hosts.is_empty() && random.below(3) == 0 {
                            hosts[random.below(hosts.len())].clone()
                        } else {
                            next_host += 1;
                            format!("node-{next_host}")
                        };
                        let rebind = hosts.contains(&host) && random.below(2) == 0;
                        if let Some(actor) =
                            enrol(&collector, &mut model, random.next(), &host, site, rebind).await
                        {
                            actors.push(actor);
                        }
                    }
                    15..=19 if !actors.is_empty() => {
                        let actor = &actors[random.below(actors.len())];
                        let answer = AdminClient::new(admin(&collector).await)
                            .revoke_agent(v1::RevokeAgentRequest {
                                key_id: actor.signer.key_id().0.as_bytes().to_vec(),
                            })
                            .await
                            .unwrap()
                            .into_inner();
                        let modelled = model.revoke(now_ms(), actor.signer.key_id());
                        assert_eq!(answer.revoked, modelled.is_ok(), "revoking");
                    }
                    20..=23 if !hosts.is_empty() => {
                        let host = hosts[random.below(hosts.len())].clone();
                        let answer = AdminClient::new(admin(&collector).await)
                            .decommission(v1::DecommissionRequest {
                                host_id: host.clone(),
                            })
                            .await
                            .unwrap()
                            .into_inner();
                        let modelled = model.decommission(now_ms(), &host);
                        assert_eq!(answer.decommissioned, modelled.is_ok(), "decommissioning");
                    }
                    _ if !actors.is_empty() => {
                        let index = random.below(actors.len());
                        let others: Vec<String> = hosts
                            .iter()
                            .filter(|h| **h != actors[index].host)
                            .cloned()
                            .collect();
                        let envelope = statement(&mut random, &actors[index], &others);
                        let resubmitted = actors[index].last.as_ref() == Some(&envelope);
                        let answer = submit(&collector, &actors[index], &envelope).await;
                        let payload = proto_seal::decode_payload_unverified(&envelope).unwrap();
                        if resubmitted {
                            // Stored already: acknowledged again, unless its key was revoked
                            // since (then refused at hello).
                            let revoked = model
                                .key(&actors[index].signer.key_id())
                                .is_some_and(|k| k.revoked_at_ms.is_some());
                            match &answer {
                                Some(ToAgent::Ack(_)) => assert!(!revoked),
                                Some(ToAgent::Reject(r)) => assert!(
                                    revoked && r.reason == v1::RejectReason::RevokedKey as i32
                                ),
                                other => panic!("segment {segment}: {other:?}"),
                            }
                            continue;
                        }
                        let modelled =
                            model.attest(now_ms(), &payload, envelope.chain_digest(), &[]);
                        match (&answer, &modelled) {
                            (Some(ToAgent::Ack(_)), Ok(_)) => {
                                acked += 1;
                                let actor = &mut actors[index];
                                actor.sequence = payload.sequence;
                                actor.previous = envelope.chain_digest();
                                actor.last_issued = payload.issued_at_unix_ms;
                                actor.last = Some(envelope);
                            }
                            (Some(ToAgent::Reject(reject)), Err((reason, _))) => {
                                refused += 1;
                                let wire = v1::RejectReason::try_from(reject.reason).unwrap();
                                assert_eq!(
                                    wire.as_str_name().trim_start_matches("REJECT_REASON_"),
                                    reason.as_str().to_uppercase(),
                                    "segment {segment}"
                                );
                            }
                            _ => panic!(
                                "segment {segment}: the collector answered {answer:?}, the model {modelled:?}"
                            ),
                        }
                    }
                    _ => {}
                }
            }
            check(&collector, &model, segment).await;
            if (segment + 1) % RESTART_EVERY == 0 {
                collector.kill();
                collector.restart();
                check(&collector, &model, segment).await;
                verify_offline(&collector, dir.path(), &model, &format!("bundle-{segment}"));
            }
        }
    });
    verify_offline(&collector, dir.path(), &model, "bundle-end");
    eprintln!(
        "{segments} segments: {acked} attestations acknowledged, {refused} refused, {} hosts, {} keys, {} TPP",
        model.hosts().count(),
        model.keys().count(),
        model.distribution().total()
    );
    // The sequences reached acceptances and refusals both.
    assert!(
        acked > segments && refused > 10,
        "acked {acked}, refused {refused}"
    );
    let status = ok(&collector.veuctl(&["status", "--format", "json"]));
    assert!(status.contains("last_known"), "{status}");
}
