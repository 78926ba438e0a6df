//! The bundle's files: `manifest.json`, `heads.json`, `consistency.json`, `leaves.jsonl` (one
//! leaf per line, so a large export streams), `policy.toml` and `catalogue.toml`; and, from
//! collectors that have them, `landmarks.toml` (the landmarks whose round trips counted) and
//! `sites.toml` (where each site says it is).

use std::fs;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The `format` every manifest names.
pub const FORMAT: &str = "veu-evidence-bundle/1";

const MANIFEST: &str = "manifest.json";
const HEADS: &str = "heads.json";
const CONSISTENCY: &str = "consistency.json";
const LEAVES: &str = "leaves.jsonl";
const POLICY: &str = "policy.toml";
const CATALOGUE: &str = "catalogue.toml";
/// The end head as a C2SP checkpoint, with the cosignatures witnesses gave it (optional).
pub const CHECKPOINT: &str = "checkpoint.txt";
/// The collector's trusted landmarks (optional).
pub const LANDMARKS: &str = "landmarks.toml";
/// The collector's site registry (optional).
pub const SITES: &str = "sites.toml";

/// What the export covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    /// The requested range of receipt times, `[from_ms, to_ms)`.
    pub from_ms: i64,
    pub to_ms: i64,
    /// The tree heads the leaf range runs between.
    pub start_tree_size: u64,
    pub end_tree_size: u64,
    /// Leaves in `leaves.jsonl`, as the collector counted them.
    pub leaves: u64,
    /// Hex SHA-256 of the log key the heads are signed with.
    pub log_key_id: String,
}

/// A signed tree head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub tree_size: u64,
    /// Hex Merkle root (a convenience copy; the signed bytes are in `envelope`).
    pub root: String,
    pub timestamp_ms: i64,
    /// Hex of the encoded signed envelope.
    pub envelope: String,
}

/// A consistency proof between two heads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consistency {
    pub first_tree_size: u64,
    pub second_tree_size: u64,
    pub proof: Vec<String>,
}

/// One log leaf with its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leaf {
    pub log_index: u64,
    /// Hex of the entry bytes (`proto_evidence::LogEntry`).
    pub entry: String,
    /// Hex of the stored envelope, for attestation leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<String>,
    /// The head the proof leads to.
    pub tree_size: u64,
    pub path: Vec<String>,
}

/// A whole bundle in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub manifest: Manifest,
    pub heads: Vec<Head>,
    pub consistency: Vec<Consistency>,
    pub leaves: Vec<Leaf>,
    pub policy_toml: String,
    pub catalogue_toml: String,
    /// The end head as a signed checkpoint note, cosignatures included, when the collector
    /// sent one.
    pub checkpoint: Option<String>,
    /// The landmarks the collector trusted, when it sent them (an auditor may pin its own).
    pub landmarks_toml: Option<String>,
    /// The collector's site registry, when it sent it.
    pub sites_toml: Option<String>,
}

/// A bundle that could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file is not what the format says.
    #[error("{path}:{line}: {message}")]
    Format {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, BundleError> {
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    serde_json::from_str(&text).map_err(|error| BundleError::Format {
        path: path.to_path_buf(),
        line: error.line(),
        message: error.to_string(),
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), BundleError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|error| BundleError::Format {
        path: path.to_path_buf(),
        line: 0,
        message: error.to_string(),
    })?;
    text.push('\n');
    fs::write(path, text).map_err(io_error(path))
}

impl Bundle {
    /// Writes the bundle into `dir` (created if needed; existing bundle files are replaced).
    pub fn write(&self, dir: &Path) -> Result<(), BundleError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        write_json(&dir.join(MANIFEST), &self.manifest)?;
        write_json(&dir.join(HEADS), &self.heads)?;
        write_json(&dir.join(CONSISTENCY), &self.consistency)?;
        let leaves = dir.join(LEAVES);
        let file = fs::File::create(&leaves).map_err(io_error(&leaves))?;
        let mut out = BufWriter::new(file);
        for leaf in &self.leaves {
            let line = serde_json::to_string(leaf).map_err(|error| BundleError::Format {
                path: leaves.clone(),
                line: 0,
                message: error.to_string(),
            })?;
            writeln!(out, "{line}").map_err(io_error(&leaves))?;
        }
        out.flush().map_err(io_error(&leaves))?;
        let policy = dir.join(POLICY);
        fs::write(&policy, &self.policy_toml).map_err(io_error(&policy))?;
        let catalogue = dir.join(CATALOGUE);
        fs::write(&catalogue, &self.catalogue_toml).map_err(io_error(&catalogue))?;
        for (name, text) in [
            (CHECKPOINT, &self.checkpoint),
            (LANDMARKS, &self.landmarks_toml),
            (SITES, &self.sites_toml),
        ] {
            let path = dir.join(name);
            match text {
                Some(text) => fs::write(&path, text).map_err(io_error(&path))?,
                None => match fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(io_error(&path)(e));
                    }
                    _ => {}
                },
            }
        }
        Ok(())
    }

    /// Reads a bundle from `dir`; any unreadable file or line is an error naming it.
    pub fn read(dir: &Path) -> Result<Self, BundleError> {
        let manifest: Manifest = read_json(&dir.join(MANIFEST))?;
        if manifest.format != FORMAT {
            return Err(BundleError::Format {
                path: dir.join(MANIFEST),
                line: 1,
                message: format!("format {:?} is not {FORMAT:?}", manifest.format),
            });
        }
        let heads = read_json(&dir.join(HEADS))?;
        let consistency = read_json(&dir.join(CONSISTENCY))?;
        let path = dir.join(LEAVES);
        let file = fs::File::open(&path).map_err(io_error(&path))?;
        let mut leaves = Vec::new();
        for (number, line) in io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(io_error(&path))?;
            if line.trim().is_empty() {
                continue;
            }
            let leaf = serde_json::from_str(&line).map_err(|error| BundleError::Format {
                path: path.clone(),
                line: number + 1,
                message: error.to_string(),
            })?;
            leaves.push(leaf);
        }
        let policy = dir.join(POLICY);
        let catalogue = dir.join(CATALOGUE);
        let optional = |name: &str| {
            let path = dir.join(name);
            match fs::read_to_string(&path) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_error(&path)(e)),
            }
        };
        Ok(Self {
            checkpoint: optional(CHECKPOINT)?,
            landmarks_toml: optional(LANDMARKS)?,
            sites_toml: optional(SITES)?,
            manifest,
            heads,
            consistency,
            leaves,
            policy_toml: fs::read_to_string(&policy).map_err(io_error(&policy))?,
            catalogue_toml: fs::read_to_string(&catalogue).map_err(io_error(&catalogue))?,
        })
    }
}
