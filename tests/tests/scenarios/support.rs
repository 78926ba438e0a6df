//! Real binaries as processes: a development PKI, a collector, simulated agents, veuctl.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The workspace's binaries, built by `cargo test --workspace` (or `cargo build --workspace`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/<name>; a cdylib built only as another
    // crate's dev-dependency stays in deps/.
    let profile = exe.parent().unwrap().parent().unwrap();
    let path = [profile.join(name), profile.join("deps").join(name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| profile.join(name));
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test --workspace` (or `cargo build --workspace` first)",
        path.display()
    );
    path
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A free port on 127.0.0.1 that no other call in this test process was given: the system
/// may hand a just-released port out again, and two daemons of one scenario must not share it.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A collector process on a fresh state directory, killed when dropped.
pub struct Collector {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
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
        let status = Command::new(binary("veu-collector"))
            .args(["pki", "init", "--server-name", "127.0.0.1", "--dir"])
            .arg(dir.join("pki"))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pki init failed");
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
        let store = store
            .map(|url| format!("store = \"{url}\"\n"))
            .unwrap_or_default();
        std::fs::write(
            dir.join("collector.toml"),
            format!(
                "{store}listen = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\nsites = \"sites.toml\"\n\
                 [tls]\ncertificate = \"pki/server.pem\"\nkey = \"pki/server.key\"\nclient_ca = \"pki/ca.pem\"\n\
                 [enrollment]\nca_dir = \"pki\"\n\
                 [rules]\npolicy = \"{}\"\n\
                 [audit]\ntree_head_every = \"1s\"\n{audit}",
                policy.display()
            ),
        )
        .unwrap();
        let mut collector = Self {
            dir: dir.to_path_buf(),
            port,
            child: None,
        };
        collector.spawn();
        collector
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.join("collector.log")).unwrap();
        let child = Command::new(binary("veu-collector"))
            .arg("run")
            .arg("--config")
            .arg(self.dir.join("collector.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the collector did not listen: {}",
                std::fs::read_to_string(self.dir.join("collector.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
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

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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

/// The UTC month (YYYY-MM) and its bounds around `ms`.
pub fn month_of(ms: i64) -> (String, String, String) {
    let days = ms.div_euclid(86_400_000);
    let (year, month, _) = civil_from_days(days);
    let next = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    (
        format!("{year:04}-{month:02}"),
        format!("{year:04}-{month:02}-01"),
        format!("{:04}-{:02}-01", next.0, next.1),
    )
}

/// The UTC date (YYYY-MM-DD) of `ms`, and the first millisecond of its month.
pub fn date_of(ms: i64) -> (String, i64) {
    let days = ms.div_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        (days - i64::from(day) + 1) * 86_400_000,
    )
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
            child: None,
        };
        replica.spawn();
        replica
    }

    /// SIGKILL: no chance to flush or close anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts it again on the same port, state and configuration.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
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
    child: Option<Child>,
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
        for (index, device) in gpus["devices"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            device["uuid"] = format!("GPU-{host}-{index}").into();
            device["serial"] = format!("SN-{host}-{index}").into();
        }
        edit(&dir, &mut gpus);
        std::fs::write(dir.join("nvml.json"), gpus.to_string()).unwrap();
        std::fs::write(
            dir.join("agent.toml"),
            format!(
                "host_id = \"{host}\"\nsite_id = \"{site}\"\nstate_dir = \"state\"\n\
                 [attestation]\ninterval = \"{interval_ms}ms\"\njitter_percent = 0\nwatch_interval = \"500ms\"\n\
                 [nvml]\nlibrary = \"{}\"\n\
                 [collector]\nendpoint = \"https://127.0.0.1:{port}\"\nserver_name = \"127.0.0.1\"\nca = \"{}\"\n\
                 certificate = \"tls/agent.pem\"\nkey = \"tls/agent.key\"\n{extra}",
                binary("libveu_fake_nvml.so").display(),
                collector.dir.join("pki/ca.pem").display()
            ),
        )
        .unwrap();
        let token = collector.token(site);
        ok(&Command::new(binary("veu-agent"))
            .args(["enroll", "--config", "agent.toml", "--token", &token])
            .current_dir(&dir)
            .output()
            .unwrap());
        let mut agent = Self {
            host: host.to_owned(),
            dir,
            child: None,
        };
        agent.spawn();
        agent
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("agent.log"))
            .unwrap();
        self.child = Some(
            Command::new(binary("veu-agent"))
                .args(["run", "--config", "agent.toml"])
                .env("VEU_FAKE_NVML_FIXTURE", self.dir.join("nvml.json"))
                .current_dir(&self.dir)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
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

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `probe` every 100 ms until it holds, or panics with `what` after `limit`.
pub fn eventually(limit: Duration, what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !probe() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
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
