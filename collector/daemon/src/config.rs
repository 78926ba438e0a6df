//! The collector's TOML configuration, validated with every error reported with its key.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use collector_server::witnesses::{WitnessTarget, is_cosignature_key};
pub use proto_config::ConfigErrors;
use proto_config::parse_duration;
use proto_note::VerifierKey;
use serde::Deserialize;

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
    pub metrics_listen: Option<SocketAddr>,
    pub log_json: bool,
    pub log_level: tracing::Level,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    state_dir: PathBuf,
    store: Option<String>,
    sites: PathBuf,
    tls: RawTls,
    #[serde(default)]
    enrollment: RawEnrollment,
    #[serde(default)]
    rules: RawRules,
    #[serde(default)]
    ingest: RawIngest,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    report: RawReport,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReport {
    organisation: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    tree_head_every: Option<String>,
    log_key: Option<PathBuf>,
    origin: Option<String>,
    #[serde(default)]
    witnesses: Vec<RawWitness>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWitness {
    url: String,
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    certificate: PathBuf,
    key: PathBuf,
    client_ca: PathBuf,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEnrollment {
    ca_dir: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRules {
    policy: Option<PathBuf>,
    catalogue: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIngest {
    freshness_window: Option<String>,
    max_future_skew: Option<String>,
    max_backlog: Option<String>,
    challenge_every: Option<String>,
    nonce_validity: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
    level: Option<String>,
}

impl Config {
    /// Reads, validates and checks that the files it names can be read.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            path: path.to_path_buf(),
            errors: vec![("file".into(), format!("cannot read: {e}"))],
        })?;
        let config = Self::parse(&text, path)?;
        let mut missing = Vec::new();
        let mut files: Vec<(&str, &Path)> = vec![
            ("sites", &config.sites),
            ("tls.certificate", &config.certificate),
            ("tls.key", &config.key),
            ("tls.client_ca", &config.client_ca),
        ];
        if let Some(policy) = &config.policy {
            files.push(("rules.policy", policy));
        }
        if let Some(catalogue) = &config.catalogue {
            files.push(("rules.catalogue", catalogue));
        }
        for (key, file) in files {
            if let Err(e) = std::fs::File::open(file) {
                missing.push((
                    key.to_owned(),
                    format!("cannot read {}: {e}", file.display()),
                ));
            }
        }
        if let Store::Postgres(url) = &config.store
            && let Err(error) = collector_store_postgres::PostgresStore::check_url(url)
        {
            missing.push(("store".to_owned(), error.to_string()));
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

    /// Validates text without touching the files it names.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| ConfigErrors {
            path: path.to_path_buf(),
            errors: vec![("syntax".into(), error.to_string().trim().replace('\n', " "))],
        })?;
        let mut errors = Vec::new();
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
        let mut address = |key: &str, text: &str| match text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                errors.push((
                    key.to_owned(),
                    format!("{text:?} is not an address like 0.0.0.0:7443"),
                ));
                None
            }
        };
        let listen = address("listen", &raw.listen);
        let metrics_listen = raw
            .metrics
            .listen
            .as_deref()
            .and_then(|t| address("metrics.listen", t));
        let mut duration =
            |key: &str, value: Option<&str>, default: Duration| match value.map(parse_duration) {
                None => default,
                Some(Ok(d)) if !d.is_zero() => d,
                Some(Ok(_)) => {
                    errors.push((key.to_owned(), "must be greater than zero".into()));
                    default
                }
                Some(Err(message)) => {
                    errors.push((key.to_owned(), message));
                    default
                }
            };
        let ingest = &raw.ingest;
        let freshness_window = duration(
            "ingest.freshness_window",
            ingest.freshness_window.as_deref(),
            Duration::from_secs(180),
        );
        let max_future_skew = duration(
            "ingest.max_future_skew",
            ingest.max_future_skew.as_deref(),
            Duration::from_secs(300),
        );
        let max_backlog = duration(
            "ingest.max_backlog",
            ingest.max_backlog.as_deref(),
            Duration::from_secs(30 * 86_400),
        );
        let challenge_every = duration(
            "ingest.challenge_every",
            ingest.challenge_every.as_deref(),
            Duration::from_secs(300),
        );
        let nonce_validity = duration(
            "ingest.nonce_validity",
            ingest.nonce_validity.as_deref(),
            Duration::from_secs(300),
        );
        let tree_head_every = duration(
            "audit.tree_head_every",
            raw.audit.tree_head_every.as_deref(),
            Duration::from_secs(60),
        );
        let log_json = match raw.log.format.as_deref().unwrap_or("text") {
            "text" => false,
            "json" => true,
            other => {
                errors.push((
                    "log.format".into(),
                    format!("{other:?} must be text or json"),
                ));
                false
            }
        };
        let log_level = raw
            .log
            .level
            .as_deref()
            .unwrap_or("info")
            .parse()
            .unwrap_or_else(|_| {
                errors.push((
                    "log.level".into(),
                    "must be one of error, warn, info, debug, trace".into(),
                ));
                tracing::Level::INFO
            });
        let mut witnesses = Vec::new();
        for (n, witness) in raw.audit.witnesses.iter().enumerate() {
            let key = format!("audit.witnesses[{n}]");
            if !witness.url.starts_with("http://") {
                errors.push((
                    format!("{key}.url"),
                    format!("{:?} must be http://host:port (witness answers are signed, so plain HTTP is enough)", witness.url),
                ));
            }
            match VerifierKey::parse(witness.key.trim()) {
                Ok(parsed) if is_cosignature_key(&parsed) => witnesses.push(WitnessTarget {
                    url: witness.url.clone(),
                    key: parsed,
                }),
                Ok(_) => errors.push((
                    format!("{key}.key"),
                    "is not a cosignature key (type 0x04): give the line `veu-witness keygen` printed".into(),
                )),
                Err(e) => errors.push((format!("{key}.key"), e.to_string())),
            }
        }
        if let Some(origin) = &raw.audit.origin
            && let Err(e) = proto_note::KeyName::new(origin.as_str())
        {
            errors.push(("audit.origin".into(), e.to_string()));
        }
        let organisation = match raw.report.organisation.as_deref().map(str::trim) {
            None => None,
            Some("") => {
                errors.push((
                    "report.organisation".into(),
                    "must not be empty (leave it out to name no organisation)".into(),
                ));
                None
            }
            Some(name)
                if name.chars().count() > MAX_ORGANISATION_CHARS
                    || name.chars().any(char::is_control) =>
            {
                errors.push((
                    "report.organisation".into(),
                    format!("must be one line of at most {MAX_ORGANISATION_CHARS} characters"),
                ));
                None
            }
            Some(name) => Some(name.to_owned()),
        };
        let state_dir = resolve(raw.state_dir);
        let log_key = raw
            .audit
            .log_key
            .map(&resolve)
            .unwrap_or_else(|| state_dir.join("log.key"));
        let store = match raw.store {
            None => Store::Sqlite(state_dir.join("collector.db")),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Store::Postgres(url)
            }
            Some(_) => {
                errors.push((
                    "store".into(),
                    "must be a postgres:// URL (leave it out for the embedded SQLite store)".into(),
                ));
                Store::Sqlite(state_dir.join("collector.db"))
            }
        };
        match (listen, errors.is_empty()) {
            (Some(listen), true) => Ok(Config {
                listen,
                state_dir,
                store,
                sites: resolve(raw.sites),
                certificate: resolve(raw.tls.certificate),
                key: resolve(raw.tls.key),
                client_ca: resolve(raw.tls.client_ca),
                enrollment_ca_dir: raw.enrollment.ca_dir.map(resolve),
                policy: raw.rules.policy.map(resolve),
                catalogue: raw.rules.catalogue.map(resolve),
                freshness_window,
                max_future_skew,
                max_backlog,
                challenge_every,
                nonce_validity,
                tree_head_every,
                log_key,
                log_origin: raw.audit.origin,
                witnesses,
                organisation,
                metrics_listen,
                log_json,
                log_level,
            }),
            _ => Err(ConfigErrors {
                path: path.to_path_buf(),
                errors,
            }),
        }
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
        assert!(config.log_origin.is_none() && config.witnesses.is_empty());

        // The commented origin and witnesses, uncommented, are valid too.
        let text = std::fs::read_to_string(&path).unwrap();
        let uncommented: String = text
            .lines()
            .map(|line| {
                for setting in ["origin = ", "[[audit.witnesses]]", "url = ", "key = \""] {
                    if let Some(rest) = line.strip_prefix("# ")
                        && rest.starts_with(setting)
                    {
                        return format!("{rest}\n");
                    }
                }
                format!("{line}\n")
            })
            .collect();
        let config = Config::parse(&uncommented, &path).unwrap();
        assert_eq!(
            config.log_origin.as_deref(),
            Some("collector.example.com/veu-attest")
        );
        let witnesses: Vec<(&str, &str)> = config
            .witnesses
            .iter()
            .map(|w| (w.url.as_str(), w.key.name().as_str()))
            .collect();
        assert_eq!(
            witnesses,
            [
                (
                    "http://witness.regulator.example:7380",
                    "witness.regulator.example/veu"
                ),
                (
                    "http://witness.auditor.example:7380",
                    "witness.auditor.example/veu"
                )
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
}
