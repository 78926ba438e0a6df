//! `veuctl audit` and `veuctl log` as processes against an in-process collector over mutual
//! TLS, with a development PKI, a real SQLite store and real signed attestations: past
//! distributions, hosts and history as an auditor sees them; tree heads, inclusion and
//! consistency checked against the pinned log key (and failing against any other); roles.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use collector_testkit::{Chain, Harness, now_ms};
use support::{Veuctl, countries, log_key, wrong_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_replays_past_distributions_and_reads_hosts_and_history() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let mut us = Chain::new(h.enroll("gpu-us", "us-va-1", 1));
    let mut my = Chain::new(h.enroll("gpu-my", "my-1", 2));
    h.attest(&mut us, 2).await;
    let before_my = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.attest(&mut my, 1).await;

    // Now: half the compute in a Tier-2 country breaks the 7 % rule.
    let now = h
        .veuctl(&["audit", "distribution", "--format", "json"])
        .await
        .json();
    assert_eq!(
        countries(&now),
        [("MY".to_owned(), 126_720), ("US".to_owned(), 126_720)]
    );
    assert_eq!(now["last_known"]["compliant"], false);
    assert_eq!(now["hosts"], 2);
    let check = h.veuctl(&["audit", "distribution", "--check"]).await;
    assert_eq!(check.code, 1, "{check:?}");
    assert!(check.stdout.contains("NOT COMPLIANT"), "{check:?}");
    assert!(check.stdout.contains("MY"), "{check:?}");
    // And what restores it: ⌈(100·126,720 − 7·253,440)/93⌉ = 117,182 TPP out of Malaysia, or
    // ⌈(100·126,720 − 7·253,440)/7⌉ = 1,556,846 TPP more in Tier 1, which at home also lifts
    // the Tier-1 share (it needs 3T − 4·T1 = 253,440).
    assert!(check.stdout.contains("Remediation"), "{check:?}");
    assert!(
        check.stdout.contains("remove from MY (Malaysia)"),
        "{check:?}"
    );
    let remedies: Vec<(String, String, u64)> = now["last_known"]["remediation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap().to_owned(),
                format!(
                    "{} {}",
                    r["action"].as_str().unwrap(),
                    r["place"].as_str().unwrap()
                ),
                r["tpp"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        remedies,
        [
            (
                "tier1_min_share".to_owned(),
                "add tier1".to_owned(),
                253_440
            ),
            (
                "tier2_country_max_share".to_owned(),
                "remove MY".to_owned(),
                117_182
            ),
            (
                "tier2_country_max_share".to_owned(),
                "add tier1".to_owned(),
                1_556_846
            ),
        ]
    );
    assert_eq!(
        now["last_known"]["remediation_all_at_once"][0]["tpp"],
        1_556_846
    );

    // Before the Malaysian host attested, only the US host counted, and every rule held:
    // asked in Unix milliseconds and in RFC 3339.
    let at = before_my.to_string();
    let then = h
        .veuctl(&["audit", "distribution", "--at", &at, "--format", "json"])
        .await
        .json();
    assert_eq!(countries(&then), [("US".to_owned(), 126_720)]);
    assert_eq!(then["last_known"]["compliant"], true);
    assert_eq!(then["as_of_unix_ms"], before_my);
    assert_eq!(then["hosts"], 1);
    let rfc3339 = collector_report::month::format_timestamp(before_my);
    let table = h
        .veuctl(&["audit", "distribution", "--at", &rfc3339, "--check"])
        .await;
    assert_eq!(table.code, 0, "{table:?}");
    assert!(table.stdout.contains("COMPLIANT: all"), "{table:?}");
    assert!(
        table.stdout.contains(&format!("as of {rfc3339}")),
        "{table:?}"
    );
    assert!(!table.stdout.contains("Malaysia"), "{table:?}");
    let bad = h
        .veuctl(&["audit", "distribution", "--at", "yesterday"])
        .await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("RFC 3339"), "{bad:?}");

    // Hosts: both, with their last sequence; the admin may ask too.
    let hosts = h.veuctl(&["audit", "hosts"]).await;
    assert_eq!(hosts.code, 0, "{hosts:?}");
    for line in [
        "gpu-us",
        "gpu-my",
        "us-va-1",
        "my-1",
        "126,720",
        "2 host(s)",
    ] {
        assert!(hosts.stdout.contains(line), "{line}: {hosts:?}");
    }
    let hosts = h
        .veuctl(&["audit", "hosts", "--role", "admin", "--format", "json"])
        .await
        .json();
    let sequences: Vec<(&str, u64, bool)> = hosts
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host_id"].as_str().unwrap(),
                h["last_sequence"].as_u64().unwrap(),
                h["stale"].as_bool().unwrap(),
            )
        })
        .collect();
    let mut sorted = sequences.clone();
    sorted.sort();
    assert_eq!(sorted, [("gpu-my", 1, false), ("gpu-us", 2, false)]);

    // History: the US host's two attestations, after the two enrolments in the log.
    let history = h
        .veuctl(&["audit", "history", "gpu-us", "--format", "json"])
        .await
        .json();
    let rows = history["attestations"].as_array().unwrap();
    let seen: Vec<(u64, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["log_index"].as_u64().unwrap(),
                r["sequence"].as_u64().unwrap(),
                r["tpp"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [(2, 1, 126_720), (3, 2, 126_720)]);
    assert_eq!(rows[0]["source"], "simulated");
    let table = h.veuctl(&["audit", "history", "gpu-us"]).await;
    assert_eq!(table.code, 0, "{table:?}");
    assert!(
        table.stdout.contains("2 attestation(s) of gpu-us"),
        "{table:?}"
    );
    // --from is inclusive: from the second one's receipt, only it.
    let second = rows[1]["received_unix_ms"].as_i64().unwrap().to_string();
    let later = h
        .veuctl(&[
            "audit", "history", "gpu-us", "--from", &second, "--format", "json",
        ])
        .await
        .json();
    assert_eq!(later["attestations"].as_array().unwrap().len(), 1);
    assert_eq!(later["attestations"][0]["sequence"], 2);
    let nobody = h.veuctl(&["audit", "history", "gpu-nobody"]).await;
    assert_eq!(nobody.code, 1, "{nobody:?}");
    assert!(nobody.stderr.contains("not found"), "{nobody:?}");
    h.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_proves_every_entry_and_growth_against_the_pinned_key_only() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let mut agent = Chain::new(h.enroll("gpu-1", "us-va-1", 1));
    h.attest(&mut agent, 3).await;
    let key = log_key();
    let wrong = wrong_key();

    // One enrolment and three attestations, signed now.
    let head = h
        .veuctl(&[
            "log",
            "head",
            "--sign-now",
            "--log-key",
            &key,
            "--format",
            "json",
        ])
        .await
        .json();
    assert_eq!(head["result"], "PASS");
    assert_eq!(head["tree_size"], 4);
    assert_eq!(head["verified"], true);
    assert_eq!(head["log_public_key"], key.as_str());
    // The key from a file (as log.pub holds it) and from standard input.
    let key_file = h.dir.path().join("log.pub");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let table = h
        .veuctl(&["log", "head", "--log-key", key_file.to_str().unwrap()])
        .await;
    assert_eq!(table.code, 0, "{table:?}");
    assert!(
        table
            .stdout
            .contains("PASS: the pinned log key signed this head"),
        "{table:?}"
    );
    let piped = h
        .veuctl_with(
            &["log", "head", "--size", "4", "--log-key", "-"],
            Some(key.clone()),
        )
        .await;
    assert_eq!(piped.code, 0, "{piped:?}");
    // Without a pinned key: shown, with a warning.
    let unpinned = h.veuctl(&["log", "head"]).await;
    assert_eq!(unpinned.code, 0, "{unpinned:?}");
    assert!(
        unpinned
            .stderr
            .contains("not verified against a pinned key")
    );
    assert!(unpinned.stdout.contains("UNVERIFIED"), "{unpinned:?}");
    // With the wrong key: FAIL.
    let forged = h.veuctl(&["log", "head", "--log-key", &wrong]).await;
    assert_eq!(forged.code, 1, "{forged:?}");
    assert!(forged.stdout.contains("FAIL"), "{forged:?}");

    // Every leaf is in the signed log; the enrolment first.
    for index in 0..4u64 {
        let index = index.to_string();
        let proof = h
            .veuctl(&["log", "inclusion", &index, "--log-key", &key])
            .await;
        assert_eq!(proof.code, 0, "{proof:?}");
        assert!(proof.stdout.contains("PASS: leaf"), "{proof:?}");
        let expected = if index == "0" {
            "enrolled".to_owned()
        } else {
            format!("attestation of gpu-1 sequence {index}")
        };
        assert!(proof.stdout.contains(&expected), "{proof:?}");
    }
    let json = h
        .veuctl(&[
            "log",
            "inclusion",
            "2",
            "--log-key",
            &key,
            "--format",
            "json",
        ])
        .await
        .json();
    assert_eq!(json["result"], "PASS");
    assert_eq!(json["leaf"]["kind"], "attestation");
    assert_eq!(json["leaf"]["sequence"], 2);
    // The wrong key fails every proof, with the reason.
    let forged = h
        .veuctl(&["log", "inclusion", "1", "--log-key", &wrong])
        .await;
    assert_eq!(forged.code, 1, "{forged:?}");
    assert!(forged.stdout.contains("FAIL"), "{forged:?}");
    assert!(
        forged
            .stdout
            .contains("the signature does not verify with the pinned log key"),
        "{forged:?}"
    );
    let past = h
        .veuctl(&["log", "inclusion", "4", "--log-key", &key])
        .await;
    assert_eq!(past.code, 1, "{past:?}");
    assert!(
        past.stdout.contains("is not in the tree of 4 leaves"),
        "{past:?}"
    );

    // The log grows; the old head's leaves stay, and still prove in the old head.
    h.attest(&mut agent, 2).await;
    let newer = h
        .veuctl(&[
            "log",
            "head",
            "--sign-now",
            "--log-key",
            &key,
            "--format",
            "json",
        ])
        .await
        .json();
    assert_eq!(newer["tree_size"], 6);
    let consistency = h
        .veuctl(&["log", "consistency", "4", "--log-key", &key])
        .await;
    assert_eq!(consistency.code, 0, "{consistency:?}");
    assert!(
        consistency
            .stdout
            .contains("PASS: the log of 6 leaves extends the log of 4 leaves"),
        "{consistency:?}"
    );
    let json = h
        .veuctl(&[
            "log",
            "consistency",
            "4",
            "6",
            "--log-key",
            &key,
            "--format",
            "json",
        ])
        .await
        .json();
    assert_eq!(json["result"], "PASS");
    assert_eq!(
        (
            json["old"]["tree_size"].as_u64(),
            json["new"]["tree_size"].as_u64()
        ),
        (Some(4), Some(6))
    );
    let older = h
        .veuctl(&["log", "inclusion", "3", "--size", "4", "--log-key", &key])
        .await;
    assert_eq!(older.code, 0, "{older:?}");
    let forged = h
        .veuctl(&["log", "consistency", "4", "--log-key", &wrong])
        .await;
    assert_eq!(forged.code, 1, "{forged:?}");
    assert!(
        forged
            .stdout
            .contains("the old head: the signature does not verify")
    );
    // A size no head was signed at is refused by the collector.
    let unsigned = h
        .veuctl(&["log", "consistency", "5", "--log-key", &key])
        .await;
    assert_eq!(unsigned.code, 1, "{unsigned:?}");
    assert!(unsigned.stderr.contains("out of range"), "{unsigned:?}");
    h.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_certificate_may_not_audit() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    let agent = h.enroll("gpu-1", "us-va-1", 1);
    let cert = h.dir.path().join("agent.pem");
    let key = h.dir.path().join("agent.key");
    std::fs::write(&cert, &agent.cert).unwrap();
    std::fs::write(&key, &agent.key).unwrap();
    let as_agent = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let log_key = log_key();
    for command in [
        &["audit", "hosts"][..],
        &["audit", "distribution"],
        &["log", "head", "--sign-now", "--log-key", &log_key],
    ] {
        let run = h.veuctl(&[command, &as_agent].concat()).await;
        assert_ne!(run.code, 0, "{command:?}: {run:?}");
        assert!(
            run.stderr.contains("permission denied"),
            "{command:?}: {run:?}"
        );
    }
    // The same collector answers the auditor.
    let run = h.veuctl(&["audit", "hosts"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    h.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_the_certificate_does_not_carry_suggests_server_name() {
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    // The harness's certificate carries 127.0.0.1 only, as a collector certified for its DNS
    // name carries no IP address.
    let run = h
        .veuctl(&["status", "--server-name", "collector.example.com"])
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("does not carry the name \"collector.example.com\"")
            && run.stderr.contains("give --server-name NAME"),
        "{run:?}"
    );
    h.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_from_stored_records_is_printed_escaped() {
    use collector_store::{AgentRecord, AttestationStore as _, Batch, Rejection};
    let h = Harness::start("uveu-2025-us-simulated.toml").await;
    // Records as an older collector, or someone with the database, may have left them.
    let host = "gpu\u{1b}]0;pwned\u{7}-1";
    h.collector
        .enrol(
            &AgentRecord {
                key_id: proto_evidence::KeyId(proto_evidence::Sha256::from_bytes([7; 32])),
                public_key: *proto_seal::Ed25519Signer::from_seed(&[7; 32])
                    .unwrap()
                    .public_key()
                    .as_bytes(),
                host_id: proto_evidence::HostId(host.to_owned()),
                site_id: proto_evidence::SiteId("us-va-1".to_owned()),
                country: "US".to_owned(),
                identity: "urn:veu:agent:gpu-1".to_owned(),
                enrolled_at_ms: h.collector.now_ms(),
                revoked_at_ms: None,
            },
            false,
        )
        .unwrap();
    h.store
        .commit(Batch {
            rejections: vec![Rejection {
                at_ms: now_ms(),
                reason: "malformed\u{1b}[2J".to_owned(),
                key_id: None,
                host_id: Some(proto_evidence::HostId(host.to_owned())),
                sequence: Some(1),
                peer: "urn:veu:agent:\u{9b}31m".to_owned(),
                detail: "bad \u{202e}gnp.exe \u{1b}[1A".to_owned(),
                count: 1,
            }],
            ..Batch::default()
        })
        .await
        .unwrap();
    let hosts = h.veuctl(&["audit", "hosts"]).await;
    let status = h.veuctl(&["status"]).await;
    for run in [&hosts, &status] {
        assert!(
            !run.stdout
                .contains(['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}']),
            "{run:?}"
        );
    }
    assert!(
        hosts.stdout.contains("gpu\\u{1b}]0;pwned\\u{7}-1"),
        "{hosts:?}"
    );
    assert!(
        status.stdout.contains(
            "malformed\\u{1b}[2J seq 1 from urn:veu:agent:\\u{9b}31m: bad \\u{202e}gnp.exe \\u{1b}[1A"
        ),
        "{status:?}"
    );
    // JSON carries the exact text, escaped by JSON's own rules.
    let json = h.veuctl(&["audit", "hosts", "--format", "json"]).await;
    assert!(!json.stdout.contains('\u{1b}'), "{json:?}");
    assert!(
        json.stdout.contains("gpu\\u001b]0;pwned\\u0007-1"),
        "{json:?}"
    );
    h.stop.cancel();
}
