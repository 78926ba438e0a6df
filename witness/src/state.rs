//! The witness's memory: for each log, the latest checkpoint it cosigned, as the cosigned note
//! itself (the log's signature and the witness's cosignature), one file per origin.
//!
//! Every write is durable and atomic: a temporary file is written and fsynced, renamed over the
//! old one, and the directory is fsynced, so a crash leaves either the old checkpoint or the
//! new one, never a torn file or none. A file that does not read back stops the witness from
//! starting: forgetting a log's size would let the log roll back.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use proto_note::{Checkpoint, Hash, SignedNote};
use sha2::{Digest as _, Sha256};

/// The state directory, locked against a second witness process for as long as this lives.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    /// Held for its advisory lock.
    _lock: File,
}

/// A log's latest cosigned checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its tree size.
    pub size: u64,
    /// Its root hash.
    pub root: Hash,
    /// The cosigned checkpoint note.
    pub note: String,
}

impl StateDir {
    /// Opens (creating it with mode 0700 if needed) and locks `dir`.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let at = |source| StateError::Io {
            path: dir.to_path_buf(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(at)?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|source| StateError::Io {
                path: lock_path.clone(),
                source,
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StateError::Locked {
                    path: dir.to_path_buf(),
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(StateError::Io {
                    path: lock_path,
                    source,
                });
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file of `origin`: the hex SHA-256 of the origin, as the monitoring path names it.
    pub fn file_of(&self, origin: &str) -> PathBuf {
        self.dir.join(format!("{}.checkpoint", origin_hash(origin)))
    }

    /// The latest cosigned checkpoint of `origin`, `None` if it never cosigned one.
    pub fn load(&self, origin: &str) -> Result<Option<Stored>, StateError> {
        let path = self.file_of(origin);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Io { path, source }),
        };
        let corrupt = |reason: String| StateError::Corrupt {
            path: path.clone(),
            reason,
        };
        let note = SignedNote::parse(&bytes).map_err(|error| corrupt(error.to_string()))?;
        let checkpoint =
            Checkpoint::parse(note.text()).map_err(|error| corrupt(error.to_string()))?;
        if checkpoint.origin() != origin {
            return Err(corrupt(format!(
                "it holds a checkpoint of {:?}, not of {origin:?}",
                checkpoint.origin()
            )));
        }
        Ok(Some(Stored {
            size: checkpoint.size(),
            root: *checkpoint.root(),
            note: note.to_string(),
        }))
    }

    /// Replaces the latest cosigned checkpoint of `origin` with `note`, durably and atomically;
    /// when this returns `Ok`, a crash cannot lose it.
    pub fn store(&self, origin: &str, note: &str) -> Result<(), StateError> {
        let path = self.file_of(origin);
        let temporary = path.with_extension("checkpoint.tmp");
        let io_at = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Io { path, source }
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(io_at(&temporary))?;
        file.write_all(note.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_at(&temporary))?;
        drop(file);
        fs::rename(&temporary, &path).map_err(io_at(&path))?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_at(&self.dir))
    }
}

/// The lowercase hex SHA-256 of an origin, which names its checkpoint in the monitoring path
/// `GET /<origin hash>/checkpoint` (c2sp.org/tlog-witness).
pub fn origin_hash(origin: &str) -> String {
    veu_daemon_kit::hex(&Sha256::digest(origin.as_bytes()))
}

/// The state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Another process holds the directory.
    #[error(
        "{} is in use by another veu-witness (its lock file is held)",
        path.display()
    )]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// A state file that does not read back.
    #[error(
        "{} is not a cosigned checkpoint ({reason}); refusing to start, since forgetting a log's size would let it roll back",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}
