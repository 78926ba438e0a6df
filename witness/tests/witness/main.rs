//! The real `veu-witness` process attacked over real HTTP with the library's client: a log that
//! grows honestly is cosigned; one that rolls back, forks (a split view), lies in its proof,
//! is unknown or signs with another key is refused; the state survives a crash.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::time::{Duration, Instant};

use harness::{BIN, Log, ORIGIN, Setup, get, now, post, raw, verify};
use proto_note::{AddCheckpointRequest, Checkpoint, SignedNote};
use veu_witness::{AddError, add_checkpoint};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Submits the log's current checkpoint claiming the witness is at `old`.
async fn submit(
    url: &str,
    log: &Log,
    old: u64,
) -> Result<Vec<proto_note::NoteSignature>, AddError> {
    add_checkpoint(url, old, &log.proof_from(old), &log.checkpoint(), TIMEOUT).await
}

#[tokio::test]
async fn an_honest_log_is_cosigned_at_every_size() {
    let mut log = Log::new(ORIGIN, 1, 0);
    let mut setup = Setup::new(&[(ORIGIN, &log.vkey())]);
    let witness = setup.start();
    let url = witness.url();

    let mut old = 0;
    for size in [0, 3, 4, 10, 10, 17, 64, 100] {
        log.grow_to(size);
        let before = now();
        let cosignatures = submit(&url, &log, old).await.unwrap();
        assert_eq!(cosignatures.len(), 1);
        let verified = verify(&log.checkpoint(), &cosignatures, &setup.vkey, &log.vkey());
        let timestamp = verified.verified()[1].timestamp().unwrap();
        assert!((before..=now()).contains(&timestamp), "{timestamp}");
        assert_eq!(Checkpoint::parse(verified.text()).unwrap().size(), size);
        old = size;
    }

    // The monitoring path serves the latest checkpoint with both signatures.
    let hash = veu_witness::state::origin_hash(ORIGIN);
    let answer = get(witness.address, &format!("/{hash}/checkpoint"));
    assert_eq!(answer.status, 200);
    let stored = SignedNote::parse(answer.body.as_bytes()).unwrap();
    stored.verify(&[setup.vkey.clone()]).unwrap();
    stored.verify(&[log.vkey()]).unwrap();
    assert_eq!(Checkpoint::parse(stored.text()).unwrap().size(), 100);
    let status = get(witness.address, "/");
    assert!(
        status.body.contains(&setup.vkey.to_string()),
        "{}",
        status.body
    );
    assert!(
        status
            .body
            .contains(&format!("log {ORIGIN} latest cosigned size 100"))
    );
    assert!(witness.log().contains("cosigned a checkpoint"));
}

#[tokio::test]
async fn a_stale_old_size_gets_409_with_the_witness_size_and_the_retry_succeeds() {
    let mut log = Log::new(ORIGIN, 1, 0);
    let mut setup = Setup::new(&[(ORIGIN, &log.vkey())]);
    let witness = setup.start();
    log.grow_to(7);
    submit(&witness.url(), &log, 0).await.unwrap();
    log.grow_to(12);
    let error = submit(&witness.url(), &log, 0).await.unwrap_err();
    assert_eq!(error.witness_size(), Some(7), "{error}");
    let error = submit(&witness.url(), &log, 5).await.unwrap_err();
    assert_eq!(error.witness_size(), Some(7), "{error}");
    // What a collector does: resend with the proof from the witness's size.
    let cosignatures = submit(&witness.url(), &log, 7).await.unwrap();
    verify(&log.checkpoint(), &cosignatures, &setup.vkey, &log.vkey());

    // The 409 answer is exactly the protocol's.
    let body = AddCheckpointRequest::new(
        3,
        log.proof_from(3),
        SignedNote::parse(log.checkpoint().as_bytes()).unwrap(),
    )
    .unwrap()
    .to_string();
    let answer = post(witness.address, "/add-checkpoint", body.as_bytes());
    assert_eq!(answer.status, 409);
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("content-type: text/x.tlog.size"),
        "{}",
        answer.head
    );
    assert_eq!(answer.body, "12\n");
}

#[tokio::test]
async fn a_rollback_is_refused() {
    let mut log = Log::new(ORIGIN, 1, 0);
    let mut setup = Setup::new(&[(ORIGIN, &log.vkey())]);
    let witness = setup.start();
    log.grow_to(10);
    submit(&witness.url(), &log, 0).await.unwrap();

    let mut behind = Log::new(ORIGIN, 1, 0);
    behind.grow_to(6);
    // Claiming the witness is where the smaller tree is: 409, and the witness's size.
    let error = submit(&witness.url(), &behind, 6).await.unwrap_err();
    assert_eq!(error.witness_size(), Some(10), "{error}");
    // Claiming the witness's own size, past the checkpoint's: 400 (the client will not even
    // send that, so it goes raw).
    let answer = post(
        witness.address,
        "/add-checkpoint",
        format!("old 10\n\n{}", behind.checkpoint()).as_bytes(),
    );
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.body.contains("larger than the checkpoint's size"),
        "{}",
        answer.body
    );
    // Nothing moved.
    assert!(
        get(witness.address, "/")
            .body
            .contains("latest cosigned size 10")
    );
}

#[tokio::test]
async fn a_split_view_is_refused_and_changes_nothing() {
    let mut honest = Log::new(ORIGIN, 1, 0);
    let mut fork = Log::new(ORIGIN, 1, 1);
    let mut setup = Setup::new(&[(ORIGIN, &honest.vkey())]);
    let witness = setup.start();
    honest.grow_to(8);
    fork.grow_to(8);
    assert_ne!(honest.root(), fork.root());
    submit(&witness.url(), &honest, 0).await.unwrap();
    let hash = veu_witness::state::origin_hash(ORIGIN);
    let before = get(witness.address, &format!("/{hash}/checkpoint")).body;

    // The same log key signed another tree of the same size.
    let error = submit(&witness.url(), &fork, 8).await.unwrap_err();
    assert!(matches!(error, AddError::InvalidProof { .. }), "{error}");
    // And a larger fork with its own (valid for itself) proof from 8.
    fork.grow_to(13);
    let error = submit(&witness.url(), &fork, 8).await.unwrap_err();
    assert!(matches!(error, AddError::InvalidProof { .. }), "{error}");

    assert_eq!(
        get(witness.address, &format!("/{hash}/checkpoint")).body,
        before
    );
    let log = witness.log();
    assert!(log.contains("WARN") && log.contains("split view"), "{log}");
    // The honest log goes on.
    honest.grow_to(13);
    submit(&witness.url(), &honest, 8).await.unwrap();
}

#[tokio::test]
async fn a_wrong_consistency_proof_gets_422() {
    let mut log = Log::new(ORIGIN, 1, 0);
    let mut setup = Setup::new(&[(ORIGIN, &log.vkey())]);
    let witness = setup.start();
    log.grow_to(5);
    submit(&witness.url(), &log, 0).await.unwrap();
    log.grow_to(11);
    let mut proof = log.proof_from(5);
    proof[1][0] ^= 1;
    let error = add_checkpoint(&witness.url(), 5, &proof, &log.checkpoint(), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(error, AddError::InvalidProof { .. }), "{error}");
    let short = &log.proof_from(5)[1..];
    let error = add_checkpoint(&witness.url(), 5, short, &log.checkpoint(), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(error, AddError::InvalidProof { .. }), "{error}");
    // A proof from zero, where none belongs.
    let mut fresh = Log::new(ORIGIN, 1, 0);
    fresh.grow_to(3);
    let mut setup2 = Setup::new(&[(ORIGIN, &fresh.vkey())]);
    let other = setup2.start();
    let error = add_checkpoint(&other.url(), 0, &[[0; 32]], &fresh.checkpoint(), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(error, AddError::InvalidProof { .. }), "{error}");
    // The right proof still works.
    submit(&witness.url(), &log, 5).await.unwrap();
}

#[tokio::test]
async fn an_unknown_origin_gets_404_and_another_key_gets_403() {
    let mut log = Log::new(ORIGIN, 1, 0);
    let mut setup = Setup::new(&[(ORIGIN, &log.vkey())]);
    let witness = setup.start();
    log.grow_to(4);

    let mut stranger = Log::new("other.example/log", 1, 0);
    stranger.grow_to(4);
    let error = submit(&witness.url(), &stranger, 0).await.unwrap_err();
    assert!(matches!(error, AddError::NotFound { .. }), "{error}");

    let mut impostor = Log::new(ORIGIN, 2, 0);
    impostor.grow_to(4);
    let error = submit(&witness.url(), &impostor, 0).await.unwrap_err();
    assert!(matches!(error, AddError::Forbidden { .. }), "{error}");

    // The log's key name and ID with a signature that does not verify: 403 as well.
    let genuine = log.checkpoint();
    let tampered = genuine.replacen("\n4\n", "\n5\n", 1);
    let body = format!("old 0\n\n{tampered}");
    assert_eq!(
        post(witness.address, "/add-checkpoint", body.as_bytes()).status,
        403
    );

    assert!(witness.log().contains("add-checkpoint refused"));
    submit(&witness.url(), &log, 0).await.unwrap();
}

#[tokio::test]
async fn oversized_slow_and_malformed_requests_are_refused_without_hanging() {
    let log = Log::new(ORIGIN, 1, 0);
    let mut setup = Setup::new(&[(ORIGIN, &log.vkey())]);
    let witness = setup.start();
    let started = Instant::now();

    // Declared over the 4 KiB limit: refused from the headers.
    let answer = raw(
        witness.address,
        b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 100000\r\n\r\n",
    )
    .unwrap();
    assert_eq!(answer.status, 413, "{answer:?}");
    // Chunked, so only reading finds it too large; the server may close before reading all.
    let mut chunked =
        b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    chunked.extend_from_slice(format!("{:x}\r\n", 8192).as_bytes());
    chunked.extend_from_slice(&[b'a'; 8192]);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    match raw(witness.address, &chunked) {
        Ok(answer) => assert_eq!(answer.status, 413, "{answer:?}"),
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}"),
    }
    // A body that never comes: 408 after the 1 s read deadline.
    let answer = raw(
        witness.address,
        b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 100\r\n\r\n",
    )
    .unwrap();
    assert_eq!(answer.status, 408, "{answer:?}");
    // Headers that never end: the connection is closed.
    let answer = raw(
        witness.address,
        b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\n",
    );
    assert!(answer.map_or(true, |a| a.status != 200));
    // Garbage: 400, with a reason.
    let answer = post(witness.address, "/add-checkpoint", b"old zero\n\n");
    assert_eq!(answer.status, 400);
    assert!(answer.body.contains("old size"), "{}", answer.body);
    assert_eq!(get(witness.address, "/add-checkpoint").status, 405);
    assert_eq!(get(witness.address, "/nothing").status, 404);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // Still serving.
    let mut log = log;
    log.grow_to(2);
    submit(&witness.url(), &log, 0).await.unwrap();
}

#[tokio::test]
async fn idle_connections_do_not_lock_out_service() {
    let mut log = Log::new(ORIGIN, 1, 0);
    let mut setup = Setup::new(&[(ORIGIN, &log.vkey())]);
    let witness = setup.start();
    // Twice the connection limit, all silent.
    let idle: Vec<_> = (0..8)
        .map(|_| std::net::TcpStream::connect(witness.address).unwrap())
        .collect();
    log.grow_to(3);
    let started = Instant::now();
    submit(&witness.url(), &log, 0).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(8));
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_submissions_from_one_size_exactly_one_wins() {
    let mut log = Log::new(ORIGIN, 1, 0);
    let mut setup = Setup::new(&[(ORIGIN, &log.vkey())]);
    let witness = setup.start();
    log.grow_to(2);
    submit(&witness.url(), &log, 0).await.unwrap();
    let mut tasks = Vec::new();
    for size in 3..=10 {
        log.grow_to(size);
        let (proof, note, url) = (log.proof_from(2), log.checkpoint(), witness.url());
        tasks.push(tokio::spawn(async move {
            add_checkpoint(&url, 2, &proof, &note, TIMEOUT).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(error) => assert!(error.witness_size().is_some(), "{error}"),
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn the_state_survives_a_crash_and_a_rollback_after_restart_is_still_refused() {
    let mut log = Log::new(ORIGIN, 1, 0);
    let mut setup = Setup::new(&[(ORIGIN, &log.vkey())]);
    let witness = setup.start();
    log.grow_to(10);
    submit(&witness.url(), &log, 0).await.unwrap();
    witness.kill();

    let witness = setup.start();
    let mut behind = Log::new(ORIGIN, 1, 0);
    behind.grow_to(5);
    let error = submit(&witness.url(), &behind, 0).await.unwrap_err();
    assert_eq!(error.witness_size(), Some(10), "{error}");
    let answer = post(
        witness.address,
        "/add-checkpoint",
        format!("old 10\n\n{}", behind.checkpoint()).as_bytes(),
    );
    assert_eq!(answer.status, 400);
    let mut fork = Log::new(ORIGIN, 1, 1);
    fork.grow_to(10);
    assert!(matches!(
        submit(&witness.url(), &fork, 10).await.unwrap_err(),
        AddError::InvalidProof { .. }
    ));
    log.grow_to(12);
    let cosignatures = submit(&witness.url(), &log, 10).await.unwrap();
    verify(&log.checkpoint(), &cosignatures, &setup.vkey, &log.vkey());

    // SIGTERM stops it cleanly.
    let status = witness
        .terminate(Duration::from_secs(10))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    let witness = setup.start();
    assert!(
        get(witness.address, "/")
            .body
            .contains("latest cosigned size 12")
    );
}

#[test]
fn a_bad_configuration_exits_78_naming_the_file_and_key() {
    let log = Log::new(ORIGIN, 1, 0);
    let setup = Setup::new(&[(ORIGIN, &log.vkey())]);
    let config = setup.config();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("127.0.0.1:0", "localhost")
            .replace("keys = [\"", "keys = [\"x"),
    )
    .unwrap();
    let output = std::process::Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&config.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("listen:") && stderr.contains("logs[0].keys[0]:"),
        "{stderr}"
    );

    // A key file others can read is refused as configuration.
    std::fs::write(&config, &text).unwrap();
    let key = setup.dir.path().join("witness.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let output = std::process::Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("key_file:"));
    // keygen never replaces a key, and its file is private.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let again = std::process::Command::new(BIN)
        .args(["keygen", "--name", "w", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let fresh = setup.dir.path().join("fresh.key");
    let made = std::process::Command::new(BIN)
        .args(["keygen", "--name", "w", "--out"])
        .arg(&fresh)
        .output()
        .unwrap();
    assert!(made.status.success());
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&fresh).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let printed = std::process::Command::new(BIN)
        .args(["vkey", "--key"])
        .arg(&fresh)
        .output()
        .unwrap();
    assert_eq!(printed.stdout, made.stdout);
}
