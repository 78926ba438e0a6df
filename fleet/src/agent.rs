//! An agent on the fake NVML library: its configuration, its fixture, its enrolment and its
//! process. Each agent lives in a directory of its own: `agent.toml`, `nvml.json`, `state/`,
//! `tls/`, `agent.log`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::binaries::{self, Binaries};
use crate::command::run_ok;
use crate::daemon::{StartError, write};

/// An agent's configuration, as its `agent.toml`.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Its host's id.
    pub host: String,
    /// Its site's id.
    pub site: String,
    /// Time between attestations.
    pub interval: Duration,
    /// Jitter on that time, in percent.
    pub jitter_percent: u8,
    /// The NVML library it loads: the fake one.
    pub nvml_library: PathBuf,
    /// The collector's URL.
    pub endpoint: String,
    /// The development PKI's CA certificate.
    pub ca: PathBuf,
    /// More tables, appended.
    pub extra: String,
}

impl AgentConfig {
    /// The file's text.
    pub fn to_toml(&self) -> String {
        format!(
            "host_id = \"{host}\"\nsite_id = \"{site}\"\nstate_dir = \"state\"\n\n\
             [attestation]\ninterval = \"{interval}\"\njitter_percent = {jitter}\nwatch_interval = \"500ms\"\n\n\
             [nvml]\nlibrary = \"{library}\"\n\n\
             [collector]\nendpoint = \"{endpoint}\"\nserver_name = \"127.0.0.1\"\nca = \"{ca}\"\n\
             certificate = \"tls/agent.pem\"\nkey = \"tls/agent.key\"\n{extra}",
            host = self.host,
            site = self.site,
            interval = duration(self.interval),
            jitter = self.jitter_percent,
            library = self.nvml_library.display(),
            endpoint = self.endpoint,
            ca = self.ca.display(),
            extra = self.extra,
        )
    }

    /// Writes it as `dir/agent.toml`.
    pub fn write(&self, dir: &Path) -> Result<(), StartError> {
        write(&dir.join("agent.toml"), self.to_toml())
    }
}

/// Gives every GPU of an NVML fixture a UUID and serial of `host`'s own: the same UUID on two
/// hosts is a conflict the collector flags.
pub fn own_gpus(fixture: &mut serde_json::Value, host: &str) {
    if let Some(devices) = fixture
        .get_mut("devices")
        .and_then(serde_json::Value::as_array_mut)
    {
        for (index, device) in devices.iter_mut().enumerate() {
            device["uuid"] = format!("GPU-{host}-{index}").into();
            device["serial"] = format!("SN-{host}-{index}").into();
        }
    }
}

/// Writes an agent's fixture as `dir/nvml.json`, whole then renamed, so that the fake
/// library of a running agent never reads half a file.
pub fn write_fixture(dir: &Path, fixture: &serde_json::Value) -> Result<(), StartError> {
    let path = dir.join("nvml.json");
    let partial = dir.join("nvml.json.partial");
    // A `Value` always serialises.
    write(
        &partial,
        serde_json::to_string_pretty(fixture).unwrap_or_default(),
    )?;
    std::fs::rename(&partial, &path).map_err(|source| StartError::File { path, source })
}

/// `veu-agent enroll` in `dir` with a one-time `token`: the agent's key and certificate.
pub fn enroll(binaries: &Binaries, dir: &Path, token: &str) -> Result<(), StartError> {
    run_ok(
        Command::new(binaries.path(binaries::AGENT)?)
            .args(["enroll", "--config", "agent.toml", "--token", token])
            .current_dir(dir),
        &format!("veu-agent enroll ({})", dir.display()),
    )?;
    Ok(())
}

/// `veu-agent run` in `dir` on its fixture, its log appended to `dir/agent.log` (a restart
/// keeps the earlier lines), its standard output discarded.
pub fn run_command(binaries: &Binaries, dir: &Path) -> Result<Command, StartError> {
    let log = dir.join("agent.log");
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|source| StartError::File { path: log, source })?;
    let mut command = Command::new(binaries.path(binaries::AGENT)?);
    command
        .args(["run", "--config", "agent.toml"])
        .env("VEU_FAKE_NVML_FIXTURE", dir.join("nvml.json"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log_file);
    Ok(command)
}

/// `2s`, or `1500ms` when not whole seconds.
fn duration(interval: Duration) -> String {
    if interval.subsec_millis() == 0 {
        format!("{}s", interval.as_secs())
    } else {
        format!("{}ms", interval.as_millis())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn config(interval: Duration) -> AgentConfig {
        AgentConfig {
            host: "us-1".to_owned(),
            site: "us-va-1".to_owned(),
            interval,
            jitter_percent: 10,
            nvml_library: PathBuf::from("/lib/libveu_fake_nvml.so"),
            endpoint: "https://127.0.0.1:4443".to_owned(),
            ca: PathBuf::from("/pki/ca.pem"),
            extra: "[[landmarks]]\nid = \"lm\"\n".to_owned(),
        }
    }

    #[test]
    fn the_configuration_names_its_host_collector_and_library() {
        let value: toml::Table = config(Duration::from_secs(2)).to_toml().parse().unwrap();
        assert_eq!(value["host_id"].as_str(), Some("us-1"));
        assert_eq!(value["site_id"].as_str(), Some("us-va-1"));
        assert_eq!(value["attestation"]["interval"].as_str(), Some("2s"));
        assert_eq!(
            value["attestation"]["jitter_percent"].as_integer(),
            Some(10)
        );
        assert_eq!(
            value["nvml"]["library"].as_str(),
            Some("/lib/libveu_fake_nvml.so")
        );
        assert_eq!(
            value["collector"]["endpoint"].as_str(),
            Some("https://127.0.0.1:4443")
        );
        assert_eq!(value["collector"]["ca"].as_str(), Some("/pki/ca.pem"));
        assert_eq!(value["landmarks"][0]["id"].as_str(), Some("lm"));
        let value: toml::Table = config(Duration::from_millis(1500))
            .to_toml()
            .parse()
            .unwrap();
        assert_eq!(value["attestation"]["interval"].as_str(), Some("1500ms"));
    }

    #[test]
    fn every_gpu_gets_its_hosts_own_identity_and_the_file_is_replaced_whole() {
        let mut fixture = serde_json::json!({"devices": [{"name": "H100"}, {"name": "H100"}]});
        own_gpus(&mut fixture, "de-1");
        assert_eq!(fixture["devices"][0]["uuid"], "GPU-de-1-0");
        assert_eq!(fixture["devices"][1]["uuid"], "GPU-de-1-1");
        assert_eq!(fixture["devices"][1]["serial"], "SN-de-1-1");
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path(), &fixture).unwrap();
        own_gpus(&mut fixture, "de-2");
        write_fixture(dir.path(), &fixture).unwrap();
        let read: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("nvml.json")).unwrap())
                .unwrap();
        assert_eq!(read, fixture);
        assert!(!dir.path().join("nvml.json.partial").exists());
        // A fixture without devices is left as it is.
        let mut empty = serde_json::json!({"driver": "none"});
        own_gpus(&mut empty, "x");
        assert_eq!(empty, serde_json::json!({"driver": "none"}));
    }
}
