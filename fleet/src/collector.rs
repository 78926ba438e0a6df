//! A collector on a development PKI: `veu-collector pki init` and its configuration.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::binaries::{self, Binaries};
use crate::command::run_ok;
use crate::daemon::{StartError, write};

/// A collector's configuration, as its `collector.toml`: the development PKI, the sites, the
/// policy and the checkpoint cadence every collector of a fleet needs, and whatever one adds.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// `store = URL` (PostgreSQL) when given; the embedded SQLite store otherwise.
    pub store: Option<String>,
    /// It listens on 127.0.0.1:`port`.
    pub port: u16,
    /// The development PKI's directory (`pki_init`'s), relative to the configuration's
    /// directory or absolute; its CA enrols the agents.
    pub pki: PathBuf,
    /// The site registry.
    pub sites: PathBuf,
    /// The policy.
    pub policy: PathBuf,
    /// Whole sections after `[rules]` (`[ingest]`, `[report]`, `[metrics]`…).
    pub sections: String,
    /// How often it signs a checkpoint (`1s`).
    pub tree_head_every: String,
    /// More keys of `[audit]`, then `[[audit.witnesses]]` tables.
    pub audit: String,
}

impl CollectorConfig {
    /// On 127.0.0.1:`port` with the PKI in `pki`, `sites.toml` beside the configuration,
    /// `policy`, and a checkpoint every second.
    pub fn new(port: u16, pki: impl Into<PathBuf>, policy: impl Into<PathBuf>) -> Self {
        Self {
            store: None,
            port,
            pki: pki.into(),
            sites: PathBuf::from("sites.toml"),
            policy: policy.into(),
            sections: String::new(),
            tree_head_every: "1s".to_owned(),
            audit: String::new(),
        }
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let store = self
            .store
            .as_ref()
            .map(|url| format!("store = \"{url}\"\n"))
            .unwrap_or_default();
        let pki = |file: &str| self.pki.join(file).display().to_string();
        format!(
            "{store}listen = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\nsites = \"{sites}\"\n\n\
             [tls]\ncertificate = \"{certificate}\"\nkey = \"{key}\"\nclient_ca = \"{ca}\"\n\n\
             [enrollment]\nca_dir = \"{ca_dir}\"\n\n\
             [rules]\npolicy = \"{policy}\"\n\n\
             {sections}\
             [audit]\ntree_head_every = \"{every}\"\n{audit}",
            port = self.port,
            sites = self.sites.display(),
            certificate = pki("server.pem"),
            key = pki("server.key"),
            ca = pki("ca.pem"),
            ca_dir = self.pki.display(),
            policy = self.policy.display(),
            sections = self.sections,
            every = self.tree_head_every,
            audit = self.audit,
        )
    }

    /// Writes it as `dir/collector.toml`; that file's path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, StartError> {
        let path = dir.join("collector.toml");
        write(&path, self.to_toml())?;
        Ok(path)
    }
}

/// `veu-collector pki init`: a development CA, the server's certificate for 127.0.0.1 and the
/// enrolment CA, in `dir`.
pub fn pki_init(binaries: &Binaries, dir: &Path) -> Result<(), StartError> {
    run_ok(
        Command::new(binaries.path(binaries::COLLECTOR)?)
            .args(["pki", "init", "--server-name", "127.0.0.1", "--dir"])
            .arg(dir),
        "veu-collector pki init",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn the_configuration_has_every_section_and_what_a_fleet_adds() {
        let mut config = CollectorConfig::new(4443, "../pki", "/etc/veu/policy.toml");
        config.store = Some("postgres://db/veu".to_owned());
        config.sections = "[metrics]\nlisten = \"127.0.0.1:9100\"\n\n".to_owned();
        config.audit =
            "origin = \"example/log\"\n\n[[audit.witnesses]]\nurl = \"http://w\"\nkey = \"k\"\n"
                .to_owned();
        let value: toml::Table = config.to_toml().parse().unwrap();
        assert_eq!(value["store"].as_str(), Some("postgres://db/veu"));
        assert_eq!(value["listen"].as_str(), Some("127.0.0.1:4443"));
        assert_eq!(value["sites"].as_str(), Some("sites.toml"));
        assert_eq!(
            value["tls"]["certificate"].as_str(),
            Some("../pki/server.pem")
        );
        assert_eq!(value["tls"]["key"].as_str(), Some("../pki/server.key"));
        assert_eq!(value["tls"]["client_ca"].as_str(), Some("../pki/ca.pem"));
        assert_eq!(value["enrollment"]["ca_dir"].as_str(), Some("../pki"));
        assert_eq!(
            value["rules"]["policy"].as_str(),
            Some("/etc/veu/policy.toml")
        );
        assert_eq!(value["metrics"]["listen"].as_str(), Some("127.0.0.1:9100"));
        assert_eq!(value["audit"]["tree_head_every"].as_str(), Some("1s"));
        assert_eq!(value["audit"]["origin"].as_str(), Some("example/log"));
        assert_eq!(value["audit"]["witnesses"][0]["key"].as_str(), Some("k"));
    }

    #[test]
    fn without_a_store_the_file_starts_with_the_listener() {
        let config = CollectorConfig::new(1, "pki", "policy.toml");
        assert!(config.to_toml().starts_with("listen = \"127.0.0.1:1\"\n"));
        assert!(config.to_toml().parse::<toml::Table>().is_ok());
    }
}
