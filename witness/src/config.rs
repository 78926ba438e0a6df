//! The witness's TOML configuration, validated with every error reported with its key.
//!
//! ```toml
//! listen = "0.0.0.0:7380"
//! name = "witness.example.org/veu"          # the key file's key name
//! key_file = "/etc/veu-witness/witness.key" # made by `veu-witness keygen`
//! state_dir = "/var/lib/veu-witness"
//!
//! [[logs]]
//! origin = "veu-attest.example/log/4f2c0a17"
//! # The log's checkpoint keys: note verifier keys, or raw Ed25519 keys in hex (then named
//! # after the origin, as logs name their keys).
//! keys = ["veu-attest.example/log/4f2c0a17+7c1a9e02+AZ..."]
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use proto_config::{ConfigErrors, parse_duration, parse_size};
use proto_note::{Checkpoint, KeyName, SignatureType, SignerKey, VerifierKey};
use serde::Deserialize;

use crate::keyfile;
use crate::server::Limits;
use crate::witness::WitnessedLog;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP server listens.
    pub listen: SocketAddr,
    /// The witness's key name.
    pub name: KeyName,
    /// The private key file.
    pub key_file: PathBuf,
    /// Where the latest cosigned checkpoints are kept.
    pub state_dir: PathBuf,
    /// The logs it witnesses.
    pub logs: Vec<WitnessedLog>,
    /// The server's bounds.
    pub limits: Limits,
    /// The least level logged.
    pub log_level: tracing::Level,
    /// JSON log lines instead of text.
    pub log_json: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    name: String,
    key_file: PathBuf,
    state_dir: PathBuf,
    #[serde(default)]
    logs: Vec<RawLog>,
    #[serde(default)]
    limits: RawLimits,
    log_level: Option<String>,
    log_format: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    origin: String,
    keys: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_body: Option<String>,
    read_timeout: Option<String>,
    max_connections: Option<usize>,
    connection_lifetime: Option<String>,
    shutdown_grace: Option<String>,
}

/// Bounds on `limits.max_body`: room for a checkpoint and a full proof, and no more than a
/// note may be.
const MIN_BODY: u64 = 4 * 1024;
const MAX_BODY: u64 = 1 << 20;

impl Config {
    /// Reads and validates the file, then reads the key file it names and checks the key is
    /// named `name`. Every error comes back, each with its key.
    pub fn load(path: &Path) -> Result<(Config, SignerKey), ConfigErrors> {
        let fail = |key: &str, message: String| ConfigErrors {
            path: path.to_path_buf(),
            errors: vec![(key.to_owned(), message)],
        };
        let text = std::fs::read_to_string(path)
            .map_err(|error| fail("file", format!("cannot read: {error}")))?;
        let config = Self::parse(&text, path)?;
        let key =
            keyfile::read(&config.key_file).map_err(|error| fail("key_file", error.to_string()))?;
        if *key.name() != config.name {
            return Err(fail(
                "name",
                format!(
                    "{:?} is not the name of the key in {} ({:?})",
                    config.name.as_str(),
                    config.key_file.display(),
                    key.name().as_str()
                ),
            ));
        }
        Ok((config, key))
    }

    /// Validates text without reading the files it names; relative paths are taken from the
    /// directory of `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| ConfigErrors {
            path: path.to_path_buf(),
            errors: vec![("syntax".into(), error.to_string().trim().replace('\n', " "))],
        })?;
        let mut errors: Vec<(String, String)> = Vec::new();
        let resolve = proto_config::document::resolver(path);

        let listen = raw.listen.parse::<SocketAddr>().map_err(|_| {
            errors.push((
                "listen".into(),
                format!("{:?} is not an address like 0.0.0.0:7380", raw.listen),
            ));
        });
        let name = KeyName::new(raw.name).map_err(|error| {
            errors.push(("name".into(), error.to_string()));
        });
        let logs = parse_logs(raw.logs, &mut errors);
        let limits = parse_limits(&raw.limits, &mut errors);
        let log_level = match raw.log_level.as_deref().unwrap_or("info") {
            "error" => Some(tracing::Level::ERROR),
            "warn" => Some(tracing::Level::WARN),
            "info" => Some(tracing::Level::INFO),
            "debug" => Some(tracing::Level::DEBUG),
            "trace" => Some(tracing::Level::TRACE),
            other => {
                errors.push((
                    "log_level".into(),
                    format!("{other:?} is not one of error, warn, info, debug, trace"),
                ));
                None
            }
        };
        let log_json = match raw.log_format.as_deref().unwrap_or("text") {
            "text" => Some(false),
            "json" => Some(true),
            other => {
                errors.push((
                    "log_format".into(),
                    format!("{other:?} is not \"text\" or \"json\""),
                ));
                None
            }
        };
        match (listen, name, log_level, log_json) {
            (Ok(listen), Ok(name), Some(log_level), Some(log_json)) if errors.is_empty() => {
                Ok(Config {
                    listen,
                    name,
                    key_file: resolve(raw.key_file),
                    state_dir: resolve(raw.state_dir),
                    logs,
                    limits,
                    log_level,
                    log_json,
                })
            }
            _ => Err(ConfigErrors {
                path: path.to_path_buf(),
                errors,
            }),
        }
    }
}

fn parse_logs(raw: Vec<RawLog>, errors: &mut Vec<(String, String)>) -> Vec<WitnessedLog> {
    if raw.is_empty() {
        errors.push((
            "logs".into(),
            "a witness follows at least one log: add a [[logs]] table with origin and keys".into(),
        ));
    }
    let mut logs: Vec<WitnessedLog> = Vec::new();
    for (index, log) in raw.into_iter().enumerate() {
        let at = |field: &str| format!("logs[{index}].{field}");
        if let Err(error) = Checkpoint::new(log.origin.clone(), 0, [0; 32]) {
            errors.push((at("origin"), error.to_string()));
            continue;
        }
        if logs.iter().any(|known| known.origin == log.origin) {
            errors.push((
                at("origin"),
                format!("{:?} is configured twice", log.origin),
            ));
            continue;
        }
        if log.keys.is_empty() {
            errors.push((at("keys"), "a log needs at least one checkpoint key".into()));
        }
        let mut keys = Vec::new();
        for (number, key) in log.keys.iter().enumerate() {
            match parse_log_key(&log.origin, key.trim()) {
                Ok(key) => keys.push(key),
                Err(message) => errors.push((format!("logs[{index}].keys[{number}]"), message)),
            }
        }
        logs.push(WitnessedLog {
            origin: log.origin,
            keys,
        });
    }
    logs
}

/// A vkey of type 0x01, or a raw Ed25519 key in hex named after the origin.
fn parse_log_key(origin: &str, text: &str) -> Result<VerifierKey, String> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut key = [0u8; 32];
        for (byte, pair) in key.iter_mut().zip(text.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|error| error.to_string())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|error| error.to_string())?;
        }
        let name = KeyName::new(origin).map_err(|error| {
            format!(
                "a raw key is named after the origin, which cannot be a key name ({error}); give a verifier key instead"
            )
        })?;
        return Ok(VerifierKey::new(name, SignatureType::Ed25519, key));
    }
    let key = VerifierKey::parse(text).map_err(|error| {
        format!("neither a verifier key (name+keyid+base64) nor 64 hex digits: {error}")
    })?;
    if key.signature_type() != SignatureType::Ed25519 {
        return Err(format!(
            "{} is a cosignature key (type 0x04); a log signs checkpoints with a plain Ed25519 key (type 0x01)",
            key.name()
        ));
    }
    Ok(key)
}

fn parse_limits(raw: &RawLimits, errors: &mut Vec<(String, String)>) -> Limits {
    let mut limits = Limits::default();
    if let Some(text) = &raw.max_body {
        match parse_size(text) {
            Ok(size) if (MIN_BODY..=MAX_BODY).contains(&size) => {
                limits.max_body_bytes = usize::try_from(size).unwrap_or(usize::MAX);
            }
            Ok(_) => errors.push((
                "limits.max_body".into(),
                format!("{text:?} is outside 4KiB..=1MiB"),
            )),
            Err(message) => errors.push(("limits.max_body".into(), message)),
        }
    }
    let mut duration = |key: &str, text: &Option<String>, slot: &mut std::time::Duration| {
        if let Some(text) = text {
            match parse_duration(text) {
                Ok(value) if !value.is_zero() => *slot = value,
                Ok(_) => errors.push((format!("limits.{key}"), "must be more than zero".into())),
                Err(message) => errors.push((format!("limits.{key}"), message)),
            }
        }
    };
    duration("read_timeout", &raw.read_timeout, &mut limits.read_timeout);
    duration(
        "connection_lifetime",
        &raw.connection_lifetime,
        &mut limits.connection_lifetime,
    );
    duration(
        "shutdown_grace",
        &raw.shutdown_grace,
        &mut limits.shutdown_grace,
    );
    match raw.max_connections {
        Some(0) => errors.push(("limits.max_connections".into(), "must be at least 1".into())),
        Some(count) => limits.max_connections = count,
        None => {}
    }
    limits
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";

    #[test]
    fn a_full_configuration_parses_with_relative_paths_from_its_directory() {
        let text = format!(
            "listen = \"127.0.0.1:7380\"\nname = \"witness.example/w1\"\nkey_file = \"w.key\"\n\
             state_dir = \"/var/lib/w\"\nlog_level = \"debug\"\nlog_format = \"json\"\n\
             [limits]\nmax_body = \"16KiB\"\nread_timeout = \"2s\"\nmax_connections = 8\n\
             [[logs]]\norigin = \"example.com/foo\"\nkeys = [\"{VKEY}\", \"{}\"]\n",
            "ab".repeat(32)
        );
        let config = Config::parse(&text, Path::new("/etc/w/witness.toml")).unwrap();
        assert_eq!(config.key_file, Path::new("/etc/w/w.key"));
        assert_eq!(config.state_dir, Path::new("/var/lib/w"));
        assert_eq!(config.limits.max_body_bytes, 16 * 1024);
        assert_eq!(config.limits.max_connections, 8);
        assert_eq!(config.logs[0].keys.len(), 2);
        assert_eq!(config.logs[0].keys[1].name().as_str(), "example.com/foo");
        assert!(config.log_json);
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let text = "listen = \"nowhere\"\nname = \"a b\"\nkey_file = \"k\"\nstate_dir = \"s\"\n\
                    log_level = \"loud\"\n[limits]\nmax_body = \"1B\"\nmax_connections = 0\n\
                    [[logs]]\norigin = \"o\"\nkeys = [\"nonsense\", \"o+00000000+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2\"]\n\
                    [[logs]]\norigin = \"o\"\nkeys = []\n";
        let errors = Config::parse(text, Path::new("w.toml")).unwrap_err();
        let keys: Vec<&str> = errors.errors.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "listen",
                "name",
                "logs[0].keys[0]",
                "logs[0].keys[1]",
                "logs[1].origin",
                "limits.max_body",
                "limits.max_connections",
                "log_level",
            ]
        );
        let unknown = Config::parse(
            "listen = \"127.0.0.1:1\"\nname = \"w\"\nkey_file = \"k\"\nstate_dir = \"s\"\nport = 1\n",
            Path::new("w.toml"),
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("port"), "{unknown}");
        let none = Config::parse(
            "listen = \"127.0.0.1:1\"\nname = \"w\"\nkey_file = \"k\"\nstate_dir = \"s\"\n",
            Path::new("w.toml"),
        )
        .unwrap_err();
        assert_eq!(none.errors[0].0, "logs");
    }

    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../README.md");
        let example = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .unwrap();
        let config = Config::parse(example, Path::new("/etc/veu-witness/witness.toml")).unwrap();
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.logs.len(), 1);
        assert_eq!(
            config.logs[0].keys[0].name().as_str(),
            "veu-attest.example/log/4f2c0a17"
        );
    }

    #[test]
    fn a_cosignature_key_is_not_a_log_key() {
        let error = parse_log_key(
            "remora.n621.de",
            "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
        )
        .unwrap_err();
        assert!(error.contains("type 0x04"), "{error}");
    }
}
