//! What `check-config` and `run` both do first: read the configuration and every file it
//! names, and check that `run` can do its work: catalogue and policy valid, the NVML library
//! readable, the collector's CA, this host's certificate and its key (the key the
//! certificate's; a host that has none is not enrolled yet), the state directory writable and
//! the signing key in it private. Every problem is reported at once, with its key. Nothing is
//! created here: what `run` will create on a first start is listed, and made only after every
//! check passed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use proto_accounting::{Catalogue, Policy};
use proto_config::files::{self, Creates};
use proto_config::tls::{self, Named};
use proto_config::{ConfigErrors, Problems};
use proto_seal::Ed25519Signer;

use crate::config::Config;

/// The collector's CA, this host's client certificate and its key, PEM.
pub use proto_config::tls::ClientTls as Tls;

/// Everything `run` starts from, read and checked.
#[derive(Debug)]
pub struct Startup {
    pub config: Config,
    pub catalogue: Catalogue,
    pub policy: Policy,
    /// The mutual-TLS material, with a `[collector]` section.
    pub tls: Option<Tls>,
    /// The signing key when it exists; `run` makes one otherwise.
    pub signing_key: Option<Ed25519Signer>,
    /// What `run` will create.
    pub creates: Creates,
    /// The configuration file.
    pub path: PathBuf,
}

/// The signing key's file in the state directory.
pub const SIGNING_KEY: &str = "signing-key.pk8";

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
    let catalogue = catalogue.map(|(catalogue, _)| catalogue);
    let policy = policy.map(|(policy, _)| policy);
    if let Some(library) = &config.nvml_library
        && !problems.has("nvml.library")
    {
        files::readable("nvml.library", library, &problems);
    }
    let tls = collector_tls(&config, path, now, &problems);
    let signing_key = state(&config, &problems, &mut creates);

    if let Some(errors) = ConfigErrors::of(path, &problems) {
        return Err(errors);
    }
    let (Some(catalogue), Some(policy)) = (catalogue, policy) else {
        return Err(ConfigErrors::incomplete(path));
    };
    Ok(Startup {
        config,
        catalogue,
        policy,
        tls,
        signing_key,
        creates,
        path: path.to_path_buf(),
    })
}

/// The `[collector]` section's files. A host with neither its certificate nor its key is
/// not enrolled yet, which is said as such.
fn collector_tls(
    config: &Config,
    path: &Path,
    now: SystemTime,
    problems: &Problems,
) -> Option<Tls> {
    let collector = config.collector.as_ref()?;
    let ca = tls::trust_anchors(
        Named {
            key: "collector.ca",
            path: &collector.ca,
        },
        now,
        problems,
    );
    let certificate = Named {
        key: "collector.certificate",
        path: &collector.certificate,
    };
    let key = Named {
        key: "collector.key",
        path: &collector.key,
    };
    if problems.has(certificate.key) || problems.has(key.key) {
        return None;
    }
    if !certificate.path.exists() && !key.path.exists() {
        problems.push(
            certificate.key,
            format!(
                "{} and {} do not exist: this host is not enrolled yet. Enroll it with \
                 `veu-agent enroll --config {} --token TOKEN`, a token from \
                 `veuctl enroll-token --site {}`",
                certificate.path.display(),
                key.path.display(),
                path.display(),
                config.site_id
            ),
        );
        return None;
    }
    let identity = tls::identity(certificate, key, now, problems)?;
    Some(Tls::new(ca?, identity))
}

/// The state directory, and the signing key in it: an existing key is read (refused when
/// others can read it); a missing one is listed in `creates`.
fn state(config: &Config, problems: &Problems, creates: &mut Creates) -> Option<Ed25519Signer> {
    if problems.has("state_dir") {
        return None;
    }
    if files::writable_dir("state_dir", &config.state_dir, problems)? {
        creates.add(&config.state_dir, "state directory, mode 0700");
    }
    let spool = config.state_dir.join("spool");
    if files::writable_dir("state_dir", &spool, problems) == Some(true) {
        creates.add(&spool, "the spool of signed attestations");
    }
    files::writable_file("state_dir", &config.state_dir.join("chain.state"), problems);
    files::writable_file("state_dir", &config.state_dir.join("lock"), problems);
    let key = config.state_dir.join(SIGNING_KEY);
    match std::fs::symlink_metadata(&key) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            creates.add(
                &key,
                "the signing key, mode 0600; `veu-agent key` prints it",
            );
            None
        }
        _ => match agent_sign::load(&key) {
            Ok(signer) => Some(signer),
            Err(error) => {
                problems.push("state_dir", error.to_string());
                None
            }
        },
    }
}
