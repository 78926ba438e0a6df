//! The agent's TOML configuration: `RawConfig` as written, validated into `Config` with every
//! error reported with its key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use proto_config::ConfigErrors;
use proto_config::{parse_duration, parse_size};
use serde::Deserialize;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    host_id: Option<String>,
    site_id: String,
    state_dir: PathBuf,
    #[serde(default)]
    attestation: RawAttestation,
    #[serde(default)]
    nvml: RawNvml,
    #[serde(default)]
    rules: RawRules,
    collector: Option<RawCollector>,
    #[serde(default)]
    spool: RawSpool,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    metrics: RawMetrics,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAttestation {
    interval: Option<String>,
    jitter_percent: Option<u32>,
    watch_interval: Option<String>,
    shutdown_grace: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNvml {
    library: Option<PathBuf>,
    timeout: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRules {
    catalogue: Option<PathBuf>,
    policy: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollector {
    endpoint: String,
    server_name: Option<String>,
    ca: PathBuf,
    certificate: PathBuf,
    key: PathBuf,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSpool {
    max_entries: Option<usize>,
    max_bytes: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
    level: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
}

impl Config {
    /// Reads and validates `path`. Files the configuration names (TLS material, rules) must
    /// exist and be readable.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let fail = |key: &str, message: String| ConfigErrors {
            path: path.to_path_buf(),
            errors: vec![(key.to_owned(), message)],
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| fail("file", format!("cannot read: {e}")))?;
        let config = Self::parse(&text, path)?;
        let mut missing = config.unreadable_files();
        if let Some(hint) = config.not_enrolled(path) {
            missing.retain(|(key, _)| key != "collector.certificate" && key != "collector.key");
            missing.push(("collector.certificate".to_owned(), hint));
        }
        if missing.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors {
                path: path.to_path_buf(),
                errors: missing,
            })
        }
    }

    /// What to do when the collector section names no certificate and key yet: the host has
    /// not enrolled. `None` when either exists (an unreadable one is reported as such).
    fn not_enrolled(&self, path: &Path) -> Option<String> {
        let collector = self.collector.as_ref()?;
        if collector.certificate.exists() || collector.key.exists() {
            return None;
        }
        Some(format!(
            "not enrolled yet: {} and {} do not exist; run `veu-agent enroll --config {} --token TOKEN` with a one-time token from `veuctl enroll-token --site {}`",
            collector.certificate.display(),
            collector.key.display(),
            path.display(),
            self.site_id
        ))
    }

    /// Files the configuration names that cannot be opened, with their keys.
    pub fn unreadable_files(&self) -> Vec<(String, String)> {
        let mut files: Vec<(&str, &Path)> = Vec::new();
        if let Some(file) = &self.catalogue {
            files.push(("rules.catalogue", file));
        }
        if let Some(file) = &self.policy {
            files.push(("rules.policy", file));
        }
        if let Some(c) = &self.collector {
            files.push(("collector.ca", &c.ca));
            files.push(("collector.certificate", &c.certificate));
            files.push(("collector.key", &c.key));
        }
        files
            .into_iter()
            .filter_map(|(key, file)| {
                std::fs::File::open(file).err().map(|e| {
                    (
                        key.to_owned(),
                        format!("cannot read {}: {e}", file.display()),
                    )
                })
            })
            .collect()
    }

    /// Validates configuration text without touching the files it names; `path` names it in
    /// errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| ConfigErrors {
            path: path.to_path_buf(),
            errors: vec![(
                "syntax".to_owned(),
                error.to_string().trim().replace('\n', " "),
            )],
        })?;
        let mut errors: Vec<(String, String)> = Vec::new();
        let mut error = |key: &str, message: String| errors.push((key.to_owned(), message));

        let host_id = match raw.host_id {
            Some(id) => id,
            None => default_host_id(),
        };
        check_id("host_id", &host_id, &mut error);
        check_id("site_id", &raw.site_id, &mut error);

        let mut duration =
            |key: &str, value: Option<&str>, default: Duration, min: Duration| match value
                .map(parse_duration)
            {
                None => default,
                Some(Ok(d)) if d >= min => d,
                Some(Ok(_)) => {
                    error(key, format!("must be at least {}", format_duration(min)));
                    default
                }
                Some(Err(message)) => {
                    error(key, message);
                    default
                }
            };
        let interval = duration(
            "attestation.interval",
            raw.attestation.interval.as_deref(),
            Duration::from_secs(60),
            Duration::from_millis(100),
        );
        let watch_interval = duration(
            "attestation.watch_interval",
            raw.attestation.watch_interval.as_deref(),
            Duration::from_secs(10),
            Duration::from_millis(100),
        );
        let shutdown_grace = duration(
            "attestation.shutdown_grace",
            raw.attestation.shutdown_grace.as_deref(),
            Duration::from_secs(10),
            Duration::ZERO,
        );
        let nvml_timeout = duration(
            "nvml.timeout",
            raw.nvml.timeout.as_deref(),
            Duration::from_secs(10),
            Duration::from_millis(100),
        );
        let jitter_percent = raw.attestation.jitter_percent.unwrap_or(10);
        if jitter_percent > 50 {
            error(
                "attestation.jitter_percent",
                "must be between 0 and 50".into(),
            );
        }

        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
        let catalogue = raw.rules.catalogue.map(resolve);
        let policy = raw.rules.policy.map(resolve);
        let collector = raw.collector.map(|c| {
            let (ca, certificate, key) = (resolve(c.ca), resolve(c.certificate), resolve(c.key));
            let server_name = c
                .server_name
                .unwrap_or_else(|| proto_config::url_host(&c.endpoint).unwrap_or_default());
            Collector {
                endpoint: c.endpoint,
                server_name,
                ca,
                certificate,
                key,
            }
        });
        if let Some(c) = &collector {
            if !c.endpoint.starts_with("https://") {
                error(
                    "collector.endpoint",
                    format!("{:?} must be an https:// URL", c.endpoint),
                );
            }
            if c.server_name.is_empty() {
                error(
                    "collector.server_name",
                    "cannot be derived from the endpoint; set it".into(),
                );
            }
        }

        let spool_max_bytes = match raw.spool.max_bytes.as_deref().map(parse_size) {
            None => 64 << 20,
            Some(Ok(bytes)) if bytes >= 1 << 20 => bytes,
            Some(Ok(_)) => {
                error("spool.max_bytes", "must be at least 1MiB".into());
                64 << 20
            }
            Some(Err(message)) => {
                error("spool.max_bytes", message);
                64 << 20
            }
        };
        let spool_max_entries = raw.spool.max_entries.unwrap_or(10_080);
        if spool_max_entries < 10 {
            error("spool.max_entries", "must be at least 10".into());
        }
        let log_level = match raw
            .log
            .level
            .as_deref()
            .unwrap_or("info")
            .parse::<tracing::Level>()
        {
            Ok(level) => level,
            Err(_) => {
                error(
                    "log.level",
                    "must be one of error, warn, info, debug, trace".into(),
                );
                tracing::Level::INFO
            }
        };
        let metrics_listen = raw
            .metrics
            .listen
            .as_deref()
            .and_then(|text| match text.parse() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    error(
                        "metrics.listen",
                        format!("{text:?} is not an address like 127.0.0.1:9464"),
                    );
                    None
                }
            });

        if !errors.is_empty() {
            return Err(ConfigErrors {
                path: path.to_path_buf(),
                errors,
            });
        }
        Ok(Config {
            host_id,
            site_id: raw.site_id,
            state_dir: resolve(raw.state_dir),
            interval,
            jitter_percent,
            watch_interval,
            nvml_timeout,
            nvml_library: raw.nvml.library.map(resolve),
            catalogue,
            policy,
            collector,
            spool_max_entries,
            spool_max_bytes,
            log_format: raw.log.format.unwrap_or(LogFormat::Text),
            log_level,
            metrics_listen,
            shutdown_grace,
        })
    }
}

fn check_id(key: &str, value: &str, error: &mut impl FnMut(&str, String)) {
    if let Err(message) = proto_config::check_id(value) {
        error(key, message);
    }
}

fn format_duration(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
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
        let missing: Vec<String> = config
            .unreadable_files()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            missing,
            ["collector.ca", "collector.certificate", "collector.key"]
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
                .starts_with("/etc/veu-agent/agent.toml has 8 error(s):")
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
