//! The README's "Quick start: operate a fleet", run as written: its shell commands are read
//! out of README.md (not copied here) and run one by one with `sh`, from the repository root,
//! with the workspace's binaries on `PATH`. The only changes are where they must be, each one
//! named in the README itself:
//!
//! - directories: `/etc/veu-*` and `/var/lib/veu-*` under a temporary directory;
//! - the collector's name and ports: `collector.example.com` is 127.0.0.1, and ports are free
//!   ones (7443, 9464, 9465 may be taken);
//! - the edits the README's comments ask for, as its "On one machine without GPUs" paragraph
//!   says: the simulated-evidence policy on the collector, the fake NVML library and a fixture
//!   for the agent;
//! - `cargo build --release --workspace` is not run again: the test runs the binaries `cargo
//!   test` built, and the daemons' `run` are started in the background.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use veu_fleet::{Process, STARTUP};

use crate::support::{binary, eventually, free_port};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The text of the README section under `## {heading}`, up to the next `## `.
fn section<'a>(readme: &'a str, heading: &str) -> &'a str {
    let start = readme
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no section {heading:?}"));
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// The shell commands of a section's ```sh blocks: continuation lines joined, comment lines
/// and blank lines left out.
fn commands(section: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in section.lines() {
        match (in_block, line.trim()) {
            (false, "```sh") => in_block = true,
            (true, "```") => in_block = false,
            (true, text) if text.is_empty() || text.starts_with('#') => {}
            (true, text) => match text.strip_suffix('\\') {
                Some(start) => pending.push_str(start),
                None => {
                    pending.push_str(text);
                    commands.push(std::mem::take(&mut pending));
                }
            },
            _ => {}
        }
    }
    commands
}

/// The README's places and names, and where this test puts them.
struct Places {
    root: PathBuf,
    port: u16,
    collector_metrics: u16,
    agent_metrics: u16,
}

impl Places {
    /// A command or a configuration file, with directories, the collector's name and the ports
    /// replaced. Idempotent: a path already under `root` is left as it is.
    fn localize(&self, text: &str) -> String {
        let root = self.root.display().to_string();
        let mut text = text.to_owned();
        for dir in ["/etc/veu-collector", "/etc/veu-agent", "/var/lib/veu-"] {
            for before in [' ', '"'] {
                text = text.replace(&format!("{before}{dir}"), &format!("{before}{root}{dir}"));
            }
        }
        text.replace(
            "collector.example.com:7443",
            &format!("127.0.0.1:{}", self.port),
        )
        .replace("collector.example.com", "127.0.0.1")
        .replace("0.0.0.0:7443", &format!("127.0.0.1:{}", self.port))
        .replace(
            "127.0.0.1:9465",
            &format!("127.0.0.1:{}", self.collector_metrics),
        )
        .replace(
            "127.0.0.1:9464",
            &format!("127.0.0.1:{}", self.agent_metrics),
        )
    }

    /// The configuration files copied so far, localized, with the edits of the README's
    /// "On one machine without GPUs" paragraph.
    fn edit_configs(&self) {
        let policy = repo().join("deploy/policies/uveu-2025-us-simulated.toml");
        let library = binary("libveu_fake_nvml.so");
        for (file, from, to) in [
            (
                "etc/veu-collector/collector.toml",
                "# policy = ",
                format!("policy = \"{}\"", policy.display()),
            ),
            (
                "etc/veu-agent/agent.toml",
                "# library = ",
                format!("library = \"{}\"", library.display()),
            ),
        ] {
            let path = self.root.join(file);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let edited: String = self
                .localize(&text)
                .lines()
                .map(|line| match line.starts_with(from) {
                    true => format!("{to}\n"),
                    false => format!("{line}\n"),
                })
                .collect();
            std::fs::write(&path, edited).unwrap();
        }
    }
}

#[test]
fn the_readme_operator_path_works_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = section(&readme, "Quick start: operate a fleet");
    // What this test changes is what the README says may change.
    for named in [
        "uveu-2025-us-simulated.toml",
        "libveu_fake_nvml.so",
        "VEU_FAKE_NVML_FIXTURE=tests/fixtures/nvml/dgx-h100.json",
        "`collector.example.com` stands for",
    ] {
        assert!(
            section.contains(named),
            "the README no longer says {named:?}"
        );
    }
    let commands = commands(section);
    assert_eq!(
        commands.first().map(String::as_str),
        Some(
            "cargo build --release --workspace          # veu-collector, veu-agent, veuctl in target/release/"
        ),
        "the path starts with the build, which this test does not repeat"
    );

    let dir = tempfile::tempdir().unwrap();
    let places = Places {
        root: dir.path().to_path_buf(),
        port: free_port(),
        collector_metrics: free_port(),
        agent_metrics: free_port(),
    };
    let bin = binary("veuctl").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let fixture = repo().join("tests/fixtures/nvml/dgx-h100.json");
    let mut token: Option<String> = None;
    let mut daemons = Vec::new();
    let mut last = None;
    for command in &commands[1..] {
        let command = places.localize(command);
        let command = match &token {
            Some(token) => command.replace("<TOKEN>", token),
            None => command,
        };
        let mut shell = Command::new("sh");
        shell
            .args(["-c", &command])
            .current_dir(repo())
            .env("PATH", &path)
            .env("VEU_FAKE_NVML_FIXTURE", &fixture)
            .env_remove("VEU_COLLECTOR")
            .env_remove("VEU_PKI_DIR")
            .env_remove("VEU_SERVER_NAME");
        if command.contains(" run --config ") {
            let log = dir.path().join(format!("daemon-{}.log", daemons.len()));
            // Started in the foreground by the README, here in the background; killed when
            // dropped.
            shell
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap());
            daemons.push(Process::spawn(&command, &mut shell).unwrap());
            if command.starts_with("veu-collector") {
                veu_fleet::wait_listening("the collector", places.port, STARTUP, &log)
                    .unwrap_or_else(|error| panic!("{error}"));
            }
            continue;
        }
        let output = shell.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "`{command}` failed ({}):\n{stdout}{stderr}\ndaemon logs: {}",
            output.status,
            logs(dir.path())
        );
        if command.starts_with("veuctl enroll-token") {
            token = Some(stdout.trim().to_owned());
        }
        if command.starts_with("cp ") {
            places.edit_configs();
        }
        last = Some((command, stdout));
    }

    // The last command, `veuctl status`, shows the host the README enrolled once its first
    // attestation arrived: it is read again until then.
    let (status, _) = last.unwrap();
    assert!(status.starts_with("veuctl status"), "{status}");
    let mut shown = String::new();
    eventually(Duration::from_secs(30), "the host in veuctl status", || {
        let output = Command::new("sh")
            .args(["-c", &status])
            .current_dir(repo())
            .env("PATH", &path)
            .output()
            .unwrap();
        shown = String::from_utf8_lossy(&output.stdout).into_owned();
        output.status.success() && shown.contains("COMPLIANT: all 4 rules hold")
    });
    assert!(
        shown.contains("Rejections: none"),
        "{shown}\n{}",
        logs(dir.path())
    );
    drop(daemons);
}

fn logs(dir: &Path) -> String {
    let mut text = String::new();
    for n in 0..2 {
        let log = dir.join(format!("daemon-{n}.log"));
        text.push_str(&format!(
            "\n--- {}\n{}",
            log.display(),
            std::fs::read_to_string(&log).unwrap_or_default()
        ));
    }
    text
}
