//! Real binaries as processes: a development PKI, a collector, simulated agents, veuctl. They
//! start through `veu_fleet`, as `veuctl demo`'s do; a failure here is the test's panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use veu_fleet::agent::{self, AgentConfig};
use veu_fleet::calendar::{format_date, month_containing};
use veu_fleet::collector::{self, CollectorConfig};
use veu_fleet::{Binaries, Process, STARTUP};

pub use veu_fleet::calendar::now_ms;

/// The workspace's binaries, beside this test binary's directory.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| Binaries::beside_current_exe().expect("the test binary's directory"))
}

/// The workspace's binaries, built by `cargo test --workspace` (or `cargo build --workspace`).
pub fn binary(name: &str) -> PathBuf {
    binaries().path(name).unwrap_or_else(|error| {
        panic!(
            "{error}: run the tests with `cargo test --workspace` (or `cargo build --workspace` first)"
        )
    })
}

/// `BINARY run --config CONFIG`, its log in `log`, started and listening on `port`; killed
/// when dropped.
pub fn daemon(binary_name: &str, config: &Path, log: &Path, port: u16) -> Process {
    let mut command = veu_fleet::daemon::run_command(&binary(binary_name), config, log).unwrap();
    let process = Process::spawn(binary_name, &mut command).unwrap();
    veu_fleet::wait_listening(binary_name, port, STARTUP, log)
        .unwrap_or_else(|error| panic!("{error}"));
    process
}

/// A free port on 127.0.0.1 that no other call in this test process was given: the system
/// may hand a just-released port out again, and two daemons of one scenario must not share it.
pub fn free_port() -> u16 {
    veu_fleet::free_port().expect("a free port")
}

/// A collector process on a fresh state directory, killed when dropped.
pub struct Collector {
    pub dir: PathBuf,
    pub port: u16,
    process: Option<Process>,
}

impl Collector {
    /// PKI, sites (US, DE, MY, IN), config with the simulated-evidence policy (or the
    /// scenario's own `policy.toml` and `sites.toml`, when it wrote them); then starts it.
    pub fn start(dir: &Path) -> Self {
        Self::start_with_store(dir, None)
    }

    /// `start`, with `store = URL` when given (a PostgreSQL database).
    pub fn start_with_store(dir: &Path, store: Option<&str>) -> Self {
        Self::start_with(dir, store, "")
    }

    /// `start_with_store`, with `audit` appended to the `[audit]` section (more keys, then
    /// `[[audit.witnesses]]` tables).
    pub fn start_with(dir: &Path, store: Option<&str>, audit: &str) -> Self {
        collector::pki_init(binaries(), &dir.join("pki")).expect("pki init");
        // A scenario may have written its own registry (sites with coordinates).
        if !dir.join("sites.toml").exists() {
            std::fs::write(
                dir.join("sites.toml"),
                "[[site]]\nid = \"us-va-1\"\ncountry = \"US\"\n\
             [[site]]\nid = \"de-fra-1\"\ncountry = \"DE\"\n\
             [[site]]\nid = \"my-jhb-1\"\ncountry = \"MY\"\n\
             [[site]]\nid = \"in-mum-1\"\ncountry = \"IN\"\n",
            )
            .unwrap();
        }
        // A scenario may have written its own policy.
        let policy = if dir.join("policy.toml").exists() {
            dir.join("policy.toml").canonicalize().unwrap()
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../deploy/policies/uveu-2025-us-simulated.toml")
                .canonicalize()
                .unwrap()
        };
        let port = free_port();
        CollectorConfig {
            store: store.map(str::to_owned),
            audit: audit.to_owned(),
            ..CollectorConfig::new(port, "pki", policy)
        }
        .write(dir)
        .expect("collector.toml");
        let mut collector = Self {
            dir: dir.to_path_buf(),
            port,
            process: None,
        };
        collector.spawn();
        collector
    }

    fn spawn(&mut self) {
        self.process = Some(daemon(
            "veu-collector",
            &self.dir.join("collector.toml"),
            &self.dir.join("collector.log"),
            self.port,
        ));
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A channel to this collector, trusting its CA, presenting `identity` when given; retried
    /// for up to 10 s while the collector comes up.
    pub async fn channel(
        &self,
        identity: Option<collector_client::Credential>,
    ) -> collector_client::Channel {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut tls = collector_client::ClientTls::new(
            collector_client::read_pem(&self.dir.join("pki/ca.pem")).unwrap(),
            "127.0.0.1",
        );
        if let Some(identity) = identity {
            tls = tls.with_identity(identity);
        }
        let connection = collector_client::Connection::new(self.url(), tls).connect_timeout(None);
        for _ in 0..100 {
            if let Ok(channel) = connection.connect().await {
                return channel;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cannot connect to the collector at {}", self.url());
    }

    /// The log key the collector wrote for auditors.
    pub fn log_pub(&self) -> PathBuf {
        self.dir.join("state/log.pub")
    }

    /// `veuctl ARGS` against this collector with the development PKI.
    pub fn veuctl(&self, args: &[&str]) -> Output {
        Command::new(binary("veuctl"))
            .args(args)
            .env("VEU_COLLECTOR", self.url())
            .env("VEU_PKI_DIR", self.dir.join("pki"))
            .output()
            .unwrap()
    }

    /// Simulated agents (real keys, signatures, enrolment, mTLS): `agents` at `sites`
    /// round-robin, `each` attestations apiece.
    pub fn loadgen(&self, agents: usize, sites: &str, each: usize) -> String {
        let output = Command::new(binary("veu-loadgen"))
            .args(["--collector", &self.url(), "--pki-dir"])
            .arg(self.dir.join("pki"))
            .args(["--agents", &agents.to_string(), "--sites", sites])
            .args(["--attestations-per-agent", &each.to_string(), "--rate", "5"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "loadgen failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

/// stdout of a command that must succeed.
pub fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The UTC month (YYYY-MM) and its bounds (dates) around `ms`.
pub fn month_of(ms: i64) -> (String, String, String) {
    let month = month_containing(ms).unwrap();
    (
        month.to_string(),
        format_date(month.start_ms()),
        format_date(month.end_ms()),
    )
}

/// The UTC date (YYYY-MM-DD) of `ms`, and the first millisecond of its month.
pub fn date_of(ms: i64) -> (String, i64) {
    (format_date(ms), month_containing(ms).unwrap().start_ms())
}

impl Collector {
    /// Another replica of this collector on the same store: the same PKI, sites, policy, log
    /// key and nonce secret, its own port and state directory.
    pub fn replica(&self, dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("state")).unwrap();
        copy_tree(&self.dir.join("pki"), &dir.join("pki"));
        std::fs::copy(self.dir.join("sites.toml"), dir.join("sites.toml")).unwrap();
        for file in ["log.key", "nonce.key"] {
            std::fs::copy(
                self.dir.join("state").join(file),
                dir.join("state").join(file),
            )
            .unwrap();
        }
        let port = free_port();
        let config = std::fs::read_to_string(self.dir.join("collector.toml"))
            .unwrap()
            .replace(
                &format!("127.0.0.1:{}", self.port),
                &format!("127.0.0.1:{port}"),
            );
        std::fs::write(dir.join("collector.toml"), config).unwrap();
        let mut replica = Self {
            dir: dir.to_path_buf(),
            port,
            process: None,
        };
        replica.spawn();
        replica
    }

    /// SIGKILL: no chance to flush or close anything.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().unwrap();
        }
    }

    /// Starts it again on the same port, state and configuration.
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "still running");
        self.spawn();
    }

    /// A one-time enrolment token for `site`.
    pub fn token(&self, site: &str) -> String {
        ok(&self.veuctl(&["enroll-token", "--site", site]))
            .trim()
            .to_owned()
    }

    /// The stored envelopes of `host`, oldest first, from an evidence export into `dir`.
    pub fn stored(&self, dir: &Path, host: &str) -> Vec<proto_evidence::Envelope> {
        let bundle = dir.join(format!("bundle-{host}"));
        let _ = std::fs::remove_dir_all(&bundle);
        self.export_month(&bundle);
        std::fs::read_to_string(bundle.join("leaves.jsonl"))
            .unwrap()
            .lines()
            .filter_map(|line| {
                let leaf: serde_json::Value = serde_json::from_str(line).unwrap();
                let hex = leaf["envelope"].as_str()?;
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                let envelope = proto_seal::decode_envelope(&bytes).unwrap();
                let payload = proto_seal::decode_payload_unverified(&envelope).unwrap();
                (payload.host_id.0 == host).then_some(envelope)
            })
            .collect()
    }

    /// `veuctl evidence export` of this month into `bundle`; returns its summary line.
    pub fn export_month(&self, bundle: &Path) -> String {
        let (_, from, to) = month_of(now_ms());
        ok(&self.veuctl(&[
            "evidence",
            "export",
            "--from",
            &from,
            "--to",
            &to,
            "--out",
            bundle.to_str().unwrap(),
        ]))
    }

    /// `veuctl verify BUNDLE --log-key <this collector's log.pub> [EXTRA…]`: exit code, stdout.
    pub fn verify(&self, bundle: &Path, extra: &[&str]) -> (i32, String) {
        let mut args = vec![
            "verify",
            bundle.to_str().unwrap(),
            "--log-key",
            self.log_pub().to_str().unwrap(),
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = self.veuctl(&args);
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }

    /// `veuctl audit history HOST` as (sequence, log index) pairs, oldest first.
    pub fn history(&self, host: &str) -> Vec<u64> {
        let output = self.veuctl(&["audit", "history", host, "--format", "json"]);
        if !output.status.success() {
            return Vec::new();
        }
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        value["attestations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["sequence"].as_u64().unwrap())
            .collect()
    }
}

/// A real `veu-agent` process on the fake NVML library, enrolled with a one-time token.
pub struct Agent {
    pub host: String,
    dir: PathBuf,
    process: Option<Process>,
}

impl Agent {
    /// Enrolls `host` at `site` with the GPUs of `fixture` (tests/fixtures/nvml/), given UUIDs
    /// of its own, attesting every `interval_ms`; then starts it.
    pub fn start(
        collector: &Collector,
        host: &str,
        site: &str,
        fixture: &str,
        interval_ms: u64,
    ) -> Self {
        Self::start_via(collector, host, site, fixture, interval_ms, collector.port)
    }

    /// `start`, streaming to 127.0.0.1:`port` (a relay in front of replicas) instead.
    pub fn start_via(
        collector: &Collector,
        host: &str,
        site: &str,
        fixture: &str,
        interval_ms: u64,
        port: u16,
    ) -> Self {
        Self::start_edited(collector, host, site, fixture, interval_ms, port, |_, _| {})
    }

    /// `start`, with `extra` appended to the agent's configuration (more tables).
    pub fn start_configured(
        collector: &Collector,
        host: &str,
        site: &str,
        interval_ms: u64,
        extra: &str,
    ) -> Self {
        Self::start_full(
            collector,
            host,
            site,
            "dgx-h100.json",
            interval_ms,
            collector.port,
            |_, _| {},
            extra,
        )
    }

    /// `start_via`, with `edit` changing the fixture (given the agent's directory) before
    /// the agent starts.
    pub fn start_edited(
        collector: &Collector,
        host: &str,
        site: &str,
        fixture: &str,
        interval_ms: u64,
        port: u16,
        edit: impl FnOnce(&Path, &mut serde_json::Value),
    ) -> Self {
        Self::start_full(collector, host, site, fixture, interval_ms, port, edit, "")
    }

    #[allow(clippy::too_many_arguments)] // the scenario's independent choices
    fn start_full(
        collector: &Collector,
        host: &str,
        site: &str,
        fixture: &str,
        interval_ms: u64,
        port: u16,
        edit: impl FnOnce(&Path, &mut serde_json::Value),
        extra: &str,
    ) -> Self {
        let dir = collector.dir.join("agents").join(host);
        std::fs::create_dir_all(&dir).unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/nvml")
            .join(fixture);
        let mut gpus: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(source).unwrap()).unwrap();
        agent::own_gpus(&mut gpus, host);
        edit(&dir, &mut gpus);
        agent::write_fixture(&dir, &gpus).unwrap();
        AgentConfig {
            host: host.to_owned(),
            site: site.to_owned(),
            interval: Duration::from_millis(interval_ms),
            jitter_percent: 0,
            nvml_library: binary("libveu_fake_nvml.so"),
            endpoint: format!("https://127.0.0.1:{port}"),
            ca: collector.dir.join("pki/ca.pem"),
            extra: extra.to_owned(),
        }
        .write(&dir)
        .unwrap();
        let token = collector.token(site);
        agent::enroll(binaries(), &dir, &token).unwrap_or_else(|error| panic!("{error}"));
        let mut agent = Self {
            host: host.to_owned(),
            dir,
            process: None,
        };
        agent.spawn();
        agent
    }

    fn spawn(&mut self) {
        let mut command = agent::run_command(binaries(), &self.dir).unwrap();
        self.process = Some(Process::spawn(&self.host, &mut command).unwrap());
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().unwrap();
        }
    }

    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "still running");
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    /// Its directory: `agent.toml`, `state/`, `tls/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Polls `probe` every 100 ms until it holds, or panics with `what` after `limit`.
pub fn eventually(limit: Duration, what: &str, mut probe: impl FnMut() -> bool) {
    veu_fleet::wait_for(what, limit, Duration::from_millis(100), || {
        Ok::<_, veu_fleet::TimedOut>(probe().then_some(()))
    })
    .unwrap_or_else(|error| panic!("{error}"));
}

fn copy_tree(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        std::fs::copy(entry.path(), &target).unwrap();
    }
}

/// A TCP relay on 127.0.0.1 that forwards each new connection to the backend port it is set
/// to: a load balancer in front of collector replicas. Connections already relayed stay with
/// their backend until it goes away.
pub struct Relay {
    pub port: u16,
    backend: std::sync::Arc<std::sync::atomic::AtomicU16>,
}

impl Relay {
    pub fn start(backend: u16) -> Self {
        use std::sync::atomic::{AtomicU16, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = std::sync::Arc::new(AtomicU16::new(backend));
        let shared = std::sync::Arc::clone(&target);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let backend = shared.load(Ordering::Relaxed);
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", backend)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Self {
            port,
            backend: target,
        }
    }

    /// New connections go to `backend` from now on.
    pub fn switch(&self, backend: u16) {
        self.backend
            .store(backend, std::sync::atomic::Ordering::Relaxed);
    }
}
