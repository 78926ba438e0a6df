//! Several collector replicas on one PostgreSQL database, as real processes behind a relay
//! (a load balancer): the database's connections cut twice and the local server restarted
//! during ingest, then the replica the agents stream to SIGKILLed and the relay sending them to
//! the other. Nothing acknowledged is lost
//! (every chain is stored gapless), the log keeps one unbroken sequence (the evidence verifies
//! offline), and the surviving replica takes over signing tree heads.
//!
//! Needs `VEU_TEST_POSTGRES_URL` (`.ci/run` sets it); without it the test says "not run", and
//! under `CI=true` it fails.

use std::process::Command;
use std::time::Duration;

use crate::support::{Agent, Collector, Relay, eventually, now_ms, ok};

fn database() -> Option<String> {
    match std::env::var("VEU_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "VEU_TEST_POSTGRES_URL is unset under CI=true: the PostgreSQL tests must run"
            );
            eprintln!("not run: VEU_TEST_POSTGRES_URL is unset");
            None
        }
    }
}

fn psql(url: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Restarts the local PostgreSQL cluster with `pg_ctlcluster` when the URL points at it and the
/// tool is here; `false` (and why, on stderr) otherwise.
fn restart_local_server(url: &str) -> bool {
    if !url.contains("@127.0.0.1:5432/") && !url.contains("@localhost:5432/") {
        eprintln!("not restarting {url}: not the local server");
        return false;
    }
    let Ok(versions) = std::fs::read_dir("/etc/postgresql") else {
        eprintln!("not restarting the server: no /etc/postgresql");
        return false;
    };
    let Some(version) = versions
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
    else {
        return false;
    };
    let restarted = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .is_ok_and(|s| s.success());
    if !restarted {
        eprintln!("not restarting the server: pg_ctlcluster failed or is missing");
    }
    restarted
}

fn gapless(sequences: &[u64]) -> bool {
    sequences
        .iter()
        .enumerate()
        .all(|(i, &s)| s == i as u64 + 1)
}

#[test]
#[cfg_attr(not(veu_postgres), ignore = "not run: VEU_TEST_POSTGRES_URL is unset")]
fn replicas_survive_a_database_cut_and_a_replica_kill_losing_nothing() {
    let Some(url) = database() else {
        return;
    };
    let schema = format!("veu_sys_{}_{}", std::process::id(), now_ms() % 1_000_000);
    psql(&url, &format!("CREATE SCHEMA {schema}"));
    let separator = if url.contains('?') { '&' } else { '?' };
    let store = format!("{url}{separator}options=-c%20search_path%3D{schema}");

    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a");
    std::fs::create_dir_all(&first).unwrap();
    let mut a = Collector::start_with_store(&first, Some(&store));
    let b = a.replica(&dir.path().join("b"));
    let relay = Relay::start(a.port);
    let hosts = ["us-01", "de-01", "my-01"];
    let fixtures = ["dgx-h100.json", "hgx-h200.json", "l40s-x4.json"];
    let sites = ["us-va-1", "de-fra-1", "my-jhb-1"];
    let _agents: Vec<Agent> = (0..3)
        .map(|i| Agent::start_via(&a, hosts[i], sites[i], fixtures[i], 300, relay.port))
        .collect();
    eventually(Duration::from_secs(30), "three links per host", || {
        hosts.iter().all(|h| a.history(h).len() >= 3)
    });

    // The database drops every connection of both replicas, twice: they stop acknowledging,
    // the agents keep their spools, and the replicas reconnect on their own.
    for _ in 0..2 {
        psql(
            &url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND backend_type = 'client backend'",
        );
        std::thread::sleep(Duration::from_millis(700));
    }
    // Then the server itself restarts, where this machine runs it (the local test server).
    if restart_local_server(&url) {
        eprintln!("restarted the PostgreSQL server during ingest");
    }
    let before: Vec<usize> = hosts.iter().map(|h| a.history(h).len()).collect();
    eventually(Duration::from_secs(40), "ingest after the cuts", || {
        hosts
            .iter()
            .zip(&before)
            .all(|(h, &n)| a.history(h).len() >= n + 3)
    });

    // The replica the agents stream to dies; the relay sends them to the other.
    a.kill();
    relay.switch(b.port);
    let before: Vec<usize> = hosts.iter().map(|h| b.history(h).len()).collect();
    eventually(
        Duration::from_secs(40),
        "the agents on the other replica",
        || {
            hosts
                .iter()
                .zip(&before)
                .all(|(h, &n)| b.history(h).len() >= n + 5)
        },
    );
    for host in hosts {
        let sequences = b.history(host);
        assert!(gapless(&sequences), "{host}: {sequences:?}");
    }
    // The survivor's live distribution holds every host, fresh, at its full compute.
    let status = ok(&b.veuctl(&["status", "--format", "json"]));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["hosts"], 3, "{status}");
    assert_eq!(
        status["stale_hosts"].as_array().unwrap().len(),
        0,
        "{status}"
    );
    assert_eq!(
        status["last_known"]["total_tpp"],
        8 * 15_840 + 8 * 15_840 + 4 * 5_872,
        "{status}"
    );
    // The survivor leads the log now: it signs a head over everything.
    let killed_at = now_ms();
    eventually(
        Duration::from_secs(10),
        "a head signed by the survivor",
        || {
            let head = ok(&b.veuctl(&["log", "head", "--format", "json"]));
            let head: serde_json::Value = serde_json::from_str(&head).unwrap();
            head["timestamp_unix_ms"].as_i64().unwrap_or(0) > killed_at
        },
    );
    let bundle = dir.path().join("bundle");
    b.export_month(&bundle);
    let (status, verified) = b.verify(&bundle, &[]);
    assert_eq!(status, 0, "{verified}");
    assert!(verified.contains("PASS"), "{verified}");
    drop(b);
    psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}
