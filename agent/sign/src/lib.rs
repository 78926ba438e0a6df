//! The agent's signing identity: an Ed25519 key (ring) made on first start and stored as
//! PKCS#8 with mode 0600. A key file others can read is refused: whoever reads it can sign
//! attestations in this host's name.
//!
//! Invariant: the signing key is never the TLS key and never leaves its file unencrypted
//! except into memory.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use proto_seal::{Ed25519Signer, KeyError};

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Group or others may read or write the key.
    #[error(
        "{path} has mode {mode:04o}; a signing key must be readable by its owner only (chmod 600 {path})"
    )]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a regular file.
    #[error("{0} is not a regular file")]
    NotAFile(PathBuf),
    /// A file system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not an Ed25519 PKCS#8 key.
    #[error("{path}: {source}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        source: KeyError,
    },
}

/// Whether the key was read or made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// Read from an existing file.
    Loaded,
    /// Generated on this start.
    Created,
}

/// Reads the key at `path`, or makes one there (with its directory, mode 0700) when absent.
pub fn load_or_create(path: &Path) -> Result<(Ed25519Signer, KeyOrigin), KeyFileError> {
    match fs::symlink_metadata(path) {
        Ok(_) => load(path).map(|signer| (signer, KeyOrigin::Loaded)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            create(path).map(|signer| (signer, KeyOrigin::Created))
        }
        Err(source) => Err(io("cannot inspect", path, source)),
    }
}

/// Reads an existing key, refusing one that others can read.
pub fn load(path: &Path) -> Result<Ed25519Signer, KeyFileError> {
    let metadata = fs::metadata(path).map_err(|e| io("cannot inspect", path, e))?;
    if !metadata.is_file() {
        return Err(KeyFileError::NotAFile(path.to_path_buf()));
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    let pkcs8 = fs::read(path).map_err(|e| io("cannot read", path, e))?;
    Ed25519Signer::from_pkcs8(&pkcs8).map_err(|source| KeyFileError::Key {
        path: path.to_path_buf(),
        source,
    })
}

fn create(path: &Path) -> Result<Ed25519Signer, KeyFileError> {
    let key_error = |source| KeyFileError::Key {
        path: path.to_path_buf(),
        source,
    };
    let pkcs8 = Ed25519Signer::generate_pkcs8().map_err(key_error)?;
    let signer = Ed25519Signer::from_pkcs8(&pkcs8).map_err(key_error)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io("cannot create directory", dir, e))?;
    // Write beside the target and rename, so a crash never leaves a half-written key.
    let temporary = path.with_extension("tmp");
    let _ = fs::remove_file(&temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(|e| io("cannot create", &temporary, e))?;
    // The umask cannot widen 0600, but an inherited ACL default could; set it explicitly.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| io("cannot set mode of", &temporary, e))?;
    file.write_all(&pkcs8)
        .and_then(|()| file.sync_all())
        .map_err(|e| io("cannot write", &temporary, e))?;
    fs::rename(&temporary, path).map_err(|e| io("cannot rename into", path, e))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync directory", dir, e))?;
    Ok(signer)
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> KeyFileError {
    KeyFileError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_key_once_then_reads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.pk8");
        let (first, origin) = load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Created);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        let (second, origin) = load_or_create(&path).unwrap();
        assert_eq!(origin, KeyOrigin::Loaded);
        assert_eq!(first.key_id(), second.key_id());
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn refuses_a_key_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pk8");
        load_or_create(&path).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let error = load_or_create(&path).unwrap_err();
            assert!(
                matches!(error, KeyFileError::Exposed { mode: m, .. } if m == mode),
                "{error}"
            );
            assert!(error.to_string().contains("chmod 600"), "{error}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(load(&path).is_ok(), "read-only for the owner is fine");
    }

    #[test]
    fn refuses_garbage_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pk8");
        fs::write(&path, b"not a key").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(load(&path), Err(KeyFileError::Key { .. })));
        assert!(matches!(load(dir.path()), Err(KeyFileError::NotAFile(_))));
    }
}
