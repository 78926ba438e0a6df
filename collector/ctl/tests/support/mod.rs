//! Shared by veuctl's test binaries: veuctl as a process against the harness's collector.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};

use collector_testkit::Harness;
use proto_seal::Ed25519Signer;
use serde_json::Value;

/// Seed of the collector's log key in these tests.
pub const LOG_SEED: [u8; 32] = collector_testkit::LOG_SEED;

pub use veu_daemon_kit::hex;

/// The collector's log public key, as its log.pub holds it.
pub fn log_key() -> String {
    hex(Ed25519Signer::from_seed(&LOG_SEED)
        .unwrap()
        .public_key()
        .as_bytes())
}

/// Some other key.
pub fn wrong_key() -> String {
    hex(Ed25519Signer::from_seed(&[78; 32])
        .unwrap()
        .public_key()
        .as_bytes())
}

/// What a veuctl run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{self:?}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// veuctl against the harness's collector.
pub trait Veuctl {
    async fn veuctl(&self, args: &[&str]) -> Run;
    async fn veuctl_with(&self, args: &[&str], stdin: Option<String>) -> Run;
}

impl Veuctl for Harness {
    /// Runs veuctl with `args`, then the collector's address and the PKI directory.
    async fn veuctl(&self, args: &[&str]) -> Run {
        self.veuctl_with(args, None).await
    }

    async fn veuctl_with(&self, args: &[&str], stdin: Option<String>) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_veuctl"));
        command
            .args(args)
            .arg("--collector")
            .arg(format!("https://{}", self.addr))
            .arg("--pki-dir")
            .arg(&self.pki)
            .env_remove("VEU_COLLECTOR")
            .env_remove("VEU_SERVER_NAME")
            .env_remove("VEU_PKI_DIR")
            .env_remove("VEU_CA")
            .env_remove("VEU_CERT")
            .env_remove("VEU_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // veuctl blocks on the collector, which runs on this runtime: wait off its threads.
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("veuctl runs");
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                std::io::Write::write_all(&mut input, text.as_bytes()).unwrap();
            }
            drop(input);
            let output = child.wait_with_output().unwrap();
            Run {
                code: output.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
        })
        .await
        .unwrap()
    }
}

/// The last-known view's (country, TPP) lines of `audit distribution --format json`.
pub fn countries(distribution: &Value) -> Vec<(String, u64)> {
    distribution["last_known"]["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["country"].as_str().unwrap().to_owned(),
                c["tpp"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// veuctl with `args` only: the offline commands (`verify`, `plan`), which reach no collector.
pub async fn veuctl_offline(args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_veuctl"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::task::spawn_blocking(move || {
        let output = command.output().expect("veuctl runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}
