//! Certificate renewal with the real binaries: an enrolled agent runs `veu-agent renew`
//! against the collector, gets a new certificate for the same key and host, and after a
//! restart its chain goes on with it.

use std::process::Command;
use std::time::Duration;

use crate::support::{Agent, Collector, binary, eventually, ok};

#[test]
fn an_agent_renews_its_certificate_and_goes_on_attesting_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(dir.path());
    let mut agent = Agent::start(&collector, "us-01", "us-va-1", "dgx-h100.json", 300);
    eventually(Duration::from_secs(30), "two attestations", || {
        collector.history("us-01").len() >= 2
    });
    agent.kill();
    let certificate = agent.dir().join("tls/agent.pem");
    let before = std::fs::read_to_string(&certificate).unwrap();
    let key_before = std::fs::read_to_string(agent.dir().join("tls/agent.key")).unwrap();
    let printed = ok(&Command::new(binary("veu-agent"))
        .args(["renew", "--config", "agent.toml"])
        .current_dir(agent.dir())
        .output()
        .unwrap());
    assert!(printed.contains("renewed: "), "{printed}");
    let after = std::fs::read_to_string(&certificate).unwrap();
    assert_ne!(before, after, "the certificate was not replaced");
    assert_eq!(
        std::fs::read_to_string(agent.dir().join("tls/agent.key")).unwrap(),
        key_before,
        "renewal keeps the TLS key"
    );

    let count = collector.history("us-01").len();
    agent.restart();
    eventually(
        Duration::from_secs(30),
        "attestations with the renewed certificate",
        || collector.history("us-01").len() >= count + 2,
    );
    let sequences = collector.history("us-01");
    assert!(
        sequences
            .iter()
            .enumerate()
            .all(|(i, &s)| s == i as u64 + 1),
        "{sequences:?}"
    );
}
