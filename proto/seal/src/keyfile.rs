//! A secret key in a file: an Ed25519 signing key made on first start and kept as PKCS#8 with
//! mode 0600 (the agent's signing key, the collector's log key), and any other secret written
//! once the same way (the collector's nonce secret). A key file others can read, or one that is
//! not a regular file (a link could point anywhere), is refused: whoever reads it can sign in
//! its owner's name. Written beside the target, synced and renamed, so a crash never leaves a
//! partial key.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{Ed25519Signer, KeyError};

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
    /// Not a regular file (a directory, a device, a symbolic link).
    #[error("{0} is not a regular file")]
    NotAFile(PathBuf),
    /// A new secret file was asked for where a file already is.
    #[error("{0} already exists; it is never replaced")]
    Exists(PathBuf),
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

/// Reads an existing key, refusing one that others can read or that is not a regular file.
pub fn load(path: &Path) -> Result<Ed25519Signer, KeyFileError> {
    // A link could point the key anywhere, a file another user controls included.
    let metadata = fs::symlink_metadata(path).map_err(|e| io("cannot inspect", path, e))?;
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

/// Makes a new key at `path` (with its directory, mode 0700); an existing file is never
/// replaced.
pub fn create(path: &Path) -> Result<Ed25519Signer, KeyFileError> {
    let key_error = |source| KeyFileError::Key {
        path: path.to_path_buf(),
        source,
    };
    let pkcs8 = Ed25519Signer::generate_pkcs8().map_err(key_error)?;
    let signer = Ed25519Signer::from_pkcs8(&pkcs8).map_err(key_error)?;
    write_secret(path, &pkcs8)?;
    Ok(signer)
}

/// Writes `bytes` as a new secret file at `path`, mode 0600, in a directory made with mode
/// 0700 when absent: beside the target, synced, then renamed into place and the directory
/// synced, so a crash leaves the whole file or none. A file (or link) already at `path` is
/// never replaced.
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    match fs::symlink_metadata(path) {
        Ok(_) => return Err(KeyFileError::Exists(path.to_path_buf())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(io("cannot inspect", path, source)),
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io("cannot create directory", dir, e))?;
    let temporary = path.with_extension("tmp");
    let _ = fs::remove_file(&temporary);
    // `create_new` never follows a link planted at the temporary name.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(|e| io("cannot create", &temporary, e))?;
    // The umask cannot widen 0600, but an inherited ACL default could; set it explicitly.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| io("cannot set mode of", &temporary, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io("cannot write", &temporary, e))?;
    fs::rename(&temporary, path).map_err(|e| io("cannot rename into", path, e))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync directory", dir, e))?;
    Ok(())
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

    #[test]
    fn a_link_is_not_a_key_and_a_secret_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.pk8");
        load_or_create(&real).unwrap();
        let link = dir.path().join("link.pk8");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(load(&link), Err(KeyFileError::NotAFile(_))));
        assert!(matches!(
            load_or_create(&link),
            Err(KeyFileError::NotAFile(_))
        ));

        let secret = dir.path().join("state/nonce.key");
        write_secret(&secret, &[7; 32]).unwrap();
        assert_eq!(fs::read(&secret).unwrap(), [7; 32]);
        assert_eq!(fs::metadata(&secret).unwrap().mode() & 0o777, 0o600);
        assert!(matches!(
            write_secret(&secret, &[8; 32]),
            Err(KeyFileError::Exists(_))
        ));
        assert!(matches!(
            write_secret(&link, &[8; 32]),
            Err(KeyFileError::Exists(_))
        ));
        assert_eq!(fs::read(&secret).unwrap(), [7; 32], "left as it was");
        assert!(!secret.with_extension("tmp").exists());
    }
}
