//! The real `veu-witness` binary in a temporary directory, logs made with the project's own log
//! key type (`proto_seal::Ed25519Signer`) over `proto_merkle` trees, and raw HTTP for requests
//! the client would never send.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proto_merkle::{Hash, MemoryTree, consistency_proof, leaf_hash};
use proto_note::{LogSigner, NoteSignature, SignedNote, VerifiedNote, VerifierKey};
use proto_seal::Ed25519Signer;

pub const BIN: &str = env!("CARGO_BIN_EXE_veu-witness");
pub const WITNESS_NAME: &str = "witness.example/test";
pub const ORIGIN: &str = "veu-attest.example/log/test";

/// A witness's files: key, configuration, state.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub vkey: VerifierKey,
    starts: usize,
}

impl Setup {
    /// A key made by `veu-witness keygen` and a configuration following `logs`.
    pub fn new(logs: &[(&str, &VerifierKey)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(BIN)
            .args(["keygen", "--name", WITNESS_NAME, "--out"])
            .arg(dir.path().join("witness.key"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let vkey = VerifierKey::parse(String::from_utf8(output.stdout).unwrap().trim()).unwrap();
        let mut config = format!(
            "listen = \"127.0.0.1:0\"\nname = \"{WITNESS_NAME}\"\nkey_file = \"witness.key\"\n\
             state_dir = \"state\"\nlog_level = \"debug\"\n\
             [limits]\nmax_body = \"4KiB\"\nread_timeout = \"1s\"\nmax_connections = 4\n\
             shutdown_grace = \"2s\"\n"
        );
        for (origin, key) in logs {
            config.push_str(&format!(
                "[[logs]]\norigin = \"{origin}\"\nkeys = [\"{key}\"]\n"
            ));
        }
        std::fs::write(dir.path().join("witness.toml"), config).unwrap();
        Self {
            dir,
            vkey,
            starts: 0,
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("witness.toml")
    }

    /// Starts the witness and waits for the address it prints.
    pub fn start(&mut self) -> Running {
        self.starts += 1;
        let log_path = self.dir.path().join(format!("stderr-{}.log", self.starts));
        let mut child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(self.config())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_default();
        let Some(address) = line.trim().strip_prefix("veu-witness listening on ") else {
            let _ = child.kill();
            panic!(
                "the witness did not start: {line:?}\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        };
        let address: SocketAddr = address.parse().unwrap();
        Running {
            child,
            address,
            log_path,
        }
    }
}

/// A running witness process, killed when dropped.
pub struct Running {
    child: Child,
    pub address: SocketAddr,
    log_path: PathBuf,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SIGKILL, as a crash.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status (within `deadline`).
    pub fn terminate(mut self, deadline: Duration) -> Option<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let start = Instant::now();
        while start.elapsed() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A log: a Merkle tree whose leaves depend on `tag`, and its checkpoint key, a
/// `proto_seal::Ed25519Signer` as the collector holds it, used through `sign_unframed`.
pub struct Log {
    pub signer: LogSigner,
    tree: MemoryTree,
    tag: u8,
}

impl Log {
    pub fn new(origin: &str, key_seed: u8, tag: u8) -> Self {
        let key = Arc::new(Ed25519Signer::from_seed(&[key_seed; 32]).unwrap());
        let public = *key.public_key().as_bytes();
        let signer =
            LogSigner::new(origin, public, move |message| key.sign_unframed(message)).unwrap();
        Self {
            signer,
            tree: MemoryTree::new(),
            tag,
        }
    }

    pub fn vkey(&self) -> VerifierKey {
        self.signer.verifier_key().clone()
    }

    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// Appends leaves up to `size`.
    pub fn grow_to(&mut self, size: u64) {
        while self.tree.size() < size {
            let index = self.tree.size();
            self.tree
                .push(leaf_hash(&[&[self.tag][..], &index.to_be_bytes()].concat()));
        }
    }

    /// The signed checkpoint of the current tree, encoded.
    pub fn checkpoint(&self) -> String {
        self.signer
            .sign_checkpoint(self.tree.size(), self.tree.root())
            .unwrap()
            .to_string()
    }

    /// The consistency proof from `old` to the current size (empty from 0 or to itself).
    pub fn proof_from(&self, old: u64) -> Vec<Hash> {
        if old == 0 || old == self.tree.size() {
            return Vec::new();
        }
        consistency_proof(&self.tree, old, self.tree.size()).unwrap()
    }
}

/// Verifies `cosignatures` on `checkpoint` with the witness's key and the log's.
pub fn verify(
    checkpoint: &str,
    cosignatures: &[NoteSignature],
    witness: &VerifierKey,
    log: &VerifierKey,
) -> VerifiedNote {
    let mut note = SignedNote::parse(checkpoint.as_bytes()).unwrap();
    for cosignature in cosignatures {
        note.add_signature(cosignature.clone()).unwrap();
    }
    let verified = note.verify(&[witness.clone(), log.clone()]).unwrap();
    assert_eq!(verified.verified().len(), 2, "log and witness signatures");
    verified
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HTTP answer read off a raw socket.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Sends `request` as is and reads the answer until the server closes, within 10 s.
pub fn raw(address: SocketAddr, request: &[u8]) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // A server that answers early may close before everything is written.
    let _ = stream.write_all(request);
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok(Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// A POST of `body` to `path`, closing the connection after the answer.
pub fn post(address: SocketAddr, path: &str, body: &[u8]) -> Answer {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: witness\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    raw(address, &request).unwrap()
}

/// A GET of `path`.
pub fn get(address: SocketAddr, path: &str) -> Answer {
    let request = format!("GET {path} HTTP/1.1\r\nHost: witness\r\nConnection: close\r\n\r\n");
    raw(address, request.as_bytes()).unwrap()
}
