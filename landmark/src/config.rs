//! The landmark's TOML configuration, read in one pass that reports every problem with its key
//! (deploy/landmark/landmark.toml is the commented example).
//!
//! ```toml
//! id = "fra-1"                          # the name in its landmark certificate
//! latitude = 50.1109                    # surveyed, degrees
//! longitude = 8.6821
//! key = "/var/lib/veu-landmark/landmark.key"
//! listen = "0.0.0.0:7450"
//!
//! [collector]
//! endpoint = "https://collector.example.com:7443"
//! ca = "/etc/veu-landmark/tls/ca.pem"
//! certificate = "/etc/veu-landmark/tls/landmark.pem"
//! key = "/etc/veu-landmark/tls/landmark.key"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use proto_config::tls::{self, Named};
use proto_config::{ConfigErrors, Problems, Section};
use proto_evidence::Coordinates;
use proto_seal::Ed25519Signer;

use crate::session::Limits;

/// The mutual-TLS material, PEM: the collector's CA, the landmark's client certificate chain
/// and its key.
pub use proto_config::tls::ClientTls as Tls;

/// Where the landmark listens by default.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7450";

/// Most rounds a measurement may take.
pub const MAX_ROUNDS: u32 = 100;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The landmark's id: the name in its `landmark` certificate, and what its statements name.
    pub id: String,
    /// Where it stands, as surveyed.
    pub at: Coordinates,
    /// Its Ed25519 signing key (PKCS#8, mode 0600; `veu-landmark keygen`).
    pub key: PathBuf,
    /// Where agents connect.
    pub listen: SocketAddr,
    /// The bounds of each measurement.
    pub limits: Limits,
    /// Where measurements go.
    pub collector: Collector,
    /// The least level logged.
    pub log_level: tracing::Level,
    /// JSON log lines instead of text.
    pub log_json: bool,
}

/// The collector and the landmark's mutual-TLS client identity (role `landmark`).
#[derive(Debug, Clone)]
pub struct Collector {
    /// `https://collector.example:7443`.
    pub endpoint: String,
    /// The name the collector's certificate carries (default: the endpoint's host).
    pub server_name: String,
    /// The CA that signs the collector's certificate.
    pub ca: PathBuf,
    /// The landmark's client certificate (`urn:veu:landmark:<id>`).
    pub certificate: PathBuf,
    /// Its TLS private key (not the signing key).
    pub key: PathBuf,
}

/// A configuration with its key and TLS files read and checked.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The signing key.
    pub signer: Ed25519Signer,
    /// The collector's CA, the client certificate and its key, PEM.
    pub tls: Tls,
    /// The configuration file.
    pub path: PathBuf,
}

impl Config {
    /// Validates configuration text without reading the files it names; `path` names it in
    /// errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        proto_config::document::checked(text, path, Self::read)
    }

    /// Reads the file at `path`, then the signing key and the TLS files it names, checked at
    /// `now`. Every problem comes back at once, each with its key.
    pub fn load(path: &Path, now: SystemTime) -> Result<Loaded, ConfigErrors> {
        let problems = Problems::new();
        let config = proto_config::document::load(path, &problems, Self::read)?;
        let signer = (!problems.has("key"))
            .then(|| match proto_seal::keyfile::load(&config.key) {
                Ok(signer) => Some(signer),
                Err(error) => {
                    problems.push("key", error.to_string());
                    None
                }
            })
            .flatten();
        let collector = &config.collector;
        let ca = tls::trust_anchors(
            Named {
                key: "collector.ca",
                path: &collector.ca,
            },
            now,
            &problems,
        );
        let identity = tls::identity(
            Named {
                key: "collector.certificate",
                path: &collector.certificate,
            },
            Named {
                key: "collector.key",
                path: &collector.key,
            },
            now,
            &problems,
        );
        if let Some(identity) = &identity
            && let Err(message) = names_landmark(&identity.certificate_pem, &config.id)
        {
            problems.push(
                "collector.certificate",
                format!("{}: {message}", collector.certificate.display()),
            );
        }
        if let Some(errors) = ConfigErrors::of(path, &problems) {
            return Err(errors);
        }
        match (signer, ca, identity) {
            (Some(signer), Some(ca_pem), Some(identity)) => Ok(Loaded {
                config,
                signer,
                tls: Tls::new(ca_pem, identity),
                path: path.to_path_buf(),
            }),
            _ => Err(ConfigErrors::incomplete(path)),
        }
    }

    /// Reads text, recording every problem in `problems` and going on past each (a value with
    /// a problem takes its default). Only syntax errors stop it, all of them reported. The
    /// result is valid only when `problems` stayed empty.
    pub fn read(text: &str, path: &Path, problems: &Problems) -> Result<Config, ConfigErrors> {
        let mut root = proto_config::document::root(text, path, problems)?;

        let id = root.required_id("id");
        let latitude = root.required::<f64>("latitude");
        if let Some(latitude) = latitude
            && !(-90.0..=90.0).contains(&latitude)
        {
            root.problem("latitude", format!("{latitude} is not between -90 and 90"));
        }
        let longitude = root.required::<f64>("longitude");
        if let Some(longitude) = longitude
            && !(-180.0..=180.0).contains(&longitude)
        {
            root.problem(
                "longitude",
                format!("{longitude} is not between -180 and 180"),
            );
        }
        let key = root.required_path("key");
        let listen = root
            .address("listen", DEFAULT_LISTEN)
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 7450)));
        let defaults = Limits::default();
        let rounds = root.optional::<u32>("rounds").unwrap_or(defaults.rounds);
        if !(1..=MAX_ROUNDS).contains(&rounds) {
            root.problem(
                "rounds",
                format!("{rounds} is not between 1 and {MAX_ROUNDS}"),
            );
        }
        let max_sessions = root
            .optional::<usize>("max_sessions")
            .unwrap_or(defaults.max_sessions);
        if max_sessions == 0 {
            root.problem("max_sessions", "must be at least 1");
        }
        let hello_timeout = duration(&mut root, "hello_timeout", defaults.hello_timeout);
        let session_timeout = duration(&mut root, "session_timeout", defaults.session_timeout);
        let log_level = root.log_level("log_level").unwrap_or(tracing::Level::INFO);
        let log_json = root.optional::<bool>("log_json").unwrap_or(false);

        let mut section = root.table("collector");
        let endpoint = section.required::<String>("endpoint").unwrap_or_default();
        section.check_https("endpoint", &endpoint);
        let server_name = section.optional::<String>("server_name");
        let server_name = section.server_name("server_name", server_name, "endpoint", &endpoint);
        let collector = Collector {
            ca: section.required_path("ca"),
            certificate: section.required_path("certificate"),
            key: section.required_path("key"),
            endpoint,
            server_name,
        };
        drop(section);
        drop(root);
        // Out-of-range coordinates were recorded above, at their key.
        let Ok(at) = Coordinates::from_degrees(latitude.unwrap_or(0.0), longitude.unwrap_or(0.0))
        else {
            return Err(ConfigErrors {
                path: path.to_path_buf(),
                errors: problems.list(),
            });
        };

        Ok(Config {
            id,
            at,
            key,
            listen,
            limits: Limits {
                rounds,
                max_sessions,
                hello_timeout,
                session_timeout,
            },
            collector,
            log_level,
            log_json,
        })
    }
}

/// Whether the leaf certificate names this landmark (`urn:veu:landmark:<id>`, the one
/// identity URI it carries), as the collector requires of a landmark's submissions.
fn names_landmark(certificate_pem: &[u8], id: &str) -> Result<(), String> {
    const PREFIX: &str = "urn:veu:";
    let expected = format!("{PREFIX}landmark:{id}");
    let leaf = tls::certificates_of(certificate_pem)
        .into_iter()
        .next()
        .ok_or("holds no certificate")?;
    let (_, certificate) = x509_parser::parse_x509_certificate(&leaf)
        .map_err(|error| format!("not a certificate: {error}"))?;
    let names = certificate
        .subject_alternative_name()
        .map_err(|error| format!("unreadable subject alternative names: {error}"))?;
    let uris: Vec<String> = names
        .iter()
        .flat_map(|extension| extension.value.general_names.iter())
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri)
                if uri
                    .get(..PREFIX.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(PREFIX)) =>
            {
                Some(uri.to_string())
            }
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [uri] if uri.eq_ignore_ascii_case(&expected) => Ok(()),
        [] => Err(format!(
            "names no veu identity; a landmark needs a certificate for {expected} from the collector's CA"
        )),
        found => Err(format!(
            "names {}, not {expected}: the collector would refuse this landmark's measurements",
            found.join(", ")
        )),
    }
}

/// A duration of more than zero (durations are read in milliseconds), or the default when
/// absent.
fn duration(section: &mut Section, name: &'static str, default: Duration) -> Duration {
    section.duration(
        name,
        default,
        Duration::from_millis(1),
        "must be more than zero",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const MINIMAL: &str = "id = \"fra-1\"\nlatitude = 50.1109\nlongitude = 8.6821\nkey = \"l.key\"\n\
                           [collector]\nendpoint = \"https://collector.example.com:7443\"\n\
                           ca = \"ca.pem\"\ncertificate = \"l.pem\"\nkey = \"l-tls.key\"\n";

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(text, Path::new("/etc/veu-landmark/landmark.toml"))
    }

    #[test]
    fn a_minimal_configuration_takes_the_defaults() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.id, "fra-1");
        assert_eq!(
            config.at,
            Coordinates::from_degrees(50.1109, 8.6821).unwrap()
        );
        assert_eq!(config.key, Path::new("/etc/veu-landmark/l.key"));
        assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.limits.rounds, 8);
        assert_eq!(config.limits.max_sessions, 256);
        assert_eq!(config.limits.hello_timeout, Duration::from_secs(5));
        assert_eq!(config.limits.session_timeout, Duration::from_secs(30));
        assert_eq!(config.collector.server_name, "collector.example.com");
        assert_eq!(config.collector.ca, Path::new("/etc/veu-landmark/ca.pem"));
        assert_eq!(config.log_level, tracing::Level::INFO);
        assert!(!config.log_json);
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let text = "id = \"fra 1\"\nlatitude = 95.0\nlongitude = \"east\"\nlisten = \"anywhere\"\n\
                    rounds = 0\nmax_sessions = 0\nhello_timeout = \"0s\"\nsession_timeout = \"soon\"\n\
                    log_level = \"loud\"\nlog_json = \"yes\"\nport = 1\n\
                    [collector]\nendpoint = \"http://collector:7443\"\nca = \"ca.pem\"\n";
        let errors = parse(text).unwrap_err();
        let keys: Vec<&str> = errors.errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "id",
                "latitude",
                "longitude",
                "key",
                "listen",
                "rounds",
                "max_sessions",
                "hello_timeout",
                "session_timeout",
                "log_level",
                "log_json",
                "collector.endpoint",
                "collector.certificate",
                "collector.key",
                "port",
            ],
            "{errors}"
        );
        assert!(errors.to_string().contains("15 errors"), "{errors}");
    }

    #[test]
    fn a_missing_collector_section_names_its_keys() {
        let text = "id = \"a\"\nlatitude = 1\nlongitude = 2\nkey = \"k\"\nrounds = 101\n";
        let errors = parse(text).unwrap_err();
        let keys: Vec<&str> = errors.errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "rounds",
                "collector.endpoint",
                "collector.ca",
                "collector.certificate",
                "collector.key"
            ],
            "{errors}"
        );
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/landmark/landmark.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let config = Config::parse(&text, &path).unwrap();
        assert_eq!(config.key, Path::new("/var/lib/veu-landmark/landmark.key"));
        assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(config.limits, Limits::default());
    }

    #[test]
    fn load_reports_a_missing_key_and_tls_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("landmark.toml");
        std::fs::write(&path, MINIMAL).unwrap();
        let errors = Config::load(&path, SystemTime::now()).unwrap_err();
        let keys: Vec<&str> = errors.errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "key",
                "collector.ca",
                "collector.certificate",
                "collector.key"
            ],
            "{errors}"
        );
    }
}
