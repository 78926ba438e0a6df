//! Faults with real processes: a collector SIGKILLed mid-stream and down for a while, an agent
//! SIGKILLed and restarted. Afterwards every host's chain is stored gapless from its first
//! attestation (an acknowledged attestation is never resent, so a lost one would leave a hole),
//! the agents are all back, and the exported evidence verifies offline.

use std::time::Duration;

use crate::support::{Agent, Collector, eventually, ok};

fn gapless(sequences: &[u64]) -> bool {
    sequences
        .iter()
        .enumerate()
        .all(|(i, &s)| s == i as u64 + 1)
}

#[test]
fn collector_and_agent_kills_lose_nothing_and_chains_continue() {
    let dir = tempfile::tempdir().unwrap();
    let mut collector = Collector::start(dir.path());
    let mut agents = vec![
        Agent::start(&collector, "us-01", "us-va-1", "dgx-h100.json", 300),
        Agent::start(&collector, "de-01", "de-fra-1", "hgx-h200.json", 300),
        Agent::start(&collector, "my-01", "my-jhb-1", "l40s-x4.json", 300),
    ];
    let hosts: Vec<String> = agents.iter().map(|a| a.host.clone()).collect();
    eventually(
        Duration::from_secs(30),
        "three attestations per host",
        || hosts.iter().all(|h| collector.history(h).len() >= 3),
    );

    // The collector dies mid-stream and stays down while the agents keep attesting (into
    // their spools).
    collector.kill();
    std::thread::sleep(Duration::from_millis(1_500));
    collector.restart();
    let before: Vec<usize> = hosts.iter().map(|h| collector.history(h).len()).collect();

    // An agent dies without warning and comes back.
    agents[0].kill();
    std::thread::sleep(Duration::from_millis(500));
    agents[0].restart();

    eventually(
        Duration::from_secs(40),
        "every host attesting again",
        || {
            hosts
                .iter()
                .zip(&before)
                .all(|(h, &n)| collector.history(h).len() >= n + 5)
        },
    );
    for (host, agent) in hosts.iter().zip(&agents) {
        let sequences = collector.history(host);
        assert!(
            gapless(&sequences),
            "{host}: stored sequences have a hole or a repeat: {sequences:?}\n{}",
            agent.log()
        );
    }
    // Gapless across the outage: the spools replayed, in order, what was signed while the
    // collector was down. Every host is back and fresh.
    let status = ok(&collector.veuctl(&["status", "--format", "json"]));
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["hosts"], 3);
    assert_eq!(status["stale_hosts"].as_array().unwrap().len(), 0);

    // Chains intact end to end: the evidence verifies offline.
    let bundle = dir.path().join("bundle");
    collector.export_month(&bundle);
    let (status, verified) = collector.verify(&bundle, &[]);
    assert_eq!(status, 0, "{verified}");
    assert!(verified.contains("PASS"), "{verified}");
}
