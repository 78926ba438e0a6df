//! A witness that cosigns one log's checkpoints: its key and its configuration.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::binaries::{self, Binaries};
use crate::command::run_ok;
use crate::daemon::{StartError, write};

/// `veu-witness keygen`: a witness key named `name` written to `key`; the verifier key it
/// prints, which auditors pin (`NAME+HASH+KEY`).
pub fn keygen(binaries: &Binaries, name: &str, key: &Path) -> Result<String, StartError> {
    let output = run_ok(
        Command::new(binaries.path(binaries::WITNESS)?)
            .args(["keygen", "--name", name, "--out"])
            .arg(key),
        "veu-witness keygen",
    )?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A witness's configuration, as its `witness.toml`: one log it cosigns.
#[derive(Debug, Clone)]
pub struct WitnessConfig {
    /// It listens on 127.0.0.1:`port`.
    pub port: u16,
    /// Its name, as in its key.
    pub name: String,
    /// Its key file, relative to the configuration's directory or absolute.
    pub key_file: PathBuf,
    /// The log's origin: the first line of its checkpoints.
    pub origin: String,
    /// The log's public key, as the collector writes it in `log.pub`.
    pub log_key: String,
}

impl WitnessConfig {
    /// The file's text.
    pub fn to_toml(&self) -> String {
        format!(
            "listen = \"127.0.0.1:{port}\"\nname = \"{name}\"\n\
             key_file = \"{key_file}\"\nstate_dir = \"state\"\n\n\
             [[logs]]\norigin = \"{origin}\"\nkeys = [\"{log_key}\"]\n",
            port = self.port,
            name = self.name,
            key_file = self.key_file.display(),
            origin = self.origin,
            log_key = self.log_key.trim(),
        )
    }

    /// Writes it as `dir/witness.toml`; that file's path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, StartError> {
        let path = dir.join("witness.toml");
        write(&path, self.to_toml())?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn the_configuration_names_the_witness_and_the_log_it_cosigns() {
        let config = WitnessConfig {
            port: 7380,
            name: "witness.example".to_owned(),
            key_file: PathBuf::from("witness.key"),
            origin: "example/log".to_owned(),
            log_key: "example/log+0a0b0c0d+AAAA\n".to_owned(),
        };
        let value: toml::Table = config.to_toml().parse().unwrap();
        assert_eq!(value["listen"].as_str(), Some("127.0.0.1:7380"));
        assert_eq!(value["name"].as_str(), Some("witness.example"));
        assert_eq!(value["key_file"].as_str(), Some("witness.key"));
        assert_eq!(value["state_dir"].as_str(), Some("state"));
        assert_eq!(value["logs"][0]["origin"].as_str(), Some("example/log"));
        assert_eq!(
            value["logs"][0]["keys"][0].as_str(),
            Some("example/log+0a0b0c0d+AAAA")
        );
    }
}
