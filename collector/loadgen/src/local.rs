//! A real `veu-collector` process on 127.0.0.1 for the benchmark and the tests: development PKI,
//! a site registry, the simulated-evidence policy and metrics, in a directory the caller owns.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use collector_client::ClientError;
use proto_wire::v1;
use proto_wire::v1::audit_client::AuditClient;

use crate::inventory::SIMULATED_POLICY_TOML;
use crate::transport::{Credential, Target};

/// Six sites in five countries (one tier-2), enough to spread a fleet realistically.
pub const SITES: &[(&str, &str)] = &[
    ("us-va-1", "US"),
    ("us-tx-1", "US"),
    ("de-fra-1", "DE"),
    ("jp-tyo-1", "JP"),
    ("gb-lon-1", "GB"),
    ("in-bom-1", "IN"),
];

/// How long the collector may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long it may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A collector that could not be started or asked.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The binary is not built.
    #[error("{path} is missing: build it first with `{command}`")]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
        /// The command that builds it.
        command: &'static str,
    },
    /// A file or process operation failed.
    #[error("cannot {what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        error: std::io::Error,
    },
    /// `pki init` or `run` failed.
    #[error("veu-collector {what} failed:\n{log}")]
    Failed {
        /// Which command.
        what: &'static str,
        /// Its output.
        log: String,
    },
    /// Its PKI could not be read back.
    #[error(transparent)]
    Pki(#[from] ClientError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LocalError {
    let what = what.into();
    move |error| LocalError::Io { what, error }
}

/// `veu-collector` beside the running executable: in `target/<profile>/` for a binary, one level
/// up for a test or bench in `target/<profile>/deps/` (`CARGO_BIN_EXE_*` exists only for a
/// crate's own binaries).
pub fn collector_binary() -> Result<PathBuf, LocalError> {
    let exe = std::env::current_exe().map_err(io("find the running executable"))?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("veu-collector");
    if path.is_file() {
        return Ok(path);
    }
    let command = if dir.ends_with("release") {
        "cargo build --release -p collector-daemon"
    } else {
        "cargo build -p collector-daemon"
    };
    Err(LocalError::Missing { path, command })
}

/// A running collector; stopped (SIGKILL) when dropped unless [`LocalCollector::stop`] ran.
#[derive(Debug)]
pub struct LocalCollector {
    child: Child,
    dir: PathBuf,
    /// Where to reach it.
    pub target: Target,
    /// The admin client certificate `pki init` made.
    pub admin: Credential,
    /// Its gRPC address.
    pub listen: SocketAddr,
    /// Its Prometheus endpoint.
    pub metrics: SocketAddr,
    /// The site ids of its registry.
    pub sites: Vec<String>,
}

impl LocalCollector {
    /// Initialises a PKI, a registry of `sites` `(id, country)`, the simulated-evidence policy
    /// and a configuration in `dir`, starts `binary run`, and waits until it listens.
    pub fn start(binary: &Path, dir: &Path, sites: &[(&str, &str)]) -> Result<Self, LocalError> {
        Self::start_with_store(binary, dir, sites, None)
    }

    /// `start` with `store = URL` (a PostgreSQL database) when given.
    pub fn start_with_store(
        binary: &Path,
        dir: &Path,
        sites: &[(&str, &str)],
        store: Option<&str>,
    ) -> Result<Self, LocalError> {
        let pki = dir.join("pki");
        let output = Command::new(binary)
            .args(["pki", "init", "--server-name", "127.0.0.1", "--dir"])
            .arg(&pki)
            .output()
            .map_err(io(format!("run {}", binary.display())))?;
        if !output.status.success() {
            return Err(LocalError::Failed {
                what: "pki init",
                log: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        let registry: String = sites
            .iter()
            .map(|(id, country)| {
                format!("[[site]]\nid = \"{id}\"\ncountry = \"{country}\"\nname = \"{id}\"\n\n")
            })
            .collect();
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).map_err(io(format!("write {name}")))
        };
        write("sites.toml", &registry)?;
        write("policy.toml", SIMULATED_POLICY_TOML)?;
        let [listen, metrics] = free_addresses()?;
        let store = store
            .map(|url| format!("store = \"{url}\"\n"))
            .unwrap_or_default();
        write(
            "collector.toml",
            &format!(
                "{store}listen = \"{listen}\"\nstate_dir = \"state\"\nsites = \"sites.toml\"\n\n\
                 [tls]\ncertificate = \"pki/server.pem\"\nkey = \"pki/server.key\"\nclient_ca = \"pki/ca.pem\"\n\n\
                 [enrollment]\nca_dir = \"pki\"\n\n[rules]\npolicy = \"policy.toml\"\n\n\
                 [connections]\n# Every simulated agent connects from 127.0.0.1: the per-address cap is the total.\n\
                 max_connections = 110000\nmax_connections_per_ip = 110000\nmax_handshakes = 4096\n\n\
                 [metrics]\nlisten = \"{metrics}\"\n\n[log]\nlevel = \"warn\"\n"
            ),
        )?;
        let sites: Vec<String> = sites.iter().map(|(id, _)| (*id).to_owned()).collect();
        Self::spawn(binary, dir, listen, metrics, sites)
    }

    /// Another replica on the same store (a PostgreSQL database): this one's PKI, sites,
    /// policy, log key and nonce secret, its own ports and state directory.
    pub fn replica(&self, binary: &Path, dir: &Path) -> Result<Self, LocalError> {
        let state = dir.join("state");
        std::fs::create_dir_all(&state).map_err(io("create the replica's state"))?;
        let pki = dir.join("pki");
        std::fs::create_dir_all(&pki).map_err(io("create the replica's pki"))?;
        for entry in std::fs::read_dir(self.dir.join("pki")).map_err(io("read the pki"))? {
            let entry = entry.map_err(io("read the pki"))?;
            std::fs::copy(entry.path(), pki.join(entry.file_name())).map_err(io("copy the pki"))?;
        }
        for (from, to) in [
            (self.dir.join("sites.toml"), dir.join("sites.toml")),
            (self.dir.join("policy.toml"), dir.join("policy.toml")),
            (self.dir.join("state/log.key"), state.join("log.key")),
            (self.dir.join("state/nonce.key"), state.join("nonce.key")),
        ] {
            std::fs::copy(&from, &to).map_err(io(format!("copy {}", from.display())))?;
        }
        let [listen, metrics] = free_addresses()?;
        let config = std::fs::read_to_string(self.dir.join("collector.toml"))
            .map_err(io("read collector.toml"))?
            .replace(&self.listen.to_string(), &listen.to_string())
            .replace(&self.metrics.to_string(), &metrics.to_string());
        std::fs::write(dir.join("collector.toml"), config).map_err(io("write collector.toml"))?;
        Self::spawn(binary, dir, listen, metrics, self.sites.clone())
    }

    fn spawn(
        binary: &Path,
        dir: &Path,
        listen: SocketAddr,
        metrics: SocketAddr,
        sites: Vec<String>,
    ) -> Result<Self, LocalError> {
        let pki = dir.join("pki");
        let log =
            std::fs::File::create(dir.join("collector.log")).map_err(io("create collector.log"))?;
        let child = Command::new(binary)
            .arg("run")
            .arg("--config")
            .arg(dir.join("collector.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(io(format!("start {}", binary.display())))?;
        let mut collector = Self {
            child,
            dir: dir.to_path_buf(),
            target: Target::from_pki_dir(&format!("https://{listen}"), "127.0.0.1", &pki)?,
            admin: Credential::from_pki_dir(&pki, "admin")?,
            listen,
            metrics,
            sites,
        };
        let started = Instant::now();
        while TcpStream::connect(listen).is_err() {
            if let Ok(Some(_)) = collector.child.try_wait() {
                return Err(LocalError::Failed {
                    what: "run",
                    log: collector.log(),
                });
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(LocalError::Failed {
                    what: "run (not listening after 30 s)",
                    log: collector.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(collector)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user and system) the collector has used so far.
    pub fn cpu_seconds(&self) -> Option<f64> {
        process_cpu_seconds(self.child.id())
    }

    /// Resident memory of the collector now, from `/proc/<pid>/status`.
    pub fn rss_bytes(&self) -> Option<u64> {
        process_rss_bytes(self.child.id())
    }

    /// SIGKILL, then starts it again on the same directory (store, keys, ports), as a crash
    /// and a supervisor's restart would; returns once it listens again.
    pub fn kill_and_restart(&mut self, binary: &Path) -> Result<(), LocalError> {
        self.child.kill().map_err(io("kill the collector"))?;
        self.child.wait().map_err(io("wait for the collector"))?;
        let restarted = Self::spawn(
            binary,
            &self.dir,
            self.listen,
            self.metrics,
            self.sites.clone(),
        )?;
        // The old child is reaped: replacing it drops nothing that still runs.
        *self = restarted;
        Ok(())
    }

    /// The size of the collector's transparency log now (a head signed on request with the
    /// admin's certificate): one leaf per stored attestation and per enrolment.
    pub async fn log_size(&self) -> Result<u64, LocalError> {
        let failed =
            |what: &'static str| move |error: String| LocalError::Failed { what, log: error };
        let channel = self.target.connect(Some(&self.admin)).await?;
        let head = AuditClient::new(channel)
            .tree_head(v1::TreeHeadRequest {
                tree_size: 0,
                sign_now: true,
            })
            .await
            .map_err(|status| failed("TreeHead")(status.to_string()))?;
        Ok(head.into_inner().tree_size)
    }

    /// Its `/metrics` text.
    pub fn scrape(&self) -> Result<String, LocalError> {
        let mut stream = TcpStream::connect(self.metrics).map_err(io("connect to /metrics"))?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .map_err(io("ask /metrics"))?;
        let mut body = String::new();
        stream
            .read_to_string(&mut body)
            .map_err(io("read /metrics"))?;
        Ok(body)
    }

    /// The value of an unlabelled metric (`veu_collector_gpu_conflicts_total`), if present.
    pub fn metric(&self, name: &str) -> Result<Option<f64>, LocalError> {
        Ok(self.scrape()?.lines().find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        }))
    }

    /// Bytes of `collector.db` and its WAL and shared-memory files.
    pub fn database_bytes(&self) -> u64 {
        let state = self.dir.join("state");
        std::fs::read_dir(state)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("collector.db")
            })
            .filter_map(|entry| entry.metadata().ok())
            .map(|metadata| metadata.len())
            .sum()
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("collector.log")).unwrap_or_default()
    }

    /// SIGTERM, then waits for a clean exit (the store closes and checkpoints its WAL).
    pub fn stop(&mut self) -> Result<(), LocalError> {
        if let Ok(Some(_)) = self.child.try_wait() {
            return Ok(());
        }
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(io("send SIGTERM to the collector"))?;
        let asked = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(_)) => {
                    return Err(LocalError::Failed {
                        what: "run (exit after SIGTERM)",
                        log: self.log(),
                    });
                }
                Ok(None) if asked.elapsed() < STOP_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(None) => {
                    return Err(LocalError::Failed {
                        what: "run (still running 20 s after SIGTERM)",
                        log: self.log(),
                    });
                }
                Err(error) => return Err(io("wait for the collector")(error)),
            }
        }
    }
}

impl Drop for LocalCollector {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// User plus system CPU seconds of process `pid`, from `/proc/<pid>/stat`.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    /// USER_HZ: clock ticks per second in `/proc`, 100 on Linux.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// Resident memory (`VmRSS`) of process `pid` in bytes, from `/proc/<pid>/status`.
pub fn process_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Raises this process's soft limit on open files to its hard limit (processes it starts
/// inherit it): each simulated agent holds a connection, and so does the collector for each.
/// Returns the soft limit before and after.
pub fn raise_open_files_limit() -> Result<(u64, u64), LocalError> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let before = limit.current.unwrap_or(u64::MAX);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit).map_err(|error| LocalError::Io {
        what: "raise the open files limit".into(),
        error: error.into(),
    })?;
    Ok((before, limit.current.unwrap_or(u64::MAX)))
}

/// Two distinct ports on 127.0.0.1 free now (the collector binds them a moment later). Both
/// listeners are held until both are chosen, or the system could hand out one port twice.
fn free_addresses() -> Result<[SocketAddr; 2], LocalError> {
    let bind = || TcpListener::bind("127.0.0.1:0").map_err(io("find a free port"));
    let (first, second) = (bind()?, bind()?);
    let address = |listener: &TcpListener| listener.local_addr().map_err(io("find a free port"));
    Ok([address(&first)?, address(&second)?])
}
