//! The README's main job: `veuctl demo` runs the whole pipeline with the real binaries.

use std::path::Path;

use crate::support::binary;

#[test]
fn the_demo_catches_the_breach_and_verifies_its_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let output = std::process::Command::new(binary("veuctl"))
        .args(["demo", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Compliant first, then the Malaysian rebuild breaks exactly the Tier-2 rule.
    assert!(stdout.contains("COMPLIANT: all 4 rules hold"), "{stdout}");
    assert!(
        stdout.contains("VIOLATION caught") && stdout.contains("tier2_country_max_share MY"),
        "{stdout}"
    );
    // Caught within two attestation intervals (the demo's agents attest every 2 s).
    let caught: f64 = stdout
        .split("VIOLATION caught ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|seconds| seconds.parse().ok())
        .unwrap();
    assert!(caught <= 4.0, "caught after {caught} s");
    assert!(stdout.contains("PASS"), "{stdout}");
    // The evidence is verified with the witness's key too, and the witness cosigned it.
    assert!(
        stdout.contains("--witness-key witness.regulator.demo+")
            && stdout.contains("Witnessed veu-attest.demo/log: witness.regulator.demo at"),
        "{stdout}"
    );
    assert!(stdout.contains("[9/9"), "{stdout}");
    for file in [
        "report/report.json",
        "report/report.sig",
        "report/report.html",
        "evidence/leaves.jsonl",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    // Six agents, each with its own key, chain and log.
    let agents = std::fs::read_dir(out.join("agents")).unwrap().count();
    assert_eq!(agents, 6);
    // A second run replaces the first one's directory.
    let again = std::process::Command::new(binary("veuctl"))
        .args(["demo", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(again.status.success());
}

/// `veuctl demo --keep-running` started, read up to the environment it prints.
struct KeepRunning {
    veuctl: std::process::Child,
    text: String,
    _dir: tempfile::TempDir,
}

impl KeepRunning {
    /// The demo of the workspace's veuctl, run from the repository.
    fn start() -> Self {
        Self::start_from(&binary("veuctl"), Path::new(env!("CARGO_MANIFEST_DIR")))
    }

    fn start_from(veuctl: &Path, current_dir: &Path) -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut veuctl = std::process::Command::new(veuctl)
            .args(["demo", "--keep-running", "--out"])
            .arg(dir.path().join("demo"))
            .current_dir(current_dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(veuctl.stdout.take().unwrap());
        let (lines, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                if lines.send(line.unwrap_or_default()).is_err() {
                    return;
                }
            }
        });
        let mut text = String::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !text.contains("checkpoint: curl ") {
            let line = received
                .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                .unwrap_or_else(|_| panic!("no environment printed:\n{text}"));
            text.push_str(&line);
            text.push('\n');
        }
        std::thread::spawn(move || while received.recv().is_ok() {});
        Self {
            veuctl,
            text,
            _dir: dir,
        }
    }

    /// The process ids the demo printed: collector, witness, six agents.
    fn pids(&self) -> Vec<u32> {
        let pids: Vec<u32> = self
            .text
            .lines()
            .filter_map(|line| line.split_once(": pid ").map(|(_, pid)| pid.trim()))
            .map(|pid| pid.parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 8, "{}", self.text);
        pids
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &self.veuctl.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for KeepRunning {
    fn drop(&mut self) {
        let _ = self.veuctl.kill();
        let _ = self.veuctl.wait();
    }
}

/// A process that has ended: gone, or a zombie its new parent has not reaped yet.
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (address, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn keep_running_prints_the_environment_serves_metrics_and_stops_everything_on_a_signal() {
    let mut demo = KeepRunning::start();
    let text = demo.text.clone();
    // The environment the README promises, which veuctl takes as it is printed.
    let export = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("export "))
        .unwrap_or_else(|| panic!("no export line:\n{text}"));
    let mut status = std::process::Command::new(binary("veuctl"));
    status.arg("status");
    for assignment in export.split_whitespace() {
        let (name, value) = assignment.split_once('=').unwrap();
        status.env(name, value);
    }
    let shown = status.output().unwrap();
    let shown_text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success() && shown_text.contains("NOT COMPLIANT"),
        "{shown_text}{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    // Metrics and the checkpoint, at the URLs it printed.
    let urls: Vec<&str> = text
        .split_whitespace()
        .filter(|word| word.starts_with("http://127.0.0.1:"))
        .map(|word| word.trim_end_matches([';', ',']))
        .collect();
    let metrics = urls.iter().find(|u| u.ends_with("/metrics")).unwrap();
    let checkpoint = urls.iter().find(|u| u.ends_with("/checkpoint")).unwrap();
    assert!(http_get(metrics).contains("veu_collector_"), "{metrics}");
    crate::support::eventually(std::time::Duration::from_secs(15), "a checkpoint", || {
        http_get(checkpoint).contains("veu-attest.demo/log")
    });

    // SIGTERM to veuctl alone: it stops every process it started, and says so.
    let pids = demo.pids();
    demo.signal("TERM");
    let status = demo.veuctl.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15), "{status:?}");
    for pid in pids {
        assert!(ended(pid), "process {pid} outlived veuctl");
    }
}

#[test]
fn the_demo_runs_without_a_checkout_and_its_processes_end_with_veuctl_even_when_it_is_killed() {
    // The binaries alone, in a directory of their own (hard links: no copy of their size),
    // run from another directory: the demo needs nothing of the repository or the machine
    // that built it.
    let installed = tempfile::tempdir().unwrap();
    for name in [
        "veuctl",
        "veu-collector",
        "veu-agent",
        "veu-witness",
        "libveu_fake_nvml.so",
    ] {
        let target = installed.path().join(name);
        if std::fs::hard_link(binary(name), &target).is_err() {
            std::fs::copy(binary(name), &target).unwrap();
        }
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let mut demo = KeepRunning::start_from(&installed.path().join("veuctl"), elsewhere.path());
    let pids = demo.pids();
    // SIGKILL cannot be caught: each process asked the kernel to end with veuctl.
    demo.signal("KILL");
    demo.veuctl.wait().unwrap();
    crate::support::eventually(
        std::time::Duration::from_secs(10),
        "the demo's processes ending with veuctl",
        || pids.iter().all(|pid| ended(*pid)),
    );
}
