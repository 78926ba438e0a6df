//! Start-up that tells the truth: every problem `run` would meet is found by `check-config`
//! first, all at once and each with its key; `run` finds the same problems, exits with status
//! 78 and leaves the state directory as it was (nothing created, not even a log key).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use veu_daemon_kit::testing::{self, free_port};

fn collector_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_veu-collector"))
}

const SITES: &str = "[[site]]\nid = \"us-va-1\"\ncountry = \"US\"\n\
                     [[site]]\nid = \"de-fra-1\"\ncountry = \"DE\"\n";

/// A development PKI and a valid configuration in a temporary directory, whose lines the tests
/// replace to break one thing at a time.
struct Setup {
    dir: tempfile::TempDir,
    port: u16,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new(collector_bin())
            .args(["pki", "init", "--server-name", "127.0.0.1", "--dir"])
            .arg(dir.path().join("pki"))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::write(dir.path().join("sites.toml"), SITES).unwrap();
        let setup = Self {
            dir,
            port: free_port(),
        };
        setup.config(&[]);
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes collector.toml, each `(from, to)` replacing a line that starts with `from`.
    fn config(&self, replace: &[(&str, &str)]) {
        let port = self.port;
        let text = format!(
            "listen = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\nsites = \"sites.toml\"\n\
             [tls]\ncertificate = \"pki/server.pem\"\nkey = \"pki/server.key\"\nclient_ca = \"pki/ca.pem\"\n\
             [enrollment]\nca_dir = \"pki\"\n[rules]\n# policy\n[audit]\ntree_head_every = \"1m\"\n\
             [log]\nformat = \"text\"\nlevel = \"warn\"\n"
        );
        std::fs::write(
            self.path("collector.toml"),
            testing::replace_lines(&text, replace),
        )
        .unwrap();
    }

    fn command(&self, command: &str) -> Output {
        testing::command(&collector_bin(), command, &self.path("collector.toml"))
    }

    /// Every file under the directory, so that a failed start can be shown to leave it as it was.
    fn listing(&self) -> Vec<PathBuf> {
        testing::listing(self.dir.path())
    }

    /// `check-config` and `run` both exit with 78, naming every key in `keys` (in that order,
    /// once each) with the messages' `fragments`; neither creates anything.
    fn refused(&self, keys: &[&str], fragments: &[&str]) -> String {
        testing::refused(
            &collector_bin(),
            &self.path("collector.toml"),
            self.dir.path(),
            keys,
            fragments,
        )
    }
}

#[test]
fn check_config_lists_what_run_will_create_and_creates_nothing() {
    let setup = Setup::new();
    let before = setup.listing();
    let output = setup.command("check-config");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    for created in [
        "state (state directory",
        "log.key (the log key",
        "nonce.key",
        "collector.db",
    ] {
        assert!(stdout.contains(created), "{stdout}");
    }
    assert_eq!(setup.listing(), before);
    assert!(!setup.path("state").exists());
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let setup = Setup::new();
    setup.config(&[("key =", "key = \"pki/admin.key\"")]);
    setup.refused(
        &["tls.key"],
        &[
            "admin.key is not the key of the certificate in",
            "server.pem",
        ],
    );
}

#[test]
fn swapped_certificate_and_key_are_named_as_swapped() {
    let setup = Setup::new();
    setup.config(&[
        ("certificate =", "certificate = \"pki/server.key\""),
        ("key =", "key = \"pki/server.pem\""),
    ]);
    setup.refused(
        &["tls.certificate", "tls.key"],
        &[
            "server.key holds a private key, not a certificate: are tls.certificate and tls.key swapped?",
            "server.pem holds a certificate, not a private key",
        ],
    );
}

#[test]
fn a_state_directory_that_cannot_be_made_is_refused() {
    let setup = Setup::new();
    std::fs::write(setup.path("blocker"), "a file, not a directory\n").unwrap();
    setup.config(&[("state_dir", "state_dir = \"blocker/state\"")]);
    setup.refused(&["state_dir"], &["blocker/state cannot be made"]);

    // A directory the daemon may not write to: only checkable when this user is bound by modes.
    let locked = setup.path("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
    let bound_by_modes = std::fs::write(locked.join("probe"), "").is_err();
    if bound_by_modes {
        setup.config(&[("state_dir", "state_dir = \"locked\"")]);
        setup.refused(&["state_dir"], &["locked is not writable"]);
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn duplicate_sites_and_unknown_countries_are_refused_each() {
    let setup = Setup::new();
    std::fs::write(
        setup.path("sites.toml"),
        format!("{SITES}[[site]]\nid = \"us-va-1\"\ncountry = \"US\"\n[[site]]\nid = \"xx-1\"\ncountry = \"XX\"\n"),
    )
    .unwrap();
    setup.refused(
        &["sites", "sites"],
        &[
            "site[2].id: \"us-va-1\" is listed twice",
            "site[3].country: \"XX\"",
        ],
    );
}

#[test]
fn an_invalid_policy_file_is_refused_with_its_problems() {
    let setup = Setup::new();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/policies/uveu-2025-us.toml"),
    )
    .unwrap();
    let broken = shipped.replacen("version = ", "version = 0 #", 1);
    assert_ne!(broken, shipped);
    std::fs::write(setup.path("policy.toml"), broken).unwrap();
    setup.config(&[("# policy", "policy = \"policy.toml\"")]);
    setup.refused(
        &["rules.policy"],
        &["policy.toml: version: must be at least 1"],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let setup = Setup::new();
    std::fs::write(
        setup.path("sites.toml"),
        "[[site]]\nid = \"a\"\ncountry = \"XX\"\n",
    )
    .unwrap();
    setup.config(&[
        ("listen", "listen = \"everywhere\""),
        ("key =", "key = \"pki/missing.key\""),
        ("client_ca", "client_ca = \"pki/server.key\""),
        ("tree_head_every", "tree_head_every = 60"),
        ("format", "format = \"xml\""),
        ("level", "level = \"loud\"\nshade = \"blue\""),
        ("# policy", "policy = \"nowhere.toml\""),
    ]);
    let stderr = setup.refused(
        &[
            "listen",
            "log.format",
            "log.level",
            "log.shade",
            "audit.tree_head_every",
            "rules.policy",
            "sites",
            "tls.key",
            "tls.client_ca",
        ],
        &[
            "has 9 errors",
            "\"everywhere\" is not an address",
            "expected a string",
            "unknown key (known in [log]: format, level)",
            "nowhere.toml does not exist",
            "\"XX\" is not an ISO 3166-1",
            "missing.key does not exist",
            "server.key holds a private key, not a certificate",
        ],
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
}

#[test]
fn a_syntax_error_keeps_its_line_column_and_caret() {
    let setup = Setup::new();
    setup.config(&[("state_dir", "state_dir = /var/lib/veu")]);
    let output = setup.command("check-config");
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("  syntax: TOML parse error at line 2, column 13\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 | state_dir = /var/lib/veu\n"),
        "{stderr}"
    );
    assert!(stderr.contains("|             ^"), "{stderr}");
}

#[test]
fn an_enrollment_ca_the_server_does_not_trust_is_refused() {
    let setup = Setup::new();
    let other = setup.path("other");
    let status = Command::new(collector_bin())
        .args(["pki", "init", "--server-name", "127.0.0.1", "--dir"])
        .arg(&other)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    setup.config(&[("ca_dir", "ca_dir = \"other\"")]);
    setup.refused(
        &["enrollment.ca_dir"],
        &["would refuse every certificate this CA issues"],
    );
}

#[test]
fn an_address_this_host_does_not_have_stops_run_before_anything_is_created() {
    let setup = Setup::new();
    // TEST-NET-1 (RFC 5737): never an address of this host.
    setup.config(&[("[audit]", "[metrics]\nlisten = \"192.0.2.1:9465\"\n[audit]")]);
    assert!(setup.command("check-config").status.success());
    let output = setup.command("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("metrics.listen: cannot listen on 192.0.2.1:9465"),
        "{stderr}"
    );
    assert!(
        !setup.path("state").exists(),
        "a failed start created the state directory"
    );
}

#[test]
fn run_creates_the_state_only_after_every_check_and_refuses_a_log_key_others_can_read() {
    let setup = Setup::new();
    let mut child = Command::new(collector_bin())
        .args(["run", "--config"])
        .arg(setup.path("collector.toml"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let key = setup.path("state/log.key");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", setup.port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the collector did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(key.exists() && setup.path("state/log.pub").exists());
    // Written as the agent's signing key is (proto_seal::keyfile): owner only, whole.
    for secret in [&key, &setup.path("state/nonce.key")] {
        let metadata = std::fs::symlink_metadata(secret).unwrap();
        assert!(metadata.is_file(), "{}", secret.display());
        assert_eq!(
            metadata.permissions().mode() & 0o777,
            0o600,
            "{}",
            secret.display()
        );
    }
    assert!(!setup.path("state/log.tmp").exists() && !setup.path("state/nonce.tmp").exists());
    assert!(proto_seal::keyfile::load(&key).is_ok());

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = setup.refused(&["audit.log_key"], &["log.key has mode 0644", "chmod 600"]);
    assert!(!stderr.contains("run will create"), "{stderr}");
}

#[test]
fn gpu_evidence_files_that_do_not_read_are_refused_each_with_its_key() {
    let setup = Setup::new();
    std::fs::write(setup.path("roots.pem"), "not a certificate\n").unwrap();
    std::fs::create_dir(setup.path("rims")).unwrap();
    std::fs::write(setup.path("rims/driver.xml"), "<not a RIM").unwrap();
    setup.config(&[(
        "[log]",
        "[gpu_evidence]\nroots = \"roots.pem\"\nrims = \"rims\"\nocsp = \"no-such-dir\"\n[log]",
    )]);
    setup.refused(
        &[
            "gpu_evidence.roots",
            "gpu_evidence.rims",
            "gpu_evidence.ocsp",
        ],
        &["roots.pem", "driver.xml", "no-such-dir"],
    );
}

#[test]
fn a_landmark_registry_that_does_not_read_is_refused_with_its_key_and_entry() {
    let setup = Setup::new();
    std::fs::write(
        setup.path("landmarks.toml"),
        "[[landmark]]\nid = \"fra-1\"\nlatitude = 95.0\nlongitude = 8.68\npublic_key = \"not-hex\"\n",
    )
    .unwrap();
    setup.config(&[("[log]", "[location]\nlandmarks = \"landmarks.toml\"\n[log]")]);
    setup.refused(
        &["location.landmarks"],
        &["landmark[0].latitude", "landmark[0].public_key"],
    );
    // A missing registry is refused too, naming the file.
    setup.config(&[("[log]", "[location]\nlandmarks = \"nowhere.toml\"\n[log]")]);
    setup.refused(&["location.landmarks"], &["nowhere.toml"]);
}

#[test]
fn a_policy_requiring_location_without_landmarks_is_valid_but_warned_about() {
    let setup = Setup::new();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/policies/uveu-2025-us.toml"),
    )
    .unwrap();
    std::fs::write(
        setup.path("policy.toml"),
        format!(
            "{}\n[location]\nrequire_for_tier1 = true\n",
            shipped.replace("id = \"uveu-2025-us\"", "id = \"uveu-2025-us-located\"")
        ),
    )
    .unwrap();
    setup.config(&[("# policy", "policy = \"policy.toml\"")]);
    let output = setup.command("check-config");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("warning: the policy counts Tier-1 compute only where landmarks verify"),
        "{stdout}"
    );
    // The shipped policy alone warns about nothing.
    setup.config(&[]);
    let output = setup.command("check-config");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("warning"));
}
