//! What `check-config` and `run` both do first: read the configuration and every file it
//! names, and check that `run` can do its work: files readable and well-formed (certificates,
//! keys, CAs, site registry, policy, catalogue), the TLS key the certificate's, directories
//! writable. Every problem is reported at once, with its key. Nothing is created here: what
//! `run` will create on a first start is listed, and made only after every check passed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use collector_app::Rules;
use collector_core::{SiteError, SiteRegistry};
use collector_server::TlsFiles;
use proto_config::files::{self, Creates};
use proto_config::tls::{self, Named};
use proto_config::{ConfigErrors, Problems};

use crate::config::{Config, Store};

/// Everything `run` starts from, read and checked.
#[derive(Debug)]
pub struct Startup {
    pub config: Config,
    pub rules: Rules,
    pub tls: TlsFiles,
    pub enrollment_ca: Option<collector_pki::Ca>,
    /// The log key (PKCS#8) when it exists; `run` makes one otherwise.
    pub log_key: Option<Vec<u8>>,
    /// The nonce secret when it exists; `run` makes one otherwise.
    pub nonce_secret: Option<Vec<u8>>,
    /// What `run` will create.
    pub creates: Creates,
    /// The roots GPU hardware reports must chain to.
    pub gpu_trust: proto_gpu_evidence::Trust,
    /// The round-trip-time landmarks whose measurements count.
    pub landmarks: proto_location::Landmarks,
    /// The configuration file.
    pub path: PathBuf,
}

impl Startup {
    /// What is valid but probably not meant, for `check-config` and the start-up log.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.rules.policy.location.required_for_tier1 && self.landmarks.is_empty() {
            warnings.push(
                "the policy counts Tier-1 compute only where landmarks verify its location \
                 ([location] require_for_tier1), but no landmark is trusted ([location] \
                 landmarks): no host can be verified, so no Tier-1 compute will count toward \
                 the minimums"
                    .to_owned(),
            );
        }
        warnings
    }
}

/// Reads the configuration at `path` and checks everything `run` needs at `now`.
pub fn check(path: &Path, now: SystemTime) -> Result<Startup, ConfigErrors> {
    let problems = Problems::new();
    let config = proto_config::document::load(path, &problems, Config::read)?;
    let mut creates = Creates::default();

    let (catalogue, policy) = files::rules(
        config.catalogue.as_deref(),
        config.policy.as_deref(),
        &problems,
    );
    let sites = (!problems.has("sites"))
        .then(|| files::read_text("sites", &config.sites, &problems))
        .flatten()
        .and_then(|text| match SiteRegistry::from_toml(&text) {
            Ok(sites) => Some(sites),
            Err(error) => {
                for message in site_problems(error) {
                    problems.push("sites", format!("{}: {message}", config.sites.display()));
                }
                None
            }
        });

    let certificate = Named {
        key: "tls.certificate",
        path: &config.certificate,
    };
    let key = Named {
        key: "tls.key",
        path: &config.key,
    };
    let identity = match (problems.has(certificate.key), problems.has(key.key)) {
        (false, false) => tls::identity(certificate, key, now, &problems),
        // The other file cannot be checked against it, but it can be read.
        (true, false) => files::read(key.key, key.path, &problems).and(None),
        (false, true) => files::read(certificate.key, certificate.path, &problems).and(None),
        (true, true) => None,
    };
    let client_ca = tls::trust_anchors(
        Named {
            key: "tls.client_ca",
            path: &config.client_ca,
        },
        now,
        &problems,
    );
    let enrollment_ca = enrollment_ca(&config, client_ca.as_deref(), &problems);

    let (log_key, nonce_secret) = state(&config, &problems, &mut creates);
    let gpu_trust = gpu_trust(&config, &problems);
    let landmarks = match &config.landmarks {
        None => Some(proto_location::Landmarks::default()),
        Some(path) => files::read_text("location.landmarks", path, &problems).and_then(|text| {
            proto_location::Landmarks::from_toml(&text)
                .map_err(|e| {
                    problems.push("location.landmarks", format!("{}: {e}", path.display()))
                })
                .ok()
        }),
    };

    if let Store::Postgres(url) = &config.store
        && let Err(error) = collector_store_postgres::PostgresStore::check_url(url)
    {
        problems.push("store", error.to_string());
    }

    if let Some(errors) = ConfigErrors::of(path, &problems) {
        return Err(errors);
    }
    // Every value is known once there is no problem; a missing one here is a bug in the
    // checks above, reported as such rather than a panic.
    let (
        Some((catalogue, catalogue_toml)),
        Some((policy, policy_toml)),
        Some(sites),
        Some(identity),
        Some(client_ca_pem),
        Some(gpu_trust),
        Some(landmarks),
    ) = (
        catalogue, policy, sites, identity, client_ca, gpu_trust, landmarks,
    )
    else {
        return Err(ConfigErrors::incomplete(path));
    };
    Ok(Startup {
        rules: Rules {
            catalogue,
            policy,
            policy_toml,
            catalogue_toml,
            sites,
            max_future_skew_ms: millis(config.max_future_skew),
            max_backlog_ms: millis(config.max_backlog),
        },
        tls: TlsFiles {
            certificate_pem: identity.certificate_pem,
            key_pem: identity.key_pem,
            client_ca_pem,
        },
        enrollment_ca,
        log_key,
        nonce_secret,
        creates,
        config,
        gpu_trust,
        landmarks,
        path: path.to_path_buf(),
    })
}

/// What GPU reports are judged against: NVIDIA's Device Identity CA, or the PEM file
/// `[gpu_evidence] roots` names (a test device CA, or NVIDIA's root from a file); with the RIMs
/// and OCSP answers of the directories `rims` and `ocsp` name, when given.
fn gpu_trust(config: &Config, problems: &Problems) -> Option<proto_gpu_evidence::Trust> {
    // Each file is checked, so that every problem is reported at once.
    let trust = match &config.gpu_roots {
        None => Some(proto_gpu_evidence::Trust::nvidia()),
        Some(path) => files::read("gpu_evidence.roots", path, problems).and_then(|pem| {
            proto_gpu_evidence::Trust::from_pem_roots(&pem)
                .map_err(|e| {
                    problems.push("gpu_evidence.roots", format!("{}: {e}", path.display()))
                })
                .ok()
        }),
    };
    let rims = match &config.gpu_rims {
        None => Some(None),
        Some(dir) => directory_files("gpu_evidence.rims", dir, problems).and_then(|rims| {
            proto_gpu_evidence::RimSet::from_files(rims)
                .map(Some)
                .map_err(|e| problems.push("gpu_evidence.rims", format!("{}: {e}", dir.display())))
                .ok()
        }),
    };
    let ocsp = match &config.gpu_ocsp {
        None => Some(None),
        Some(dir) => directory_files("gpu_evidence.ocsp", dir, problems).and_then(|answers| {
            proto_gpu_evidence::OcspCache::from_responses(answers.into_iter().map(|(_, b)| b))
                .map(Some)
                .map_err(|e| problems.push("gpu_evidence.ocsp", format!("{}: {e}", dir.display())))
                .ok()
        }),
    };
    let (mut trust, rims, ocsp) = (trust?, rims?, ocsp?);
    if let Some(rims) = rims {
        trust = trust.with_rims(rims);
    }
    if let Some(ocsp) = ocsp {
        trust = trust.with_ocsp(ocsp);
    }
    Some(trust)
}

/// Every regular file of `dir` (not recursing), by name, with its bytes.
fn directory_files(key: &str, dir: &Path, problems: &Problems) -> Option<Vec<(String, Vec<u8>)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            problems.push(key, files::cannot_read(dir, &error));
            return None;
        }
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() {
            let bytes = files::read(key, &path, problems)?;
            found.push((entry.file_name().to_string_lossy().into_owned(), bytes));
        }
    }
    found.sort();
    Some(found)
}

fn site_problems(error: SiteError) -> Vec<String> {
    match error {
        SiteError::Parse(message) => vec![message],
        SiteError::Invalid(fields) => fields
            .into_iter()
            .map(|(key, message)| format!("{key}: {message}"))
            .collect(),
    }
}

/// The CA that issues enrolled agents' certificates: loadable, and one the server trusts, or
/// every certificate it issues would be refused.
fn enrollment_ca(
    config: &Config,
    client_ca: Option<&[u8]>,
    problems: &Problems,
) -> Option<collector_pki::Ca> {
    let dir = config.enrollment_ca_dir.as_ref()?;
    if problems.has("enrollment.ca_dir") {
        return None;
    }
    let ca = match collector_pki::Ca::load(dir) {
        Ok(ca) => ca,
        Err(error) => {
            problems.push("enrollment.ca_dir", error.to_string());
            return None;
        }
    };
    if let Some(client_ca) = client_ca {
        let trusted = tls::certificates_of(client_ca);
        let issuing = tls::certificates_of(ca.ca_pem().as_bytes());
        if !issuing.iter().any(|der| trusted.contains(der)) {
            problems.push(
                "enrollment.ca_dir",
                format!(
                    "{}/ca.pem is not among the certificates of tls.client_ca ({}): the \
                     collector would refuse every certificate this CA issues to agents",
                    dir.display(),
                    config.client_ca.display()
                ),
            );
        }
    }
    Some(ca)
}

/// The state directory and the secrets kept across restarts: what exists is read and checked,
/// what does not is listed in `creates`.
fn state(
    config: &Config,
    problems: &Problems,
    creates: &mut Creates,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    if problems.has("state_dir") {
        return (None, None);
    }
    let Some(made) = files::writable_dir("state_dir", &config.state_dir, problems) else {
        return (None, None);
    };
    if made {
        creates.add(&config.state_dir, "state directory, mode 0700");
    }
    let nonce_path = config.state_dir.join("nonce.key");
    // Read at every start, never rewritten.
    let nonce_secret = if nonce_path.exists() {
        files::read("state_dir", &nonce_path, problems).and_then(|secret| {
            if secret.len() < 32 {
                problems.push(
                    "state_dir",
                    format!("{} is shorter than 32 bytes", nonce_path.display()),
                );
                None
            } else {
                Some(secret)
            }
        })
    } else {
        creates.add(&nonce_path, "the secret nonces are made with, mode 0600");
        None
    };
    if let Store::Sqlite(db) = &config.store
        && files::writable_file("state_dir", db, problems) == Some(false)
    {
        creates.add(db, "the SQLite store");
    }

    let log_key = log_key(config, problems, creates);
    (log_key, nonce_secret)
}

/// The log key and its public half beside it (`log.pub`, written at every start).
fn log_key(config: &Config, problems: &Problems, creates: &mut Creates) -> Option<Vec<u8>> {
    const KEY: &str = "audit.log_key";
    if problems.has(KEY) {
        return None;
    }
    let path = &config.log_key;
    if let Some(dir) = path.parent().filter(|dir| *dir != config.state_dir)
        && files::writable_dir(KEY, dir, problems)?
    {
        creates.add(dir, "directory of the log key");
    }
    let existing = files::private_file(KEY, path, problems)?;
    let pkcs8 = match existing {
        Some(pkcs8) => match proto_seal::Ed25519Signer::from_pkcs8(&pkcs8) {
            Ok(_) => Some(pkcs8),
            Err(error) => {
                problems.push(
                    KEY,
                    format!("{} is not an Ed25519 PKCS#8 key: {error}", path.display()),
                );
                return None;
            }
        },
        None => {
            creates.add(path, "the log key, mode 0600: a new log identity");
            None
        }
    };
    let public = path.with_extension("pub");
    if files::writable_file(KEY, &public, problems) == Some(false) {
        creates.add(&public, "the log's public key, which auditors pin");
    }
    pkcs8
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
