//! What the daemons' own tests share (the `testing` feature): a configuration written with
//! lines replaced, the files under a directory, a start-up refusal checked for both
//! `check-config` and `run`, a signal sent, a free port, a metrics scrape and its check by
//! promtool.
//!
//! Test support: a failed step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `template` with each line that starts with `from` of a `(from, to)` pair replaced by `to`;
/// every line ends with a newline.
pub fn replace_lines(template: &str, replace: &[(&str, &str)]) -> String {
    template
        .lines()
        .map(|line| {
            replace
                .iter()
                .find(|(from, _)| line.starts_with(from))
                .map_or(line, |(_, to)| to)
                .to_owned()
                + "\n"
        })
        .collect()
}

/// Every path under `dir`, sorted, so that a failed start can be shown to leave it as it was.
pub fn listing(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.clone());
            if path.is_dir() {
                walk(&path, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, &mut found);
    found.sort();
    found
}

/// `bin command --config config`, run to its end.
pub fn command(bin: &Path, command: &str, config: &Path) -> Output {
    Command::new(bin)
        .args([command, "--config"])
        .arg(config)
        .output()
        .unwrap()
}

/// `check-config` and `run` of `bin` with `config` both exit with 78, naming every key in
/// `keys` (in that order, once each) with the messages' `fragments`; neither creates nor
/// removes anything under `dir`. Returns what `run` wrote on stderr.
pub fn refused(bin: &Path, config: &Path, dir: &Path, keys: &[&str], fragments: &[&str]) -> String {
    let before = listing(dir);
    let mut stderr = String::new();
    for name in ["check-config", "run"] {
        let output = command(bin, name, config);
        stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(78), "{name}: {stderr}");
        let found: Vec<&str> = stderr
            .lines()
            .filter_map(|line| line.strip_prefix("  "))
            .filter(|line| !line.starts_with(' '))
            .filter_map(|line| line.split_once(": ").map(|(key, _)| key))
            .collect();
        assert_eq!(found, keys, "{name}: {stderr}");
        for fragment in fragments {
            assert!(
                stderr.contains(fragment),
                "{name}: no {fragment:?} in {stderr}"
            );
        }
        assert_eq!(listing(dir), before, "{name} created or removed something");
    }
    stderr
}

/// Sends the signal `name` (`HUP`, `TERM`) to the process `pid` with kill(1).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {name} {pid}: {status}");
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body of `GET /metrics` on 127.0.0.1:`port` (empty when the answer has none).
pub fn scrape(port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// Runs `promtool check metrics` on an exposition; the text must pass without warnings.
pub fn promtool_accepts(exposition: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required (apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool refused the metrics:\n{}{}\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
