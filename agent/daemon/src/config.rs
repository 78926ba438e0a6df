//! The agent's TOML configuration, read in one pass that reports every problem with its key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use proto_config::ConfigErrors;
use proto_config::{Problems, parse_size};
use serde::Deserialize;

/// Whether and how long: the `[gpu_evidence]` section of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuEvidenceSettings {
    /// Collect reports at all.
    pub enabled: bool,
    /// Deadline for all devices of one collection together.
    pub timeout: Duration,
}

/// The `[location]` section: the landmarks that measure this host's round trips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationSettings {
    /// Landmarks as `host:port`; none turns the probes off.
    pub landmarks: Vec<String>,
    /// Mean time between probes of each landmark.
    pub interval: Duration,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub host_id: String,
    pub site_id: String,
    pub state_dir: PathBuf,
    pub interval: Duration,
    pub jitter_percent: u32,
    pub watch_interval: Duration,
    pub nvml_timeout: Duration,
    pub nvml_library: Option<PathBuf>,
    pub gpu_evidence: GpuEvidenceSettings,
    pub location: LocationSettings,
    pub catalogue: Option<PathBuf>,
    pub policy: Option<PathBuf>,
    pub collector: Option<Collector>,
    pub spool_max_entries: usize,
    pub spool_max_bytes: u64,
    pub log_format: LogFormat,
    pub log_level: tracing::Level,
    pub metrics_listen: Option<SocketAddr>,
    pub shutdown_grace: Duration,
}

/// Where to send attestations.
#[derive(Debug, Clone)]
pub struct Collector {
    pub endpoint: String,
    pub server_name: String,
    pub ca: PathBuf,
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// Validates configuration text without touching the files it names; `path` names it in
    /// errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        proto_config::document::checked(text, path, Self::read)
    }

    /// Reads text, recording every problem in `problems` and going on past each: a value with
    /// a problem is replaced by its default (an empty path or id when it has none), so that
    /// the checks that follow see every other value. Only syntax errors stop it, all of them
    /// reported. The result is a valid configuration only when `problems` stayed empty.
    pub fn read(text: &str, path: &Path, problems: &Problems) -> Result<Config, ConfigErrors> {
        let mut root = proto_config::document::root(text, path, problems)?;
        let tenth = Duration::from_millis(100);

        let host_id = root
            .optional::<String>("host_id")
            .unwrap_or_else(default_host_id);
        root.check_id("host_id", &host_id);
        let site_id = root.required_id("site_id");
        let state_dir = root.required_path("state_dir");

        let mut attestation = root.table("attestation");
        let interval = attestation.duration_at_least("interval", Duration::from_secs(60), tenth);
        let jitter_percent = attestation.optional::<u32>("jitter_percent").unwrap_or(10);
        if jitter_percent > 50 {
            attestation.problem("jitter_percent", "must be between 0 and 50");
        }
        let watch_interval =
            attestation.duration_at_least("watch_interval", Duration::from_secs(10), tenth);
        let shutdown_grace = attestation.duration_at_least(
            "shutdown_grace",
            Duration::from_secs(10),
            Duration::ZERO,
        );
        drop(attestation);

        let mut nvml = root.table("nvml");
        let nvml_library = nvml.path("library");
        let nvml_timeout = nvml.duration_at_least("timeout", Duration::from_secs(10), tenth);
        drop(nvml);

        let mut evidence = root.table("gpu_evidence");
        let gpu_evidence = GpuEvidenceSettings {
            enabled: evidence.optional::<bool>("enabled").unwrap_or(true),
            timeout: evidence.duration_at_least("timeout", Duration::from_secs(10), tenth),
        };
        drop(evidence);

        let mut section = root.table("location");
        let landmarks = section
            .optional::<Vec<String>>("landmarks")
            .unwrap_or_default();
        for (index, landmark) in landmarks.iter().enumerate() {
            if let Err(message) = check_landmark(landmark) {
                section.problem(&format!("landmarks[{index}]"), message);
            }
        }
        let location = LocationSettings {
            landmarks,
            interval: section.duration_at_least(
                "interval",
                Duration::from_secs(3600),
                Duration::from_secs(60),
            ),
        };
        drop(section);

        let mut rules = root.table("rules");
        let catalogue = rules.path("catalogue");
        let policy = rules.path("policy");
        drop(rules);

        let collector = root.has("collector").then(|| {
            let mut section = root.table("collector");
            let endpoint = section.required::<String>("endpoint").unwrap_or_default();
            let server_name = section.optional::<String>("server_name");
            let ca = section.required_path("ca");
            let certificate = section.required_path("certificate");
            let key = section.required_path("key");
            section.check_https("endpoint", &endpoint);
            let server_name =
                section.server_name("server_name", server_name, "endpoint", &endpoint);
            Collector {
                endpoint,
                server_name,
                ca,
                certificate,
                key,
            }
        });

        let mut spool = root.table("spool");
        let spool_max_entries = spool.optional::<usize>("max_entries").unwrap_or(10_080);
        if spool_max_entries < 10 {
            spool.problem("max_entries", "must be at least 10");
        }
        let spool_max_bytes = match spool
            .optional::<String>("max_bytes")
            .map(|t| parse_size(&t))
        {
            None => 64 << 20,
            Some(Ok(bytes)) if bytes >= 1 << 20 => bytes,
            Some(Ok(_)) => {
                spool.problem("max_bytes", "must be at least 1MiB");
                64 << 20
            }
            Some(Err(message)) => {
                spool.problem("max_bytes", message);
                64 << 20
            }
        };
        drop(spool);

        let mut log = root.table("log");
        let log_format = log
            .optional::<LogFormat>("format")
            .unwrap_or(LogFormat::Text);
        let log_level = log.log_level("level").unwrap_or(tracing::Level::INFO);
        drop(log);

        let metrics_listen = root.table("metrics").address("listen", "127.0.0.1:9464");
        drop(root);

        Ok(Config {
            host_id,
            site_id,
            state_dir,
            interval,
            jitter_percent,
            watch_interval,
            nvml_timeout,
            nvml_library,
            gpu_evidence,
            location,
            catalogue,
            policy,
            collector,
            spool_max_entries,
            spool_max_bytes,
            log_format,
            log_level,
            metrics_listen,
            shutdown_grace,
        })
    }
}

/// A landmark's address: `host:port`, the host a name or an address (IPv6 in brackets), the
/// port 1 to 65535.
fn check_landmark(address: &str) -> Result<(), String> {
    let invalid =
        || format!("{address:?} is not a landmark address like landmark.example.org:7450");
    let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
    let port_ok = port.parse::<u16>().is_ok_and(|port| port != 0);
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            !host.is_empty()
                && host.len() <= 253
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        }
    };
    if port_ok && host_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// `host_id` when the file has none: `VEU_HOST_ID` when set and not empty (a Kubernetes
/// DaemonSet passes the node name so, since a pod's host name is the pod's), else the host name.
fn default_host_id() -> String {
    std::env::var("VEU_HOST_ID")
        .ok()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| agent_host::read().hostname)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(text, Path::new("/etc/veu-agent/agent.toml"))
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let config =
            parse("site_id = \"us-va-1\"\nstate_dir = \"/var/lib/veu-agent\"\nhost_id = \"gpu-1\"")
                .unwrap();
        assert_eq!(config.interval, Duration::from_secs(60));
        assert_eq!(config.jitter_percent, 10);
        assert_eq!(config.spool_max_entries, 10_080);
        assert_eq!(config.spool_max_bytes, 64 << 20);
        assert!(config.collector.is_none());
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(
            config.gpu_evidence,
            GpuEvidenceSettings {
                enabled: true,
                timeout: Duration::from_secs(10)
            }
        );
    }

    #[test]
    fn gpu_evidence_can_be_turned_off_and_its_deadline_set() {
        let base = "site_id = \"s\"\nstate_dir = \"/x\"\nhost_id = \"h\"\n[gpu_evidence]\n";
        let config = parse(&format!("{base}enabled = false\ntimeout = \"2500ms\"")).unwrap();
        assert!(!config.gpu_evidence.enabled);
        assert_eq!(config.gpu_evidence.timeout, Duration::from_millis(2500));
        let errors = parse(&format!("{base}enabled = \"yes\"\ntimeout = \"5ms\"")).unwrap_err();
        let keys: Vec<&str> = errors.errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["gpu_evidence.enabled", "gpu_evidence.timeout"],
            "{errors}"
        );
    }

    #[test]
    fn location_probes_are_off_by_default_and_every_bad_landmark_is_named() {
        let base = "site_id = \"s\"\nstate_dir = \"/x\"\nhost_id = \"h\"\n";
        let config = parse(base).unwrap();
        assert!(config.location.landmarks.is_empty());
        assert_eq!(config.location.interval, Duration::from_secs(3600));
        let config = parse(&format!(
            "{base}[location]\nlandmarks = [\"fra-1.example.org:7450\", \"192.0.2.7:7450\", \"[2001:db8::1]:7450\"]\ninterval = \"30m\""
        ))
        .unwrap();
        assert_eq!(config.location.landmarks.len(), 3);
        assert_eq!(config.location.interval, Duration::from_secs(1800));
        let errors = parse(&format!(
            "{base}[location]\nlandmarks = [\"ok.example:7450\", \"noport\", \"a b:1\", \"x:0\", \"[::1:7450\"]\ninterval = \"5s\"\nlandmark = 1"
        ))
        .unwrap_err();
        let keys: Vec<&str> = errors.errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "location.landmarks[1]",
                "location.landmarks[2]",
                "location.landmarks[3]",
                "location.landmarks[4]",
                "location.interval",
                "location.landmark",
            ],
            "{errors}"
        );
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/agent/agent.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let config = Config::parse(&text, &path).unwrap();
        assert_eq!(config.site_id, "us-va-ashburn-1");
        assert_eq!(
            config.collector.as_ref().unwrap().server_name,
            "collector.example.com"
        );
        assert_eq!(
            config.metrics_listen,
            Some("127.0.0.1:9464".parse().unwrap())
        );
    }

    #[test]
    fn the_kubernetes_config_is_valid() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/agent/agent.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        // The DaemonSet passes the node name in VEU_HOST_ID, which only applies without host_id.
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with("host_id")),
            "{text}"
        );
        let config = Config::parse(&text, &path).unwrap();
        assert_eq!(config.site_id, "us-va-ashburn-1");
        assert_eq!(config.state_dir, Path::new("/var/lib/veu-agent"));
        let metrics = config.metrics_listen.unwrap();
        assert!(metrics.ip().is_unspecified() && metrics.port() == 9464);
        assert_eq!(
            config.nvml_library, None,
            "the runtime mounts libnvidia-ml.so.1"
        );
        let collector = config.collector.unwrap();
        // Written per node by enrollment into the hostPath state directory.
        assert!(collector.certificate.starts_with(&config.state_dir));
        assert!(collector.key.starts_with(&config.state_dir));
        assert_eq!(collector.ca, Path::new("/etc/veu-agent/tls/ca.pem"));
        assert_eq!(collector.server_name, "veu-collector.veu-attest.svc");
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let text = r#"
host_id = "gpu 1"
site_id = ""
state_dir = "state"
[attestation]
interval = "soon"
jitter_percent = 90
[collector]
endpoint = "http://collector:7443"
ca = "/nonexistent/ca.pem"
certificate = "/nonexistent/agent.pem"
key = "/nonexistent/agent.key"
[spool]
max_bytes = "12 apples"
[log]
level = "loud"
[metrics]
listen = "everywhere"
"#;
        let errors = parse(text).unwrap_err();
        let keys: Vec<&str> = errors.errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "host_id",
                "site_id",
                "attestation.interval",
                "attestation.jitter_percent",
                "collector.endpoint",
                "spool.max_bytes",
                "log.level",
                "metrics.listen",
            ],
            "{errors}"
        );
        assert!(
            errors
                .to_string()
                .starts_with("/etc/veu-agent/agent.toml has 8 errors:")
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let errors =
            parse("site_id = \"s\"\nstate_dir = \"/x\"\n[attestation]\nintervall = \"5s\"")
                .unwrap_err();
        assert!(errors.to_string().contains("intervall"), "{errors}");
    }
}
