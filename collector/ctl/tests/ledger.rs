//! The books cannot be bent by anyone holding less than the hardware: each attack sends real
//! signed bytes over the collector's real mutual-TLS services, and each is judged by what an
//! auditor observes with veuctl (`audit distribution`, an exported bundle that `verify`
//! recomputes offline, the monthly report) next to the collector's live view, before and
//! after the collector's books are loaded again from its store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicI64, Ordering};

use collector_pki::Role;
use collector_store::AttestationStore as _;
use collector_testkit::{
    Agent, Harness, Stream, ToAgent, acked, devices, reject_reason, statement,
};
use proto_accounting::CountryCode;
use proto_evidence::{ChainDigest, DeviceRecord, Envelope};
use proto_wire::v1;
use proto_wire::v1::admin_client::AdminClient;
use proto_wire::v1::enrollment_client::EnrollmentClient;
use support::{Veuctl, countries, log_key};

const POLICY: &str = "uveu-2025-us-simulated.toml";
const H100: u64 = 15_840;
const DAY: i64 = 86_400_000;

/// A signed link of `agent`'s chain, issued at `issued`, listing `devices`.
fn link(
    agent: &Agent,
    sequence: u64,
    previous: ChainDigest,
    issued: i64,
    devices: Vec<DeviceRecord>,
) -> Envelope {
    // No nonce: a statement made before the stream's challenge (a backlog), accepted and not
    // counted as fresh.
    let payload = statement(
        &agent.signer,
        &agent.host,
        &agent.site,
        sequence,
        previous,
        issued,
        &[],
        devices,
    );
    proto_seal::seal(&payload, &agent.signer).unwrap()
}

/// When the books enrolled `agent`'s key: no link may be issued before it.
fn enrolled_at(h: &Harness, agent: &Agent) -> i64 {
    h.collector
        .state()
        .ledger
        .key(&agent.signer.key_id())
        .unwrap()
        .enrolled_at_ms
}

/// What an auditor and the operator see, in TPP per country: the live view, `veuctl audit
/// distribution`, and `veuctl verify` of a bundle exported for `[from, to)`; the three must
/// agree, and the bundle must verify.
struct Observed {
    countries: Vec<(String, u64)>,
}

async fn observe(h: &Harness, from_ms: i64, to_ms: i64) -> Observed {
    let live: Vec<(String, u64)> = h
        .collector
        .state()
        .ledger
        .distribution()
        .countries()
        .filter(|(_, tpp)| *tpp > 0)
        .map(|(country, tpp)| (country.to_string(), tpp))
        .collect();
    let audit = h
        .veuctl(&["audit", "distribution", "--format", "json"])
        .await
        .json();
    let audited: Vec<(String, u64)> = countries(&audit)
        .into_iter()
        .filter(|(_, tpp)| *tpp > 0)
        .collect();
    assert_eq!(
        audited, live,
        "audit distribution disagrees with the live view"
    );

    let bundle = h.dir.path().join(format!("bundle-{}", rand_suffix()));
    let (from, to) = (
        collector_report::month::format_timestamp(from_ms),
        collector_report::month::format_timestamp(to_ms),
    );
    let export = h
        .veuctl(&[
            "evidence",
            "export",
            "--from",
            &from,
            "--to",
            &to,
            "--out",
            bundle.to_str().unwrap(),
        ])
        .await;
    assert_eq!(export.code, 0, "{export:?}");
    let verified = support::veuctl_offline(&[
        "verify",
        bundle.to_str().unwrap(),
        "--log-key",
        &log_key(),
        "--format",
        "json",
    ])
    .await;
    let verified: serde_json::Value =
        serde_json::from_str(&verified.stdout).unwrap_or_else(|e| panic!("{e}: {verified:?}"));
    assert_eq!(verified["result"], "PASS", "{verified:#}");
    let total: u64 = live.iter().map(|(_, tpp)| tpp).sum();
    assert_eq!(
        verified["total_tpp"].as_u64(),
        Some(total),
        "the offline verifier recomputes other books: {verified:#}"
    );
    Observed { countries: live }
}

fn rand_suffix() -> u64 {
    static NEXT: AtomicI64 = AtomicI64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed) as u64
}

/// The books loaded afresh from the store, as after a restart, equal the live ones.
fn assert_restart_keeps_the_books(h: &Harness) {
    let reopened = h.reopen(POLICY);
    let (before, after) = (h.collector.state(), reopened.state());
    assert_eq!(before.ledger.distribution(), after.ledger.distribution());
    let hosts = |s: &collector_app::ingest::State| -> Vec<(String, collector_core::HostRecord)> {
        s.ledger
            .hosts()
            .map(|(h, r)| (h.clone(), r.clone()))
            .collect()
    };
    assert_eq!(hosts(&before), hosts(&after));
    let keys = |s: &collector_app::ingest::State| -> Vec<(String, collector_core::KeyRecord)> {
        let mut keys: Vec<_> = s
            .ledger
            .keys()
            .map(|(k, r)| (k.to_string(), r.clone()))
            .collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys
    };
    assert_eq!(keys(&before), keys(&after));
}

async fn token(h: &Harness, site: &str, rebind_host: &str) -> String {
    AdminClient::new(h.channel_as(Role::Admin, "ops").await)
        .create_enroll_token(v1::CreateEnrollTokenRequest {
            site_id: site.into(),
            valid_for_seconds: 600,
            rebind_host: rebind_host.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .token
}

/// Enrols `public_key` with `token` as `hostname`, as `veu-agent enroll` does.
async fn enrol(
    h: &Harness,
    token: String,
    public_key: &[u8],
    hostname: &str,
) -> Result<v1::EnrollResponse, tonic::Status> {
    let (csr_der, _key) = collector_pki::make_csr(hostname).unwrap();
    EnrollmentClient::new(h.anonymous_channel().await)
        .enroll(v1::EnrollRequest {
            token,
            signing_public_key: public_key.to_vec(),
            csr_der,
            host: Some(v1::HostFacts {
                hostname: hostname.into(),
                ..v1::HostFacts::default()
            }),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn us_my(tpp_us: u64, tpp_my: u64) -> Vec<(String, u64)> {
    let mut expected = Vec::new();
    if tpp_my > 0 {
        expected.push(("MY".to_owned(), tpp_my));
    }
    if tpp_us > 0 {
        expected.push(("US".to_owned(), tpp_us));
    }
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolment_token_cannot_take_over_an_existing_host() {
    let h = Harness::start(POLICY).await;
    let start = collector_testkit::now_ms();
    let real = h.enroll("gpu-my", "my-1", 1);
    let us = h.enroll("gpu-us", "us-va-1", 2);
    let mut real_stream = Stream::open(&h, &real, &real).await.unwrap();
    let first = link(
        &real,
        1,
        ChainDigest::GENESIS,
        enrolled_at(&h, &real) + 1,
        devices("gpu-my"),
    );
    assert_eq!(acked(&real_stream.send(&first).await), 1);
    let mut us_stream = Stream::open(&h, &us, &us).await.unwrap();
    let us_link = link(
        &us,
        1,
        ChainDigest::GENESIS,
        enrolled_at(&h, &us) + 1,
        devices("gpu-us"),
    );
    assert_eq!(acked(&us_stream.send(&us_link).await), 1);
    let before = observe(&h, start - DAY, start + DAY).await;
    assert_eq!(before.countries, us_my(8 * H100, 8 * H100));

    // A token for a US site, the Malaysian host's name, a fresh key.
    let attacker = proto_seal::Ed25519Signer::from_seed(&[66; 32]).unwrap();
    let us_token = token(&h, "us-va-1", "").await;
    let refused = enrol(
        &h,
        us_token.clone(),
        attacker.public_key().as_bytes(),
        "gpu-my",
    )
    .await
    .expect_err("an existing host id was enrolled again");
    assert_eq!(refused.code(), tonic::Code::AlreadyExists, "{refused:?}");
    assert!(refused.message().contains("gpu-my"), "{refused:?}");
    assert!(refused.message().contains("--rebind gpu-my"), "{refused:?}");
    assert!(h.collector.state().ledger.key(&attacker.key_id()).is_none());
    // The refusal did not spend the token: it still enrols a host id nobody holds.
    let newcomer = proto_seal::Ed25519Signer::from_seed(&[65; 32]).unwrap();
    let answer = enrol(&h, us_token, newcomer.public_key().as_bytes(), "gpu-new")
        .await
        .unwrap();
    assert_eq!(answer.host_id, "gpu-new");

    // The real agent keeps attesting, and Malaysia keeps its compute in every view.
    let second = link(
        &real,
        2,
        first.chain_digest(),
        enrolled_at(&h, &real) + 2,
        devices("gpu-my"),
    );
    assert_eq!(acked(&real_stream.send(&second).await), 2);
    let after = observe(&h, start - DAY, start + DAY).await;
    assert_eq!(after.countries, before.countries);

    // Moving the host is an administrator's explicit act: a rebind token names it, and its
    // earlier key is revoked the moment the new key is bound.
    let rebind = token(&h, "us-va-1", "gpu-my").await;
    let moved = proto_seal::Ed25519Signer::from_seed(&[67; 32]).unwrap();
    let answer = enrol(&h, rebind, moved.public_key().as_bytes(), "anything")
        .await
        .unwrap();
    assert_eq!(
        (answer.host_id.as_str(), answer.country.as_str()),
        ("gpu-my", "US")
    );
    let third = link(
        &real,
        3,
        second.chain_digest(),
        enrolled_at(&h, &real) + 3,
        devices("gpu-my"),
    );
    assert_eq!(
        reject_reason(&real_stream.send(&third).await),
        v1::RejectReason::RevokedKey
    );
    // Until the new key attests from its new site, the host counts nowhere.
    let during = observe(&h, start - DAY, start + DAY).await;
    assert_eq!(during.countries, us_my(8 * H100, 0));
    // The auditor sees it awaiting its new key's first attestation, in its new country.
    let hosts = h
        .veuctl(&["audit", "hosts", "--format", "json"])
        .await
        .json();
    let moved_host = hosts
        .as_array()
        .unwrap()
        .iter()
        .find(|host| host["host_id"] == "gpu-my")
        .unwrap();
    assert_eq!(
        (
            &moved_host["country"],
            &moved_host["last_sequence"],
            &moved_host["stale"]
        ),
        (
            &serde_json::json!("US"),
            &serde_json::json!(0),
            &serde_json::json!(false)
        ),
        "{hosts:#}"
    );
    let table = h.veuctl(&["audit", "hosts"]).await;
    assert!(
        table.stdout.contains("awaiting its first attestation"),
        "{table:?}"
    );
    assert_restart_keeps_the_books(&h);
    h.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_stays_revoked_after_re_enrolment_and_restart() {
    let h = Harness::start(POLICY).await;
    let signer = proto_seal::Ed25519Signer::from_seed(&[9; 32]).unwrap();
    let first = token(&h, "us-va-1", "").await;
    enrol(&h, first, signer.public_key().as_bytes(), "gpu-r")
        .await
        .unwrap();
    let revoke = h
        .veuctl(&["agents", "revoke", "--yes", &signer.key_id().to_string()])
        .await;
    assert_eq!(revoke.code, 0, "{revoke:?}");

    // `veu-agent enroll` again reuses its key: a new token must not bring it back.
    for hostname in ["gpu-r", "gpu-r2"] {
        let again = token(&h, "us-va-1", "").await;
        let refused = enrol(&h, again, signer.public_key().as_bytes(), hostname)
            .await
            .expect_err("a revoked key was enrolled again");
        assert_eq!(refused.code(), tonic::Code::AlreadyExists, "{refused:?}");
    }
    // Nor does a rebind token.
    let rebind = token(&h, "us-va-1", "gpu-r").await;
    assert!(
        enrol(&h, rebind, signer.public_key().as_bytes(), "gpu-r")
            .await
            .is_err()
    );
    assert!(h.collector.is_revoked(&signer.key_id()));
    let reopened = h.reopen(POLICY);
    assert!(
        reopened.is_revoked(&signer.key_id()),
        "revoked until restart"
    );
    assert_restart_keeps_the_books(&h);
    h.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decommissioned_host_counts_nowhere_whatever_its_clock() {
    let h = Harness::start(POLICY).await;
    let start = collector_testkit::now_ms();
    let my = h.enroll("gpu-my", "my-1", 1);
    let us = h.enroll("gpu-us", "us-va-1", 2);
    let mut stream = Stream::open(&h, &my, &my).await.unwrap();
    let t0 = enrolled_at(&h, &my);
    let first = link(&my, 1, ChainDigest::GENESIS, t0 + 1, devices("gpu-my"));
    assert_eq!(acked(&stream.send(&first).await), 1);
    let mut us_stream = Stream::open(&h, &us, &us).await.unwrap();
    let us_link = link(
        &us,
        1,
        ChainDigest::GENESIS,
        enrolled_at(&h, &us) + 1,
        devices("gpu-us"),
    );
    assert_eq!(acked(&us_stream.send(&us_link).await), 1);
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;

    let done = h.veuctl(&["decommission", "--yes", "gpu-my"]).await;
    assert_eq!(done.code, 0, "{done:?}");
    let decommissioned_at = h
        .collector
        .state()
        .ledger
        .host("gpu-my")
        .unwrap()
        .decommissioned_at_ms
        .unwrap();
    // The agent's clock one second behind the decommissioning, then far ahead of it: its
    // statements are kept as evidence, flagged, and never counted.
    let behind = link(
        &my,
        2,
        first.chain_digest(),
        decommissioned_at - 1_000,
        devices("gpu-my"),
    );
    assert_eq!(acked(&stream.send(&behind).await), 2);
    let ahead = link(
        &my,
        3,
        behind.chain_digest(),
        decommissioned_at + 200_000,
        devices("gpu-my"),
    );
    assert_eq!(acked(&stream.send(&ahead).await), 3);
    let flagged = h
        .store
        .events(0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "decommissioned_host_attesting")
        .count();
    assert_eq!(flagged, 1);
    let after = observe(&h, start - DAY, start + DAY).await;
    assert_eq!(after.countries, us_my(8 * H100, 0));
    assert_restart_keeps_the_books(&h);
    let after_restart = h.reopen(POLICY);
    assert_eq!(
        after_restart
            .state()
            .ledger
            .distribution()
            .of(CountryCode::parse("MY").unwrap()),
        0
    );
    h.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gpu_counts_once_in_every_view_whatever_its_spelling() {
    let h = Harness::start(POLICY).await;
    let start = collector_testkit::now_ms();
    let us = h.enroll("gpu-us", "us-va-1", 1);
    let my = h.enroll("gpu-my", "my-1", 2);
    let mut us_stream = Stream::open(&h, &us, &us).await.unwrap();
    let us_first = link(
        &us,
        1,
        ChainDigest::GENESIS,
        enrolled_at(&h, &us) + 1,
        devices("gpu-us"),
    );
    assert_eq!(acked(&us_stream.send(&us_first).await), 1);

    // The same GPU listed four times in one statement: refused with its reason.
    let mut stream = Stream::open(&h, &my, &my).await.unwrap();
    let t0 = enrolled_at(&h, &my);
    let mut repeated = devices("gpu-my");
    for index in 1..4 {
        repeated[index] = DeviceRecord {
            index: index as u32,
            ..repeated[0].clone()
        };
    }
    let four_times = link(&my, 1, ChainDigest::GENESIS, t0 + 1, repeated);
    assert_eq!(
        reject_reason(&stream.send(&four_times).await),
        v1::RejectReason::DuplicateGpu
    );

    // The US host's first GPU, upper-cased with stray spaces, on the Malaysian host.
    let mut claimed = devices("gpu-my");
    let stolen = &devices("gpu-us")[0];
    claimed[0].uuid = format!(" {} ", stolen.uuid.to_uppercase());
    claimed[0].serial = format!("{}  ", stolen.serial.to_lowercase());
    let first = link(&my, 1, ChainDigest::GENESIS, t0 + 2, claimed.clone());
    assert!(matches!(stream.send(&first).await, ToAgent::Ack(_)));
    // The conflict was stored with the attestation, not after it.
    let conflicts = h
        .store
        .events(0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "gpu_conflict")
        .count();
    assert_eq!(conflicts, 2, "one per identity: UUID and serial");
    let seen = observe(&h, start - DAY, start + DAY).await;
    assert_eq!(seen.countries, us_my(8 * H100, 7 * H100));
    assert_restart_keeps_the_books(&h);
    // The auditor's history shows what the agent stated and what counted.
    let history = h
        .veuctl(&["audit", "history", "gpu-my", "--format", "json"])
        .await
        .json();
    let stored = &history["attestations"][0];
    assert_eq!(
        (stored["tpp"].as_u64(), stored["counted_tpp"].as_u64()),
        (Some(8 * H100), Some(7 * H100)),
        "{history:#}"
    );

    // Reported again after a restart of the books: still counted once, and no new conflict.
    let second = link(&my, 2, first.chain_digest(), t0 + 3, claimed.clone());
    assert!(matches!(stream.send(&second).await, ToAgent::Ack(_)));
    let seen = observe(&h, start - DAY, start + DAY).await;
    assert_eq!(seen.countries, us_my(8 * H100, 7 * H100));

    // Its holder is decommissioned: the GPU is free, and counts for its new host.
    assert_eq!(h.veuctl(&["decommission", "--yes", "gpu-us"]).await.code, 0);
    let third = link(&my, 3, second.chain_digest(), t0 + 4, claimed);
    assert!(matches!(stream.send(&third).await, ToAgent::Ack(_)));
    let seen = observe(&h, start - DAY, start + DAY).await;
    assert_eq!(seen.countries, us_my(0, 8 * H100));
    assert_restart_keeps_the_books(&h);
    h.stop.cancel();
}

/// The collector's clock in `a_backdated_link_is_refused_and_a_closed_month_never_changes`.
static CLOCK: AtomicI64 = AtomicI64::new(0);

fn test_clock() -> i64 {
    CLOCK.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backdated_link_is_refused_and_a_closed_month_never_changes() {
    // 2026-10-10T00:00:00Z on the collector's clock.
    const OCT_10: i64 = 1_791_590_400_000;
    CLOCK.store(OCT_10, Ordering::Relaxed);
    let h = Harness::start_with_clock(POLICY, test_clock).await;
    let my = h.enroll("gpu-my", "my-1", 1);
    let us = h.enroll("gpu-us", "us-va-1", 2);
    let mut us_stream = Stream::open(&h, &us, &us).await.unwrap();
    let us_first = link(&us, 1, ChainDigest::GENESIS, OCT_10 + 1, devices("gpu-us"));
    assert_eq!(acked(&us_stream.send(&us_first).await), 1);
    let mut stream = Stream::open(&h, &my, &my).await.unwrap();
    let first = link(
        &my,
        1,
        ChainDigest::GENESIS,
        OCT_10 + 1_000,
        devices("gpu-my")[..1].to_vec(),
    );
    CLOCK.store(OCT_10 + 1_000, Ordering::Relaxed);
    assert_eq!(acked(&stream.send(&first).await), 1);

    // The next link issued twenty days before the first: refused.
    CLOCK.store(OCT_10 + 2_000, Ordering::Relaxed);
    let backdated = link(
        &my,
        2,
        first.chain_digest(),
        OCT_10 - 20 * DAY,
        devices("gpu-my"),
    );
    assert_eq!(
        reject_reason(&stream.send(&backdated).await),
        v1::RejectReason::Backdated
    );
    // And one issued before its key was enrolled.
    let early = link(&my, 2, first.chain_digest(), OCT_10 - 1, devices("gpu-my"));
    assert_eq!(
        reject_reason(&stream.send(&early).await),
        v1::RejectReason::Backdated
    );

    // November: October is closed. Its report, twice, with a late backlog replay between.
    CLOCK.store(OCT_10 + 26 * DAY, Ordering::Relaxed);
    h.log.sign().unwrap();
    let report = |dir: &str| {
        let out = h.dir.path().join(dir);
        let args = [
            "report".to_owned(),
            "--month".to_owned(),
            "2026-10".to_owned(),
            "--out".to_owned(),
            out.to_str().unwrap().to_owned(),
        ];
        (args, out)
    };
    let (args, first_out) = report("october-1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(h.veuctl(&args).await.code, 0);
    let before = std::fs::read(first_out.join("report.json")).unwrap();

    // Issued in October (after the first link), received in November: accepted as evidence,
    // and it changes the books from its receipt on, never in the closed month.
    let late = link(
        &my,
        2,
        first.chain_digest(),
        OCT_10 + 10 * DAY,
        devices("gpu-my"),
    );
    assert_eq!(acked(&stream.send(&late).await), 2);
    assert_eq!(
        h.collector
            .state()
            .ledger
            .distribution()
            .of(CountryCode::parse("MY").unwrap()),
        8 * H100
    );
    CLOCK.store(OCT_10 + 27 * DAY, Ordering::Relaxed);
    h.log.sign().unwrap();
    let (args, second_out) = report("october-2");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let again = h.veuctl(&args).await;
    assert_eq!(again.code, 0, "{again:?}");
    let after = std::fs::read(second_out.join("report.json")).unwrap();
    assert!(
        before == after,
        "October's report changed after the fact:\n{}\n---\n{}",
        String::from_utf8_lossy(&before),
        String::from_utf8_lossy(&after)
    );
    h.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_and_decommission_show_a_dry_run_and_need_confirmation() {
    let h = Harness::start(POLICY).await;
    let agent = h.enroll("gpu-c", "us-va-1", 3);
    let key = agent.signer.key_id().to_string();

    let dry = h.veuctl(&["agents", "revoke", "--dry-run", &key]).await;
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout.contains("dry run, nothing changed")
            && dry.stdout.contains("host gpu-c")
            && dry.stdout.contains("(now active)"),
        "{dry:?}"
    );
    let dry = h.veuctl(&["decommission", "--dry-run", "gpu-c"]).await;
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout.contains("would decommission gpu-c") && dry.stdout.contains("site us-va-1"),
        "{dry:?}"
    );
    // Standard input is a pipe here, not a terminal: without --yes nothing happens.
    for args in [
        &["agents", "revoke", key.as_str()][..],
        &["decommission", "gpu-c"],
    ] {
        let refused = h.veuctl(args).await;
        assert_eq!(refused.code, 2, "{args:?}: {refused:?}");
        assert!(refused.stderr.contains("--yes"), "{refused:?}");
    }
    let unknown = h
        .veuctl(&["decommission", "--dry-run", "no-such-host"])
        .await;
    assert_eq!(unknown.code, 1, "{unknown:?}");
    {
        let state = h.collector.state();
        let host = state.ledger.host("gpu-c").unwrap();
        assert!(host.decommissioned_at_ms.is_none());
    }
    let listed = h.veuctl(&["agents", "list"]).await;
    assert!(listed.stdout.contains("active"), "{listed:?}");

    // Re-binding the host to another key revokes this one: shown, and refused unconfirmed.
    let other = proto_seal::Ed25519Signer::from_seed(&[4; 32]).unwrap();
    let other_key = veu_daemon_kit::hex(other.public_key().as_bytes());
    let rebind = [
        "agents",
        "add",
        "--public-key",
        &other_key,
        "--host",
        "gpu-c",
        "--site",
        "us-va-1",
        "--rebind",
    ];
    let dry = h.veuctl(&[&rebind[..], &["--dry-run"]].concat()).await;
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout
            .contains(&format!("revoking its 1 active key ({key})")),
        "{dry:?}"
    );
    let refused = h.veuctl(&rebind).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--yes"), "{refused:?}");

    let revoked = h.veuctl(&["agents", "revoke", "--yes", &key]).await;
    assert_eq!(revoked.code, 0, "{revoked:?}");
    let dry = h.veuctl(&["agents", "revoke", "--dry-run", &key]).await;
    assert!(dry.stdout.contains("(now revoked since"), "{dry:?}");
    let done = h.veuctl(&["decommission", "--yes", "gpu-c"]).await;
    assert_eq!(done.code, 0, "{done:?}");
    h.stop.cancel();
}
