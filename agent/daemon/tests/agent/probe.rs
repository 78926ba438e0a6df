//! `veu-agent probe` against a landmark in this process: the fastest round printed with the
//! distance it bounds, the landmark's statement naming this host and key; a landmark that
//! cannot be reached is a failure.

use std::sync::Arc;
use std::time::Duration;

use proto_evidence::Coordinates;
use proto_seal::Ed25519Signer;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use veu_landmark::{Identity, Limits};

use super::agent_bin;

#[tokio::test]
async fn probe_prints_the_fastest_round_and_the_landmark_signs_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let (agent_key, _) = agent_sign::load_or_create(&state.join("signing-key.pk8")).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let landmark = Ed25519Signer::from_seed(&[42; 32]).unwrap();
    let landmark_key = landmark.public_key();
    let (sink, mut statements) = mpsc::channel(4);
    let shutdown = CancellationToken::new();
    tokio::spawn(veu_landmark::serve(
        listener,
        Arc::new(Identity {
            id: "fra-1".into(),
            at: Coordinates::from_degrees(50.1109, 8.6821).unwrap(),
            signer: landmark,
        }),
        Limits::default(),
        sink,
        shutdown.clone(),
    ));

    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "host_id = \"gpu-node-3\"\nsite_id = \"s\"\nstate_dir = \"{}\"\n\
             [location]\nlandmarks = [\"{address}\"]\n",
            state.display()
        ),
    )
    .unwrap();
    let run = |extra: Vec<String>| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(agent_bin())
                .arg("probe")
                .arg("--config")
                .arg(&config)
                .args(extra)
                .output()
                .unwrap()
        })
    };
    let output = run(Vec::new()).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with(&format!("{address}: min RTT ")),
        "{stdout}"
    );
    assert!(stdout.contains("over 8 rounds: within "), "{stdout}");
    assert!(stdout.contains(" km at the speed of light"), "{stdout}");
    let signed = tokio::time::timeout(Duration::from_secs(10), statements.recv())
        .await
        .unwrap()
        .unwrap();
    let measurement = proto_seal::open_measurement(&signed, &landmark_key).unwrap();
    assert_eq!(measurement.host, "gpu-node-3");
    assert_eq!(measurement.agent_key, *agent_key.public_key().as_bytes());

    // Nobody listens there: a failure, with its reason.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nowhere = closed.local_addr().unwrap().to_string();
    drop(closed);
    let output = run(vec!["--landmark".into(), nowhere.clone()])
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.starts_with(&format!("{nowhere}: failed: ")),
        "{stdout}"
    );
    shutdown.cancel();
}
