//! The collector's TOML configuration, read in one pass that reports every problem with its key.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use collector_app::witnesses::{WitnessTarget, is_cosignature_key};
pub use proto_config::ConfigErrors;
use proto_config::{Problems, Section};
use proto_note::VerifierKey;

/// The shortest duration a setting may have: durations are read in milliseconds, so any
/// above zero.
const MIN_DURATION: Duration = Duration::from_millis(1);

/// The longest organisation name a report carries, in characters.
const MAX_ORGANISATION_CHARS: usize = 200;

/// Where the collector keeps what it accepted.
#[derive(Clone, PartialEq, Eq)]
pub enum Store {
    /// The embedded SQLite database `<state_dir>/collector.db` (the default).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`store = "postgres://…"`), which several replicas may share.
    Postgres(String),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            // The URL may carry a password.
            Self::Postgres(url) => f.debug_tuple("Postgres").field(&redacted(url)).finish(),
        }
    }
}

/// A database URL without its user information (which may hold a password).
pub fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://…{}", &url[at..]),
        _ => url.to_owned(),
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub store: Store,
    pub sites: PathBuf,
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
    pub enrollment_ca_dir: Option<PathBuf>,
    pub policy: Option<PathBuf>,
    pub catalogue: Option<PathBuf>,
    pub freshness_window: Duration,
    pub max_future_skew: Duration,
    pub max_backlog: Duration,
    pub challenge_every: Duration,
    pub nonce_validity: Duration,
    pub tree_head_every: Duration,
    /// The log key file; several replicas of one log must share it.
    pub log_key: PathBuf,
    /// The origin line of the log's checkpoints (`None`: derived from the log key).
    pub log_origin: Option<String>,
    /// The witnesses every new checkpoint is submitted to.
    pub witnesses: Vec<WitnessTarget>,
    /// The organisation monthly reports name (`[report] organisation`).
    pub organisation: Option<String>,
    /// The roots GPU hardware reports must chain to (`[gpu_evidence] roots`, a PEM file);
    /// `None`: NVIDIA's Device Identity CA, compiled in.
    pub gpu_roots: Option<PathBuf>,
    /// A directory of NVIDIA RIMs reports' measurements are compared with (`[gpu_evidence] rims`).
    pub gpu_rims: Option<PathBuf>,
    /// A directory of DER OCSP answers certificates' status is read from (`[gpu_evidence] ocsp`).
    pub gpu_ocsp: Option<PathBuf>,
    /// The registry of trusted round-trip-time landmarks (`[location] landmarks`, a TOML
    /// file); `None`: no landmark, every measurement refused.
    pub landmarks: Option<PathBuf>,
    /// Bounds on connections and unauthenticated enrollment (`[connections]`, `[enrollment]`).
    pub limits: collector_server::Limits,
    pub metrics_listen: Option<SocketAddr>,
    pub log_json: bool,
    pub log_level: tracing::Level,
}

impl Config {
    /// Validates text without touching the files it names: every problem, each with its key.
    #[cfg(test)]
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        proto_config::document::checked(text, path, Self::read)
    }

    /// Reads text, recording every problem in `problems` and going on past each: a value with
    /// a problem is replaced by its default (an empty path when it has none), so that the
    /// checks that follow see every other value. Only syntax errors stop it, all of them
    /// reported. The result is a valid configuration only when `problems` stayed empty.
    pub fn read(text: &str, path: &Path, problems: &Problems) -> Result<Config, ConfigErrors> {
        let mut root = proto_config::document::root(text, path, problems)?;
        let duration = |section: &mut Section, name: &'static str, default: Duration| {
            section.duration(name, default, MIN_DURATION, "must be greater than zero")
        };

        let listen = root.required_address("listen", "0.0.0.0:7443");
        let state_dir = root.required_path("state_dir");
        let store_url = root.optional::<String>("store");
        let sites = root.required_path("sites");

        let mut tls = root.table("tls");
        let certificate = tls.required_path("certificate");
        let key = tls.required_path("key");
        let client_ca = tls.required_path("client_ca");
        drop(tls);

        let defaults = collector_server::Limits::default();
        let count = |section: &mut Section, name: &'static str, default: usize| match section
            .optional::<i64>(name)
        {
            None => default,
            Some(n) if (1..=1_000_000).contains(&n) => n as usize,
            Some(_) => {
                section.problem(name, "must be a whole number from 1 to 1000000");
                default
            }
        };
        let rate = |section: &mut Section, name: &'static str, default: f64| match section
            .optional::<toml::Value>(
            name,
        ) {
            None => default,
            Some(value) => match value.as_float().or(value.as_integer().map(|n| n as f64)) {
                Some(r) if r > 0.0 && r <= 1e6 => r,
                _ => {
                    section.problem(
                        name,
                        "must be a number of calls per second above 0, at most 1000000",
                    );
                    default
                }
            },
        };
        let mut enrollment = root.table("enrollment");
        let enrollment_ca_dir = enrollment.path("ca_dir");
        let enrolls = defaults.enrollment;
        let enrollment_limits = collector_server::enrollment::Limits {
            per_peer: collector_app::throttle::Rate {
                per_second: rate(
                    &mut enrollment,
                    "rate_per_peer",
                    enrolls.per_peer.per_second,
                ),
                burst: count(
                    &mut enrollment,
                    "burst_per_peer",
                    enrolls.per_peer.burst as usize,
                ) as u32,
            },
            global: collector_app::throttle::Rate {
                per_second: rate(&mut enrollment, "rate", enrolls.global.per_second),
                burst: count(&mut enrollment, "burst", enrolls.global.burst as usize) as u32,
            },
            concurrency: count(&mut enrollment, "concurrency", enrolls.concurrency),
        };
        drop(enrollment);

        let mut connections = root.table("connections");
        let bounds = &defaults.connections;
        let connection_limits = collector_server::connections::Limits {
            max_connections: count(&mut connections, "max_connections", bounds.max_connections),
            max_connections_per_ip: count(
                &mut connections,
                "max_connections_per_ip",
                bounds.max_connections_per_ip,
            ),
            max_handshakes: count(&mut connections, "max_handshakes", bounds.max_handshakes),
            max_anonymous: count(&mut connections, "max_anonymous", bounds.max_anonymous),
            handshake_timeout: duration(
                &mut connections,
                "handshake_timeout",
                bounds.handshake_timeout,
            ),
            first_request_timeout: duration(
                &mut connections,
                "first_request_timeout",
                bounds.first_request_timeout,
            ),
            max_concurrent_streams: count(
                &mut connections,
                "max_concurrent_streams",
                bounds.max_concurrent_streams as usize,
            ) as u32,
        };
        // Enrolling peers must never take every slot: certified agents, admins and auditors
        // always find one.
        let max = connection_limits.max_connections;
        for (key, value, most) in [
            (
                "max_connections_per_ip",
                connection_limits.max_connections_per_ip,
                max,
            ),
            ("max_handshakes", connection_limits.max_handshakes, max),
            (
                "max_anonymous",
                connection_limits.max_anonymous,
                max.saturating_sub(1),
            ),
        ] {
            // A value already refused stands at its default: one problem per key.
            if value > most && !problems.has(&format!("connections.{key}")) {
                connections.problem(
                    key,
                    format!("{value} is too many: at most {most} with max_connections = {max}"),
                );
            }
        }
        // Both count from the accept: a first-request deadline inside the handshake's would
        // cut handshakes short under another name.
        if connection_limits.first_request_timeout < connection_limits.handshake_timeout {
            connections.problem(
                "first_request_timeout",
                "must be at least handshake_timeout (both count from the accept)",
            );
        }
        drop(connections);
        let mut rules = root.table("rules");
        let policy = rules.path("policy");
        let catalogue = rules.path("catalogue");
        drop(rules);

        let mut ingest = root.table("ingest");
        let freshness_window = duration(&mut ingest, "freshness_window", Duration::from_secs(180));
        let max_future_skew = duration(&mut ingest, "max_future_skew", Duration::from_secs(300));
        let max_backlog = duration(&mut ingest, "max_backlog", Duration::from_secs(30 * 86_400));
        let challenge_every = duration(&mut ingest, "challenge_every", Duration::from_secs(300));
        let nonce_validity = duration(&mut ingest, "nonce_validity", Duration::from_secs(300));
        drop(ingest);

        let metrics_listen = root.table("metrics").address("listen", "127.0.0.1:9465");
        if let (Some(listen), Some(metrics)) = (listen, metrics_listen)
            && listen.port() == metrics.port()
            && (listen.ip() == metrics.ip()
                || listen.ip().is_unspecified()
                || metrics.ip().is_unspecified())
        {
            problems.push(
                "metrics.listen",
                format!("{metrics} is the address of listen ({listen})"),
            );
        }

        let mut log = root.table("log");
        let log_json = match log.optional::<String>("format").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                log.problem("format", format!("{other:?} must be text or json"));
                false
            }
        };
        let log_level = log.log_level("level").unwrap_or(tracing::Level::INFO);
        drop(log);

        let mut audit = root.table("audit");
        let tree_head_every = duration(&mut audit, "tree_head_every", Duration::from_secs(60));
        let log_key = audit
            .path("log_key")
            .unwrap_or_else(|| state_dir.join("log.key"));
        let log_origin = audit.optional::<String>("origin");
        if let Some(origin) = &log_origin
            && let Err(e) = proto_note::KeyName::new(origin.as_str())
        {
            audit.problem("origin", e.to_string());
        }
        let mut witnesses = Vec::new();
        for mut witness in audit.tables("witnesses") {
            let url = witness.required::<String>("url");
            let key = witness.required::<String>("key");
            if let Some(url) = &url
                && !url.starts_with("http://")
            {
                witness.problem(
                    "url",
                    format!("{url:?} must be http://host:port (witness answers are signed, so plain HTTP is enough)"),
                );
            }
            let parsed = key.map(|key| VerifierKey::parse(key.trim()));
            match (url, parsed) {
                (Some(url), Some(Ok(key))) if is_cosignature_key(&key) => {
                    witnesses.push(WitnessTarget { url, key });
                }
                (_, Some(Ok(_))) => witness.problem(
                    "key",
                    "is not a cosignature key (type 0x04): give the line `veu-witness keygen` printed",
                ),
                (_, Some(Err(e))) => witness.problem("key", e.to_string()),
                (_, None) => {}
            }
        }
        drop(audit);

        let mut report = root.table("report");
        let organisation = match report.optional::<String>("organisation") {
            None => None,
            Some(name) if name.trim().is_empty() => {
                report.problem(
                    "organisation",
                    "must not be empty (leave it out to name no organisation)",
                );
                None
            }
            Some(name)
                if name.trim().chars().count() > MAX_ORGANISATION_CHARS
                    || name.chars().any(char::is_control) =>
            {
                report.problem(
                    "organisation",
                    format!("must be one line of at most {MAX_ORGANISATION_CHARS} characters"),
                );
                None
            }
            Some(name) => Some(name.trim().to_owned()),
        };
        drop(report);

        let mut gpu = root.table("gpu_evidence");
        let gpu_roots = gpu.path("roots");
        let gpu_rims = gpu.path("rims");
        let gpu_ocsp = gpu.path("ocsp");
        drop(gpu);

        let mut location = root.table("location");
        let landmarks = location.path("landmarks");
        drop(location);

        let store = match store_url {
            None => Store::Sqlite(state_dir.join("collector.db")),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Store::Postgres(url)
            }
            Some(_) => {
                problems.push(
                    "store",
                    "must be a postgres:// URL (leave it out for the embedded SQLite store)",
                );
                Store::Sqlite(state_dir.join("collector.db"))
            }
        };
        drop(root);
        Ok(Config {
            listen: listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 7443))),
            state_dir,
            store,
            sites,
            certificate,
            key,
            client_ca,
            enrollment_ca_dir,
            policy,
            catalogue,
            freshness_window,
            max_future_skew,
            max_backlog,
            challenge_every,
            nonce_validity,
            tree_head_every,
            log_key,
            log_origin,
            witnesses,
            organisation,
            gpu_roots,
            gpu_rims,
            gpu_ocsp,
            landmarks,
            limits: collector_server::Limits {
                connections: connection_limits,
                enrollment: enrollment_limits,
            },
            metrics_listen,
            log_json,
            log_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_is_valid() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/collector/collector.toml");
        let config = Config::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
        assert_eq!(config.listen.port(), 7443);
        assert_eq!(config.freshness_window, Duration::from_secs(180));
        assert_eq!(
            config.store,
            Store::Sqlite(PathBuf::from("/var/lib/veu-collector/collector.db"))
        );
        // The example spells out every default.
        assert_eq!(
            config.limits.connections,
            collector_server::Limits::default().connections
        );
        assert_eq!(
            config.limits.enrollment,
            collector_server::Limits::default().enrollment
        );
    }

    #[test]
    fn connection_and_enrollment_limits_are_read_and_checked() {
        let base = "listen = \"0.0.0.0:7443\"\nstate_dir = \"s\"\nsites = \"sites.toml\"\n\
                    [tls]\ncertificate = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n";
        let path = Path::new("/etc/veu-collector/collector.toml");
        assert_eq!(
            Config::parse(base, path).unwrap().limits.connections,
            collector_server::Limits::default().connections
        );
        let set = format!(
            "{base}[connections]\nmax_connections = 100\nmax_connections_per_ip = 10\n\
             max_handshakes = 20\nmax_anonymous = 30\nhandshake_timeout = \"2s\"\n\
             first_request_timeout = \"5s\"\nmax_concurrent_streams = 8\n\
             [enrollment]\nrate_per_peer = 0.5\nburst_per_peer = 2\nrate = 3\nburst = 9\n\
             concurrency = 1\n"
        );
        let limits = Config::parse(&set, path).unwrap().limits;
        let connections = limits.connections;
        assert_eq!(
            (
                connections.max_connections,
                connections.max_connections_per_ip,
                connections.max_handshakes,
                connections.max_anonymous,
                connections.max_concurrent_streams
            ),
            (100, 10, 20, 30, 8)
        );
        assert_eq!(connections.handshake_timeout, Duration::from_secs(2));
        assert_eq!(connections.first_request_timeout, Duration::from_secs(5));
        assert_eq!(limits.enrollment.per_peer.per_second, 0.5);
        assert_eq!(limits.enrollment.per_peer.burst, 2);
        assert_eq!(limits.enrollment.global.per_second, 3.0);
        assert_eq!(limits.enrollment.global.burst, 9);
        assert_eq!(limits.enrollment.concurrency, 1);

        let bad = format!(
            "{base}[connections]\nmax_connections = 100\nmax_connections_per_ip = 0\n\
             max_handshakes = 101\nmax_anonymous = 100\nhandshake_timeout = \"0s\"\n\
             max_concurrent_streams = \"many\"\nfirst_request_timeout = \"5s\"\n\
             [enrollment]\nrate_per_peer = -1\nburst = 0\n"
        );
        let errors = Config::parse(&bad, path).unwrap_err();
        let keys: Vec<&str> = errors.errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "enrollment.rate_per_peer",
                "enrollment.burst",
                "connections.max_connections_per_ip",
                "connections.handshake_timeout",
                "connections.max_concurrent_streams",
                "connections.max_handshakes",
                "connections.max_anonymous",
                "connections.first_request_timeout",
            ]
        );
    }

    #[test]
    fn a_postgres_url_selects_the_postgres_store_and_is_never_printed_whole() {
        let base = "listen = \"0.0.0.0:7443\"\nstate_dir = \"s\"\nsites = \"sites.toml\"\n\
                    [tls]\ncertificate = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n";
        let path = Path::new("/etc/veu-collector/collector.toml");
        let url = "postgres://veu:secret@db.example:5432/veu?sslmode=require";
        let config = Config::parse(&format!("store = \"{url}\"\n{base}"), path).unwrap();
        assert_eq!(config.store, Store::Postgres(url.to_owned()));
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("@db.example:5432/veu"), "{shown}");

        let errors = Config::parse(&format!("store = \"mysql://db\"\n{base}"), path).unwrap_err();
        assert_eq!(errors.errors[0].0, "store");
    }

    #[test]
    fn the_kubernetes_config_and_the_site_registries_are_valid() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        let path = deploy.join("kubernetes/collector/collector.toml");
        let config = Config::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
        // Reachable from the pod's address: the Service and Prometheus connect to it.
        assert!(config.listen.ip().is_unspecified() && config.listen.port() == 7443);
        let metrics = config.metrics_listen.unwrap();
        assert!(metrics.ip().is_unspecified() && metrics.port() == 9465);
        assert_eq!(config.state_dir, Path::new("/var/lib/veu-collector"));
        assert_eq!(config.sites, Path::new("/etc/veu-collector/sites.toml"));
        assert!(config.log_json);

        let example = std::fs::read_to_string(deploy.join("collector/sites.toml")).unwrap();
        let sites = collector_core::SiteRegistry::from_toml(&example).unwrap();
        assert!(
            sites.get("us-va-ashburn-1").is_some(),
            "the agent examples' site"
        );
        let kubernetes = std::fs::read_to_string(deploy.join("kubernetes/collector/sites.toml"));
        assert_eq!(
            kubernetes.unwrap(),
            example,
            "deploy/kubernetes/collector/sites.toml is a copy of deploy/collector/sites.toml"
        );
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let text = "listen = \"everywhere\"\nstate_dir = \"s\"\nsites = \"sites.toml\"\n\
                    [tls]\ncertificate = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n\
                    [ingest]\nfreshness_window = \"soon\"\nmax_backlog = \"0s\"\n[log]\nformat = \"xml\"\n";
        let errors =
            Config::parse(text, Path::new("/etc/veu-collector/collector.toml")).unwrap_err();
        let keys: Vec<&str> = errors.errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "listen",
                "ingest.freshness_window",
                "ingest.max_backlog",
                "log.format"
            ]
        );
    }

    #[test]
    fn the_report_names_the_organisation_when_configured() {
        let base = "listen = \"0.0.0.0:7443\"\nstate_dir = \"s\"\nsites = \"sites.toml\"\n\
                    [tls]\ncertificate = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n";
        let path = Path::new("/etc/veu-collector/collector.toml");
        assert_eq!(Config::parse(base, path).unwrap().organisation, None);
        let named = format!("{base}[report]\norganisation = \" Example Cloud Inc. \"\n");
        assert_eq!(
            Config::parse(&named, path).unwrap().organisation.as_deref(),
            Some("Example Cloud Inc.")
        );
        for bad in [
            "\"\"",
            "\"two\\nlines\"",
            &format!("\"{}\"", "x".repeat(201)),
        ] {
            let errors = Config::parse(&format!("{base}[report]\norganisation = {bad}\n"), path)
                .unwrap_err();
            assert_eq!(errors.errors[0].0, "report.organisation", "{bad}");
        }
    }
}
