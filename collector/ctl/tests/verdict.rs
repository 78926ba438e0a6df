//! No compute and no evidence are never compliant, and a report speaks only of time that has
//! passed: veuctl as a process against an in-process collector on a clock the test sets, with
//! real signed attestations over mutual TLS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicI64, Ordering};

use collector_pki::Role;
use collector_testkit::{Agent, Harness, Stream, acked, devices, reject_reason, statement};
use proto_evidence::{ChainDigest, DeviceRecord, Envelope};
use proto_wire::v1;
use proto_wire::v1::admin_client::AdminClient;
use serde_json::Value;
use support::Veuctl;

const DAY: i64 = 86_400_000;
/// 2026-11-10T12:00:00Z.
const NOV_10_NOON: i64 = 1_793_491_200_000 + 9 * DAY + DAY / 2;

/// `agent`'s first link, issued at `issued`, listing `devices`.
fn first_link(agent: &Agent, issued: i64, devices: Vec<DeviceRecord>) -> Envelope {
    let payload = statement(
        &agent.signer,
        &agent.host,
        &agent.site,
        1,
        ChainDigest::GENESIS,
        issued,
        &[],
        devices,
    );
    proto_seal::seal(&payload, &agent.signer).unwrap()
}

/// `veuctl report --month MONTH` into a fresh directory: the run and report.json.
async fn report(h: &Harness, month: &str, dir: &str) -> (support::Run, Option<Value>) {
    let out = h.dir.path().join(dir);
    let run = h
        .veuctl(&["report", "--month", month, "--out", out.to_str().unwrap()])
        .await;
    let json = std::fs::read(out.join("report.json"))
        .ok()
        .map(|bytes| serde_json::from_slice(&bytes).unwrap());
    (run, json)
}

/// The last-known view's verdict as the admin API, `veuctl status` and `veuctl audit
/// distribution` give it, and the exit statuses of their `--check`.
async fn verdicts(h: &Harness) -> (String, Value, i32, i32) {
    let mut admin = AdminClient::new(h.channel_as(Role::Admin, "ops").await);
    let status = admin
        .status(v1::StatusRequest {
            recent_rejections: 10,
        })
        .await
        .unwrap()
        .into_inner();
    let view = status.last_known.unwrap();
    assert_eq!(view.compliant, view.verdict == "compliant");
    let json = h.veuctl(&["status", "--format", "json"]).await.json();
    let status_check = h.veuctl(&["status", "--check"]).await;
    let audit_check = h.veuctl(&["audit", "distribution", "--check"]).await;
    (view.verdict, json, status_check.code, audit_check.code)
}

static CLOCK_ZERO: AtomicI64 = AtomicI64::new(0);

fn clock_zero() -> i64 {
    CLOCK_ZERO.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_that_count_nothing_are_no_compute_everywhere() {
    CLOCK_ZERO.store(NOV_10_NOON, Ordering::Relaxed);
    let h = Harness::start_with_clock("uveu-2025-us-simulated.toml", clock_zero).await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let mut stream = Stream::open(&h, &agent, &agent).await.unwrap();
    // Accepted evidence of a host with no device: nothing counted.
    let link = first_link(&agent, NOV_10_NOON, Vec::new());
    assert_eq!(acked(&stream.send(&link).await), 1);

    let (admin, status, status_check, audit_check) = verdicts(&h).await;
    assert_eq!(admin, "no_compute");
    assert_eq!(status["last_known"]["verdict"], "no_compute");
    assert_eq!(status["last_known"]["compliant"], false);
    assert_eq!(status["last_known"]["violations"], serde_json::json!([]));
    assert_eq!(status["verified"]["verdict"], "no_compute");
    assert_eq!(status["hosts"], 1);
    assert_eq!((status_check, audit_check), (1, 1));
    let table = h.veuctl(&["status"]).await;
    assert_eq!(table.code, 0, "{table:?}");
    assert!(table.stdout.contains("Verdict   NO COMPUTE"), "{table:?}");
    assert!(!table.stdout.contains("COMPLIANT: all"), "{table:?}");
    let metrics = h.collector.metrics.render();
    for line in [
        "veu_collector_compliant{view=\"last_known\"} 0",
        "veu_collector_verdict{view=\"last_known\",verdict=\"no_compute\"} 1",
        "veu_collector_verdict{view=\"last_known\",verdict=\"compliant\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }

    // The month so far: no evidence until noon on the 10th, no compute since.
    CLOCK_ZERO.store(NOV_10_NOON + 3_600_000, Ordering::Relaxed);
    let (run, json) = report(&h, "2026-11", "november").await;
    assert_eq!(run.code, 0, "{run:?}");
    let json = json.unwrap();
    assert_eq!(json["verdict"]["state"], "no_compute");
    assert_eq!(json["verdict"]["at_end"], "no_compute");
    assert_eq!(json["partial"], true);
    assert!(
        run.stdout.starts_with("No compute in 2026-11 up to"),
        "{run:?}"
    );

    // One counted GPU makes it compliant from then on; the month still reads no compute.
    let second = statement(
        &agent.signer,
        "gpu-1",
        "us-va-1",
        2,
        link.chain_digest(),
        NOV_10_NOON + 3_600_000,
        &[],
        devices("gpu-1")[..1].to_vec(),
    );
    let second = proto_seal::seal(&second, &agent.signer).unwrap();
    assert_eq!(acked(&stream.send(&second).await), 2);
    let (admin, _, status_check, audit_check) = verdicts(&h).await;
    assert_eq!(
        (admin.as_str(), status_check, audit_check),
        ("compliant", 0, 0)
    );
    CLOCK_ZERO.store(NOV_10_NOON + 7_200_000, Ordering::Relaxed);
    let (_, json) = report(&h, "2026-11", "november-2").await;
    let json = json.unwrap();
    assert_eq!(json["verdict"]["state"], "no_compute");
    assert_eq!(json["verdict"]["at_end"], "compliant");
    h.stop.cancel();
}

static CLOCK_REFUSED: AtomicI64 = AtomicI64::new(0);

fn clock_refused() -> i64 {
    CLOCK_REFUSED.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_whose_every_attestation_is_refused_is_no_compute_and_no_evidence() {
    CLOCK_REFUSED.store(NOV_10_NOON, Ordering::Relaxed);
    // The production policy refuses simulated evidence: every attestation here.
    let h = Harness::start_with_clock("uveu-2025-us.toml", clock_refused).await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let mut stream = Stream::open(&h, &agent, &agent).await.unwrap();
    let link = first_link(&agent, NOV_10_NOON, devices("gpu-1"));
    assert_eq!(
        reject_reason(&stream.send(&link).await),
        v1::RejectReason::SimulatedEvidence
    );

    let (admin, status, status_check, audit_check) = verdicts(&h).await;
    assert_eq!(admin, "no_compute");
    assert_eq!(status["last_known"]["verdict"], "no_compute");
    assert_eq!(status["last_known"]["total_tpp"], 0);
    assert_eq!((status_check, audit_check), (1, 1));

    // Nothing was accepted, so the month so far holds no evidence at all.
    CLOCK_REFUSED.store(NOV_10_NOON + 1, Ordering::Relaxed);
    let (run, json) = report(&h, "2026-11", "november").await;
    assert_eq!(run.code, 0, "{run:?}");
    let json = json.unwrap();
    assert_eq!(json["verdict"]["state"], "no_evidence");
    assert_eq!(json["verdict"]["evidence_from_ms"], Value::Null);
    assert_eq!(json["rejections"][0]["reason"], "simulated_evidence");
    h.stop.cancel();
}

static CLOCK_MONTHS: AtomicI64 = AtomicI64::new(0);

fn clock_months() -> i64 {
    CLOCK_MONTHS.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_exist_only_for_time_that_has_passed() {
    CLOCK_MONTHS.store(NOV_10_NOON, Ordering::Relaxed);
    let h = Harness::start_with_clock("uveu-2025-us-simulated.toml", clock_months).await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let mut stream = Stream::open(&h, &agent, &agent).await.unwrap();
    let link = first_link(&agent, NOV_10_NOON, devices("gpu-1"));
    assert_eq!(acked(&stream.send(&link).await), 1);
    let as_of = NOV_10_NOON + 30 * 60_000;
    CLOCK_MONTHS.store(as_of, Ordering::Relaxed);

    // December and 2030 have not started: refused, with the month and today's date.
    for month in ["2026-12", "2030-01"] {
        let (run, json) = report(&h, month, month).await;
        assert_ne!(run.code, 0, "{run:?}");
        assert!(json.is_none(), "nothing written for {month}");
        assert!(run.stderr.contains("failed precondition"), "{run:?}");
        assert!(
            run.stderr
                .contains(&format!("the month {month} has not started")),
            "{run:?}"
        );
        assert!(run.stderr.contains("today is 2026-11-10"), "{run:?}");
    }

    // November so far: partial as of now, ten rows, the last one cut at the as-of instant.
    let (run, json) = report(&h, "2026-11", "november").await;
    assert_eq!(run.code, 0, "{run:?}");
    let json = json.unwrap();
    assert_eq!(json["partial"], true);
    assert_eq!(json["as_of_ms"], as_of);
    let daily = json["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 10);
    assert_eq!(daily[9]["date"], "2026-11-10");
    assert_eq!(daily[9]["partial"], true);
    assert!(
        daily[..9]
            .iter()
            .all(|d| d["partial"] == false && d["state"] == "no_evidence")
    );
    assert_eq!(json["verdict"]["state"], "compliant");
    assert!(json["verdict"]["evidence_from_ms"].as_i64().unwrap() >= NOV_10_NOON);
    assert!(json["log"]["end"]["timestamp_ms"].as_i64().unwrap() >= as_of);
    assert!(
        run.stdout.starts_with("Compliant from 2026-11-10T12:00:00"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("(partial: the month is not over)"),
        "{run:?}"
    );
    let html = std::fs::read_to_string(h.dir.path().join("november/report.html")).unwrap();
    assert!(html.contains("PARTIAL: 2026-11 is not over"));
    assert!(!html.contains("2026-11-11"));

    // October, before any evidence: over, no evidence, never compliant, and the same bytes
    // when asked again.
    let (run, json) = report(&h, "2026-10", "october-1").await;
    assert_eq!(run.code, 0, "{run:?}");
    let json = json.unwrap();
    assert_eq!(json["partial"], false);
    assert_eq!(json["verdict"]["state"], "no_evidence");
    assert_eq!(json["daily"].as_array().unwrap().len(), 31);
    assert!(
        run.stdout.starts_with("No evidence for 2026-10:"),
        "{run:?}"
    );
    CLOCK_MONTHS.store(as_of + DAY, Ordering::Relaxed);
    let (_, again) = report(&h, "2026-10", "october-2").await;
    assert_eq!(
        std::fs::read(h.dir.path().join("october-1/report.json")).unwrap(),
        std::fs::read(h.dir.path().join("october-2/report.json")).unwrap(),
        "{again:?}"
    );
    h.stop.cancel();
}
