//! Start-up that tells the truth: every problem `run` would meet is found by `check-config`
//! first, all at once and each with its key; `run` finds the same problems, exits with status
//! 78 and leaves the state directory as it was (no signing key, no spool).

use std::path::PathBuf;
use std::process::Output;

use veu_daemon_kit::testing;

use super::{agent_bin, fake_nvml, repo};

/// An enrolled host's files (the collector's CA, this host's certificate and key) and a valid
/// configuration, whose lines the tests replace to break one thing at a time.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        std::fs::create_dir(&tls).unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["collector.example.com".into()]).unwrap();
        let agent = rcgen::generate_simple_self_signed(vec!["gpu-test-1".into()]).unwrap();
        std::fs::write(tls.join("ca.pem"), ca.cert.pem()).unwrap();
        std::fs::write(tls.join("agent.pem"), agent.cert.pem()).unwrap();
        std::fs::write(tls.join("agent.key"), agent.signing_key.serialize_pem()).unwrap();
        std::fs::write(tls.join("other.key"), ca.signing_key.serialize_pem()).unwrap();
        let host = Self { dir };
        host.config(&[]);
        host
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes agent.toml, each `(from, to)` replacing a line that starts with `from`.
    fn config(&self, replace: &[(&str, &str)]) {
        let text = format!(
            "host_id = \"gpu-test-1\"\nsite_id = \"us-va-1\"\nstate_dir = \"state\"\n\
             [attestation]\ninterval = \"60s\"\n[nvml]\nlibrary = \"{}\"\n[rules]\n# policy\n\
             [collector]\nendpoint = \"https://collector.example.com:7443\"\nca = \"tls/ca.pem\"\n\
             certificate = \"tls/agent.pem\"\nkey = \"tls/agent.key\"\n[log]\nformat = \"text\"\n",
            fake_nvml().display()
        );
        std::fs::write(
            self.path("agent.toml"),
            testing::replace_lines(&text, replace),
        )
        .unwrap();
    }

    fn command(&self, command: &str) -> Output {
        testing::command(&agent_bin(), command, &self.path("agent.toml"))
    }

    fn listing(&self) -> Vec<PathBuf> {
        testing::listing(self.dir.path())
    }

    /// `check-config` and `run` both exit with 78, naming exactly `keys` in that order with
    /// the messages' `fragments`; neither creates anything.
    fn refused(&self, keys: &[&str], fragments: &[&str]) -> String {
        testing::refused(
            &agent_bin(),
            &self.path("agent.toml"),
            self.dir.path(),
            keys,
            fragments,
        )
    }
}

#[test]
fn check_config_lists_what_run_will_create_and_creates_nothing() {
    let host = Host::new();
    let before = host.listing();
    let output = host.command("check-config");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    for created in [
        "state (state directory",
        "signing-key.pk8 (the signing key",
        "spool",
    ] {
        assert!(stdout.contains(created), "{stdout}");
    }
    assert_eq!(host.listing(), before);
}

#[test]
fn a_host_without_its_certificate_is_not_enrolled_yet() {
    let host = Host::new();
    std::fs::remove_file(host.path("tls/agent.pem")).unwrap();
    std::fs::remove_file(host.path("tls/agent.key")).unwrap();
    host.refused(
        &["collector.certificate"],
        &[
            "this host is not enrolled yet",
            "veu-agent enroll --config",
            "veuctl enroll-token --site us-va-1",
        ],
    );
}

#[test]
fn swapped_certificate_and_key_are_named_as_swapped() {
    let host = Host::new();
    host.config(&[
        ("certificate =", "certificate = \"tls/agent.key\""),
        ("key =", "key = \"tls/agent.pem\""),
    ]);
    host.refused(
        &["collector.certificate", "collector.key"],
        &["are collector.certificate and collector.key swapped?"],
    );
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let host = Host::new();
    host.config(&[("key =", "key = \"tls/other.key\"")]);
    host.refused(
        &["collector.key"],
        &["other.key is not the key of the certificate in"],
    );
}

#[test]
fn a_state_directory_that_cannot_be_made_is_refused() {
    let host = Host::new();
    std::fs::write(host.path("blocker"), "a file\n").unwrap();
    host.config(&[("state_dir", "state_dir = \"blocker/state\"")]);
    host.refused(&["state_dir"], &["blocker/state cannot be made"]);
}

#[test]
fn an_invalid_policy_file_is_refused_with_its_problems() {
    let host = Host::new();
    let shipped =
        std::fs::read_to_string(repo().join("deploy/policies/uveu-2025-us.toml")).unwrap();
    std::fs::write(
        host.path("policy.toml"),
        shipped.replacen("version = ", "version = 0 #", 1),
    )
    .unwrap();
    host.config(&[("# policy", "policy = \"policy.toml\"")]);
    host.refused(
        &["rules.policy"],
        &["policy.toml: version: must be at least 1"],
    );
}

#[test]
fn every_problem_is_reported_at_once_and_a_bad_enumeration_hides_none() {
    let host = Host::new();
    host.config(&[
        ("site_id", "site_id = \"us va\""),
        ("interval", "interval = \"often\"\nintervall = \"5s\""),
        ("library", "library = \"/nonexistent/libnvidia-ml.so.1\""),
        ("ca =", "ca = \"tls/missing.pem\""),
        ("format", "format = \"xml\""),
    ]);
    host.refused(
        &[
            "site_id",
            "attestation.interval",
            "attestation.intervall",
            "log.format",
            "nvml.library",
            "collector.ca",
        ],
        &[
            "has 6 errors",
            "\"often\" is not a duration",
            "unknown key (known in [attestation]:",
            "unknown variant `xml`, expected `text` or `json`",
            "/nonexistent/libnvidia-ml.so.1 does not exist",
            "missing.pem does not exist",
        ],
    );
}
