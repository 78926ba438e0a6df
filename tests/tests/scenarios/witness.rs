//! Witnesses end to end: a collector process submits every checkpoint to a `veu-witness`
//! process run by someone else; an auditor who pins the witness's key accepts the history the
//! witness cosigned, and a second history the operator signs with the same log key is refused
//! by the witness and fails the auditor's verification.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use collector_bundle::{Bundle, Consistency, Head, to_hex};
use proto_evidence::{LogEntry, TreeHead};
use proto_merkle::{MemoryTree, leaf_hash};

use veu_fleet::Process;
use veu_fleet::witness::{self, WitnessConfig};

use crate::support::{Collector, binaries, daemon, free_port};

const ORIGIN: &str = "veu-attest.test/log";

/// A witness process, killed when dropped.
struct Witness {
    _process: Process,
    port: u16,
}

impl Witness {
    fn start(dir: &Path, port: u16, log_public_key: &str) -> Self {
        let config = WitnessConfig {
            port,
            name: "witness.test".to_owned(),
            key_file: PathBuf::from("witness.key"),
            origin: ORIGIN.to_owned(),
            log_key: log_public_key.to_owned(),
        }
        .write(dir)
        .unwrap();
        let process = daemon("veu-witness", &config, &dir.join("witness.log"), port);
        Self {
            _process: process,
            port,
        }
    }
}

#[test]
fn a_witness_cosigns_one_history_and_a_split_view_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let witness_dir = dir.path().join("witness");
    std::fs::create_dir_all(&witness_dir).unwrap();
    let witness_key =
        witness::keygen(binaries(), "witness.test", &witness_dir.join("witness.key")).unwrap();
    assert!(witness_key.starts_with("witness.test+"), "{witness_key}");

    let witness_port = free_port();
    let metrics_port = free_port();
    let collector_dir = dir.path().join("collector");
    std::fs::create_dir_all(&collector_dir).unwrap();
    let collector = Collector::start_with(
        &collector_dir,
        None,
        &format!(
            "origin = \"{ORIGIN}\"\n[[audit.witnesses]]\nurl = \"http://127.0.0.1:{witness_port}\"\nkey = \"{witness_key}\"\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"
        ),
    );
    let log_pub = std::fs::read_to_string(collector.log_pub()).unwrap();
    let witness = Witness::start(&witness_dir, witness_port, log_pub.trim());
    collector.loadgen(3, "us-va-1,us-va-1,my-jhb-1", 2);

    // The collector submits each new head within a second; the auditor exports until the
    // end head is cosigned.
    let bundle = dir.path().join("bundle");
    let deadline = Instant::now() + Duration::from_secs(60);
    let stdout = loop {
        collector.export_month(&bundle);
        let (status, stdout) = collector.verify(&bundle, &["--witness-key", &witness_key]);
        if status == 0 {
            break stdout;
        }
        assert!(
            Instant::now() < deadline,
            "no cosigned end head: {stdout}\n{}",
            std::fs::read_to_string(collector_dir.join("collector.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        stdout.contains(&format!("Witnessed {ORIGIN}: witness.test at")),
        "{stdout}"
    );

    // Anyone who reaches the collector's metrics port reads the latest checkpoint, with the
    // witness's cosignature, as plain C2SP text.
    // The collector publishes a checkpoint once its witnesses answered for it, so the one just
    // verified in the bundle may still be on its way: wait for a non-empty one.
    let deadline = Instant::now() + Duration::from_secs(30);
    let published = loop {
        let published = http_get(metrics_port, "/checkpoint");
        assert!(
            published.starts_with(&format!("{ORIGIN}\n"))
                && published.contains("\n\u{2014} witness.test ")
                && published.contains(&format!("\u{2014} {ORIGIN} ")),
            "{published}"
        );
        let checkpoint = proto_note::Checkpoint::parse(
            proto_note::SignedNote::parse(published.as_bytes())
                .unwrap()
                .text(),
        )
        .unwrap();
        if checkpoint.size() > 0 {
            break published;
        }
        assert!(
            Instant::now() < deadline,
            "the published checkpoint stayed empty: {published}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let kept = dir.path().join("checkpoint.txt");
    std::fs::write(&kept, &published).unwrap();
    let (status, stdout) = collector.verify(&bundle, &["--known-head", kept.to_str().unwrap()]);
    assert_eq!(status, 0, "{stdout}");

    // Its metrics show the witness keeping up: it cosigned the checkpoint the log is at.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = http_get(metrics_port, "/metrics");
        let value = |series: &str| {
            metrics
                .lines()
                .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
                .and_then(|value| value.parse::<u64>().ok())
        };
        let log_size = value("veu_collector_log_tree_size");
        let cosigned = value("veu_collector_witness_cosigned_tree_size{witness=\"witness.test\"}");
        let submissions = value(
            "veu_collector_witness_submissions_total{witness=\"witness.test\",outcome=\"cosigned\"}",
        );
        if log_size.is_some_and(|size| size > 0)
            && cosigned == log_size
            && submissions.is_some_and(|count| count >= 1)
        {
            assert!(
                metrics.contains(
                    "veu_collector_witness_last_cosignature_timestamp_seconds{witness=\"witness.test\"} "
                ),
                "{metrics}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the witness's metrics never caught up with the log:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The operator, holding the log key, signs a second tree of the same size: the last
    // leaf replaced by the Malaysian host's decommissioning, hiding its Tier-2 compute.
    let genuine = Bundle::read(&bundle).unwrap();
    let log_key = std::fs::read(collector_dir.join("state/log.key")).unwrap();
    let forged = split_view(&genuine, &log_key);
    let forged_dir = dir.path().join("forged");
    forged.bundle.write(&forged_dir).unwrap();

    // With only the log key pinned, the forged history is a valid log.
    let (status, stdout) = collector.verify(&forged_dir, &[]);
    assert_eq!(status, 0, "{stdout}");

    // The witness refuses to cosign it: it has cosigned the genuine tree of that size.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let refused = runtime.block_on(veu_witness::add_checkpoint(
        &format!("http://127.0.0.1:{}", witness.port),
        forged.size,
        &[],
        &forged.checkpoint,
        Duration::from_secs(10),
    ));
    assert!(refused.is_err(), "the witness cosigned a split view");

    // The auditor who pins the witness fails it, and so does one who kept the checkpoint
    // the collector published earlier.
    let (status, stdout) = collector.verify(&forged_dir, &["--witness-key", &witness_key]);
    assert_eq!(status, 1, "{stdout}");
    assert!(stdout.contains("witness_cosignatures"), "{stdout}");
    let (status, stdout) = collector.verify(&forged_dir, &["--known-head", kept.to_str().unwrap()]);
    assert_eq!(status, 1, "{stdout}");
    assert!(
        stdout.contains("known_head_inconsistent") || stdout.contains("known_head_not_covered"),
        "{stdout}"
    );
    // And the witness still holds the genuine tree: the genuine bundle still passes.
    let (status, stdout) = collector.verify(&bundle, &["--witness-key", &witness_key]);
    assert_eq!(status, 0, "{stdout}");
}

struct Forged {
    bundle: Bundle,
    size: u64,
    checkpoint: String,
}

/// The genuine bundle with its last leaf replaced by a decommissioning of the Malaysian host,
/// every head, proof and the checkpoint signed again with the log key.
fn split_view(genuine: &Bundle, pkcs8: &[u8]) -> Forged {
    let log_key = proto_seal::Ed25519Signer::from_pkcs8(pkcs8).unwrap();
    let mut bundle = genuine.clone();
    let entries: Vec<LogEntry> = bundle
        .leaves
        .iter()
        .map(|l| LogEntry::decode(&collector_bundle::from_hex(&l.entry).unwrap()).unwrap())
        .collect();
    let malaysian = entries
        .iter()
        .find_map(|e| match e {
            LogEntry::KeyEnrolled {
                host_id, site_id, ..
            } if site_id == "my-jhb-1" => Some(host_id.clone()),
            _ => None,
        })
        .unwrap();
    let last = bundle.leaves.len() - 1;
    let at_ms = entries[last].at_ms();
    let replacement = LogEntry::HostDecommissioned {
        at_ms,
        host_id: malaysian,
    };
    bundle.leaves[last].entry = to_hex(&replacement.encode().unwrap());
    bundle.leaves[last].envelope = None;
    let tree = MemoryTree::from_leaves(
        bundle
            .leaves
            .iter()
            .map(|l| leaf_hash(&collector_bundle::from_hex(&l.entry).unwrap())),
    );
    let size = tree.size();
    for (index, leaf) in bundle.leaves.iter_mut().enumerate() {
        leaf.path = proto_merkle::inclusion_proof(&tree, index as u64, size)
            .unwrap()
            .iter()
            .map(|h| to_hex(h))
            .collect();
    }
    bundle.heads = bundle
        .heads
        .iter()
        .map(|h| {
            let signed = TreeHead {
                tree_size: h.tree_size,
                root: proto_merkle::root(&tree, h.tree_size).unwrap(),
                timestamp_ms: h.timestamp_ms,
            };
            let envelope = proto_seal::sign_tree_head(&signed, &log_key);
            Head {
                tree_size: h.tree_size,
                root: to_hex(&signed.root),
                timestamp_ms: h.timestamp_ms,
                envelope: to_hex(&proto_seal::encode_envelope(&envelope)),
            }
        })
        .collect();
    bundle.consistency = bundle
        .consistency
        .iter()
        .map(|c| Consistency {
            proof: proto_merkle::consistency_proof(&tree, c.first_tree_size, c.second_tree_size)
                .unwrap()
                .iter()
                .map(|h| to_hex(h))
                .collect(),
            ..c.clone()
        })
        .collect();
    let public = *log_key.public_key().as_bytes();
    let notes = proto_note::LogSigner::new(ORIGIN, public, move |message| {
        log_key.sign_unframed(message)
    })
    .unwrap();
    let checkpoint = notes
        .sign_checkpoint(size, proto_merkle::root(&tree, size).unwrap())
        .unwrap()
        .to_string();
    bundle.checkpoint = Some(checkpoint.clone());
    Forged {
        bundle,
        size,
        checkpoint,
    }
}

/// The body of a plain `GET path` on 127.0.0.1:`port`.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // One write: the metrics endpoint answers from the first read of the request.
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}
