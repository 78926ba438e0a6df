//! veu-agent as a process, on the fake NVML library: inventory per fixture, the daemon's chain
//! across SIGTERM and SIGKILL restarts, inventory changes, metrics, configuration errors and
//! the checks made before anything is created (`startup`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use agent_spool::{Spool, SpoolLimits};
use proto_accounting::Catalogue;
use proto_evidence::{AttestationPayload, ChainDigest, EvidenceSource};
use serde_json::Value;
use veu_daemon_kit::testing;

#[path = "agent/gpu_evidence.rs"]
mod gpu_evidence;
#[path = "agent/probe.rs"]
mod probe;
#[path = "agent/startup.rs"]
mod startup;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_veu-agent"))
}

/// The fake NVML library. As a dev-dependency it is built into `deps/` for every test run
/// (a copy beside the binaries exists only after `cargo build -p agent-fake-nvml`, and may be
/// older).
fn fake_nvml() -> PathBuf {
    let dir = agent_bin().parent().unwrap().to_path_buf();
    [
        dir.join("deps/libveu_fake_nvml.so"),
        dir.join("libveu_fake_nvml.so"),
    ]
    .into_iter()
    .find(|path| path.exists())
    .unwrap_or_else(|| panic!("libveu_fake_nvml.so is missing under {}", dir.display()))
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/nvml").join(name)
}

fn inventory(fixture_name: &str) -> Output {
    Command::new(agent_bin())
        .args(["inventory", "--json", "--nvml-lib"])
        .arg(fake_nvml())
        .env("VEU_FAKE_NVML_FIXTURE", fixture(fixture_name))
        .output()
        .unwrap()
}

fn inventory_json(fixture_name: &str) -> Value {
    let output = inventory(fixture_name);
    assert!(
        output.status.success(),
        "{fixture_name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn tpp_of(id: &str) -> u64 {
    Catalogue::builtin().unwrap().by_id(id).unwrap().tpp
}

#[test]
fn inventory_reports_what_the_catalogue_says_for_every_fixture() {
    for (fixture_name, devices, model) in [
        ("dgx-h100.json", 8, "H100-SXM5-80GB"),
        ("hgx-h200.json", 8, "H200-SXM-141GB"),
        ("a100x8.json", 8, "A100-SXM4-80GB"),
        ("l40s-x4.json", 4, "L40S"),
        ("gb200-node.json", 4, "GB200"),
        ("h100-mig.json", 1, "H100-SXM5-80GB"),
    ] {
        let json = inventory_json(fixture_name);
        assert_eq!(json["device_count"], devices, "{fixture_name}");
        assert_eq!(json["total_tpp"], devices * tpp_of(model), "{fixture_name}");
        assert_eq!(json["evidence_source"], "simulated", "{fixture_name}");
        for device in json["devices"].as_array().unwrap() {
            assert_eq!(device["model"], model, "{fixture_name}");
            assert_eq!(device["tpp"], tpp_of(model));
            assert!(device["uuid"].as_str().unwrap().starts_with("GPU-"));
            assert_eq!(device["faults"].as_array().unwrap().len(), 0);
        }
    }
    assert_eq!(inventory_json("dgx-h100.json")["total_tpp"], 126_720);
    let h100e = inventory_json("dgx-h100.json")["total_h100e"]
        .as_f64()
        .unwrap();
    assert!((h100e - 8.0).abs() < 1e-9);
}

#[test]
fn a_mig_partitioned_gpu_is_one_device() {
    let json = inventory_json("h100-mig.json");
    assert_eq!(json["device_count"], 1);
    assert_eq!(json["devices"][0]["mig"]["enabled"], true);
    assert_eq!(json["devices"][0]["mig"]["instances"], 7);
    assert_eq!(json["total_tpp"], 15840);
}

#[test]
fn a_failing_gpu_is_a_fault_entry_not_an_aborted_inventory() {
    let json = inventory_json("one-gpu-fails.json");
    assert_eq!(json["device_count"], 8);
    assert_eq!(json["faulty_devices"], 2);
    let devices = json["devices"].as_array().unwrap();
    assert!(!devices[3]["faults"].as_array().unwrap().is_empty());
    assert_eq!(
        devices[3]["unknown"], true,
        "a lost GPU cannot be identified"
    );
    assert!(devices[3]["tpp"].as_u64().unwrap() > 0, "never zero");
    let serial_fault = &devices[5]["faults"][0];
    assert_eq!(serial_fault["query"], "nvmlDeviceGetSerial");
    assert_eq!(
        devices[5]["model"], "H100-SXM5-80GB",
        "other queries still identify it"
    );
}

#[test]
fn unknown_and_absent_devices_and_a_missing_driver() {
    let json = inventory_json("unknown-gpu.json");
    assert_eq!(json["unknown_devices"], 2);
    for device in json["devices"].as_array().unwrap() {
        assert_eq!(device["model"], "unknown");
        assert_eq!(
            device["tpp"],
            tpp_of("GB300"),
            "highest Blackwell TPP in the catalogue"
        );
    }

    let json = inventory_json("no-devices.json");
    assert_eq!(
        (json["device_count"].as_u64(), json["total_tpp"].as_u64()),
        (Some(0), Some(0))
    );

    let output = inventory("no-driver.json");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NVML not available"), "{stderr}");

    let output = Command::new(agent_bin())
        .args(["inventory", "--nvml-lib", "/nonexistent/libnvidia-ml.so.1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("NVML not available") && stderr.contains("cannot load"),
        "{stderr}"
    );
}

#[test]
fn the_table_lists_devices_and_totals() {
    let output = Command::new(agent_bin())
        .args(["inventory", "--nvml-lib"])
        .arg(fake_nvml())
        .env("VEU_FAKE_NVML_FIXTURE", fixture("dgx-h100.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("H100-SXM5-80GB"), "{text}");
    assert!(
        text.contains("8 device(s), 126720 TPP = 8.00 H100e"),
        "{text}"
    );
    assert!(text.contains("evidence is simulated"), "{text}");
}

/// A daemon in a temporary state directory, spooling only (no collector).
struct Daemon {
    dir: tempfile::TempDir,
    fixture: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    fn new(fixture_name: &str, extra: &str) -> Self {
        Self::with_interval(fixture_name, "200ms", extra)
    }

    fn with_interval(fixture_name: &str, interval: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fixture = dir.path().join("fixture.json");
        std::fs::copy(self::fixture(fixture_name), &fixture).unwrap();
        let config = format!(
            "host_id = \"gpu-test-1\"\nsite_id = \"us-va-1\"\nstate_dir = \"state\"\n\
             [attestation]\ninterval = \"{interval}\"\njitter_percent = 0\nwatch_interval = \"100ms\"\n\
             [nvml]\nlibrary = \"{}\"\n{extra}",
            fake_nvml().display()
        );
        std::fs::write(dir.path().join("agent.toml"), config).unwrap();
        Daemon {
            dir,
            fixture,
            child: None,
        }
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .unwrap();
        let child = Command::new(agent_bin())
            .args(["run", "--config"])
            .arg(self.dir.path().join("agent.toml"))
            .env("VEU_FAKE_NVML_FIXTURE", &self.fixture)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Every spooled attestation, decoded, in sequence order. Reads a copy, so the running
    /// daemon's spool is never touched.
    fn spooled(&self) -> Vec<(AttestationPayload, ChainDigest)> {
        let copy = tempfile::tempdir().unwrap();
        let source = self.dir.path().join("state/spool");
        for entry in std::fs::read_dir(&source).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                // A file renamed away between listing and copying is simply skipped.
                let _ = std::fs::copy(entry.path(), copy.path().join(entry.file_name()));
            }
        }
        let (spool, _) = Spool::open(copy.path(), SpoolLimits::default()).unwrap();
        let key = self.public_key();
        spool
            .pending()
            .map(|pending| {
                let entry = spool.read(pending.sequence).unwrap();
                let envelope = proto_seal::decode_envelope(&entry.bytes).unwrap();
                let verified = proto_seal::open(envelope, &key).unwrap();
                (verified.payload().clone(), verified.digest())
            })
            .collect()
    }

    fn public_key(&self) -> proto_seal::PublicKey {
        let signer = agent_sign::load(&self.dir.path().join("state/signing-key.pk8")).unwrap();
        signer.public_key()
    }

    fn wait_for(&self, what: &str, done: impl Fn(&[(AttestationPayload, ChainDigest)]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self.dir.path().join("state/signing-key.pk8").exists() && done(&self.spooled()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sequences are 1..=n without holes and each names its predecessor's digest.
fn assert_unbroken(chain: &[(AttestationPayload, ChainDigest)]) {
    let mut previous = ChainDigest::GENESIS;
    for (index, (payload, digest)) in chain.iter().enumerate() {
        assert_eq!(payload.sequence, index as u64 + 1, "sequence");
        assert_eq!(
            payload.previous_digest, previous,
            "link {}",
            payload.sequence
        );
        previous = *digest;
    }
}

#[test]
fn the_daemon_signs_a_chain_and_continues_it_after_sigterm() {
    let mut daemon = Daemon::new("dgx-h100.json", "");
    daemon.start();
    daemon.wait_for("3 attestations", |chain| chain.len() >= 3);
    let status = daemon.signal("TERM");
    assert!(status.success(), "SIGTERM drains and exits 0: {status:?}");
    let before = daemon.spooled();
    assert_unbroken(&before);
    let first = &before[0].0;
    assert_eq!(first.totals.tpp, 126_720);
    assert_eq!(first.devices.len(), 8);
    assert_eq!(first.source, EvidenceSource::Simulated);
    assert_eq!(first.host_id.0, "gpu-test-1");

    daemon.start();
    daemon.wait_for("the chain to grow", |chain| chain.len() >= before.len() + 2);
    assert_eq!(daemon.signal("TERM").code(), Some(0));
    assert_unbroken(&daemon.spooled());
}

#[test]
fn sigkill_at_any_moment_never_forks_or_rewinds_the_chain() {
    let mut daemon = Daemon::new("dgx-h100.json", "");
    let mut highest = 0;
    for round in 0..8u64 {
        daemon.start();
        // Kill at different points of the attestation cycle.
        std::thread::sleep(Duration::from_millis(150 + round * 37));
        daemon.signal("KILL");
        let chain = daemon.spooled();
        assert_unbroken(&chain);
        let newest = chain.last().map_or(0, |(p, _)| p.sequence);
        assert!(
            newest >= highest,
            "round {round}: the chain went back from {highest} to {newest}"
        );
        highest = newest;
    }
    assert!(
        highest >= 4,
        "the agent made progress between kills: {highest}"
    );
}

#[test]
fn an_inventory_change_is_attested_at_once() {
    // A long periodic interval: only the change can explain a second attestation.
    let mut daemon = Daemon::with_interval("dgx-h100.json", "1h", "");
    daemon.start();
    daemon.wait_for("the start attestation", |chain| chain.len() == 1);
    // GPU 3 falls off the bus.
    let mut fixture: Value =
        serde_json::from_slice(&std::fs::read(&daemon.fixture).unwrap()).unwrap();
    fixture["devices"][3]["fail_all"] = Value::from("GPU_IS_LOST");
    std::fs::File::create(&daemon.fixture)
        .unwrap()
        .write_all(serde_json::to_string(&fixture).unwrap().as_bytes())
        .unwrap();
    daemon.wait_for("the change attestation", |chain| chain.len() == 2);
    let chain = daemon.spooled();
    assert_eq!(chain[1].0.totals.faulty_devices, 1);
    assert_unbroken(&chain);
    daemon.signal("TERM");
}

#[test]
fn metrics_show_devices_tpp_and_spool_depth() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut daemon = Daemon::new(
        "dgx-h100.json",
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    daemon.start();
    daemon.wait_for("2 attestations", |chain| chain.len() >= 2);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    for expected in [
        "HTTP/1.1 200 OK",
        "veu_agent_devices 8",
        "veu_agent_tpp 126720",
        "veu_agent_spool_entries ",
        "veu_agent_last_ack_age_seconds -1",
        "veu_agent_attestations_total{kind=\"start\"} 1",
    ] {
        assert!(body.contains(expected), "missing {expected:?} in\n{body}");
    }
    daemon.signal("TERM");
}

#[test]
fn a_bad_configuration_exits_78_with_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "site_id = \"\"\nstate_dir = \"s\"\n[attestation]\ninterval = \"often\"\n",
    )
    .unwrap();
    for command in ["run", "check-config"] {
        let output = Command::new(agent_bin())
            .args([command, "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(78), "{command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("site_id:") && stderr.contains("attestation.interval:"),
            "{stderr}"
        );
    }
}

#[test]
fn an_agent_that_has_not_enrolled_says_how_to_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "").unwrap();
    std::fs::write(
        &config,
        format!(
            "host_id = \"gpu-1\"\nsite_id = \"us-va-1\"\nstate_dir = {state:?}\n[collector]\nendpoint = \"https://collector:7443\"\nca = {ca:?}\ncertificate = {cert:?}\nkey = {key:?}\n",
            state = dir.path().join("state"),
            ca = ca,
            cert = dir.path().join("state/tls/agent.pem"),
            key = dir.path().join("state/tls/agent.key"),
        ),
    )
    .unwrap();
    for command in ["run", "check-config"] {
        let output = Command::new(agent_bin())
            .args([command, "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(78), "{command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("not enrolled yet")
                && stderr.contains(&format!(
                    "veu-agent enroll --config {} --token TOKEN",
                    config.display()
                ))
                && stderr.contains("veuctl enroll-token --site us-va-1")
                && !stderr.contains("collector.key"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn the_host_id_comes_from_the_file_then_veu_host_id_then_the_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let check = |text: &str, env: Option<&str>| {
        std::fs::write(&config, text).unwrap();
        let mut command = Command::new(agent_bin());
        command.args(["check-config", "--config"]).arg(&config);
        match env {
            Some(value) => command.env("VEU_HOST_ID", value),
            None => command.env_remove("VEU_HOST_ID"),
        };
        let output = command.output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let without = "site_id = \"us-va-1\"\nstate_dir = \"s\"\n";
    let with = format!("host_id = \"gpu-from-file\"\n{without}");
    assert!(check(without, Some("gpu-node-7")).contains("(host gpu-node-7, site us-va-1)"));
    assert!(check(&with, Some("gpu-node-7")).contains("(host gpu-from-file,"));
    let fallback = check(without, Some(""));
    assert!(
        !fallback.contains("(host ,") && fallback.contains("valid (host "),
        "an empty VEU_HOST_ID falls back to the host name: {fallback}"
    );
}

#[test]
fn a_key_file_others_can_read_stops_the_daemon() {
    use std::os::unix::fs::PermissionsExt;
    let mut daemon = Daemon::new("dgx-h100.json", "");
    daemon.start();
    daemon.wait_for("a key", |chain| !chain.is_empty());
    daemon.signal("TERM");
    let key = daemon.dir.path().join("state/signing-key.pk8");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    daemon.start();
    let status = daemon.child.as_mut().unwrap().wait().unwrap();
    let stderr = daemon.log();
    // An operator must fix it: a configuration problem, which systemd does not restart.
    assert_eq!(status.code(), Some(78));
    assert!(stderr.contains("chmod 600"), "{stderr}");
}

#[test]
fn a_second_agent_on_the_same_state_directory_is_refused() {
    let mut first = Daemon::new("dgx-h100.json", "");
    first.start();
    first.wait_for("an attestation", |chain| !chain.is_empty());
    let output = Command::new(agent_bin())
        .args(["run", "--config"])
        .arg(first.dir.path().join("agent.toml"))
        .env("VEU_FAKE_NVML_FIXTURE", &first.fixture)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("another veu-agent is running"), "{stderr}");
    first.signal("TERM");
    assert_unbroken(&first.spooled());
}

#[test]
#[ignore = "needs promtool (apt-get install prometheus); .ci/run runs it with --ignored"]
fn promtool_accepts_the_agent_metrics() {
    let port = testing::free_port();
    let mut daemon = Daemon::new(
        "dgx-h100.json",
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    daemon.start();
    daemon.wait_for("an attestation", |chain| !chain.is_empty());
    let body = testing::scrape(port);
    testing::promtool_accepts(&body);
    assert!(
        body.lines().any(|l| l.starts_with("veu_agent_build_info{")
            && l.contains("commit=\"")
            && l.ends_with("} 1")),
        "{body}"
    );
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(
            body.contains(&format!("\n{family} ")),
            "missing {family}:\n{body}"
        );
    }
    // No [collector]: ready while the spool has room; SIGHUP is logged and changes nothing.
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    assert!(get("/healthz").starts_with("HTTP/1.1 200"));
    assert!(get("/readyz").starts_with("HTTP/1.1 200"));
    testing::signal(daemon.child.as_ref().unwrap().id(), "HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        get("/healthz").starts_with("HTTP/1.1 200"),
        "SIGHUP stopped the agent"
    );
    assert!(
        daemon.log().contains("SIGHUP is not handled"),
        "{}",
        daemon.log()
    );
    daemon.signal("TERM");
}
