//! The witness's private key file: one line, a Go-style note signer key of type 0x04
//! (`PRIVATE+KEY+<name>+<key ID>+<base64(0x04 || seed)>`), which transparency-dev's tools also
//! read; mode 0600.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use proto_note::{KeyError, KeyName, SignatureType, SignerKey, VerifierKey};
use ring::rand::{SecureRandom as _, SystemRandom};

/// Makes a new key named `name` in a new file `path` (never replacing one) and returns the
/// verifier key auditors pin.
pub fn generate(path: &Path, name: KeyName) -> Result<VerifierKey, KeyFileError> {
    let mut seed = [0u8; 32];
    SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| KeyFileError::Random)?;
    let key = SignerKey::from_seed(name, SignatureType::CosignatureV1, seed).map_err(|error| {
        KeyFileError::Invalid {
            path: path.to_path_buf(),
            error,
        }
    })?;
    let at = |source: io::Error| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                KeyFileError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                at(source)
            }
        })?;
    file.write_all(format!("{}\n", key.to_secret_string()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(at)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(at)?;
    }
    Ok(key.verifier_key())
}

/// Reads the key file; refuses one that others than its owner can read.
pub fn read(path: &Path) -> Result<SignerKey, KeyFileError> {
    let at = |source: io::Error| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mode = fs::metadata(path).map_err(at)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Exposed {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    let text = fs::read_to_string(path).map_err(at)?;
    SignerKey::parse(text.trim_end_matches('\n')).map_err(|error| KeyFileError::Invalid {
        path: path.to_path_buf(),
        error,
    })
}

/// The key file could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// `keygen` never replaces a key.
    #[error("{} exists; a witness key is never replaced (auditors pin it)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Group or others may read it.
    #[error("{} can be read by others than its owner (mode {mode:o}); chmod 600 it", path.display())]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a signer key.
    #[error("{} is not a witness key: {error}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: KeyError,
    },
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
}
