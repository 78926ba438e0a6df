//! A daemon of the workspace started from its configuration file, and what can fail on the way.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::binaries::BinaryError;
use crate::command::CommandError;

/// How long a daemon is given to listen after it starts.
pub const STARTUP: Duration = Duration::from_secs(20);

/// A step of starting a daemon that failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its binary is missing.
    #[error(transparent)]
    Binary(#[from] BinaryError),
    /// A command it needs failed.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A file it needs could not be written or opened.
    #[error("cannot write {}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `BINARY run --config CONFIG`, its log (standard error) written to `log` from the start,
/// its standard output discarded: how the collector, the witness and the landmark run.
pub fn run_command(binary: &Path, config: &Path, log: &Path) -> Result<Command, StartError> {
    let log_file = std::fs::File::create(log).map_err(|source| StartError::File {
        path: log.to_path_buf(),
        source,
    })?;
    let mut command = Command::new(binary);
    command
        .arg("run")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log_file);
    Ok(command)
}

/// Writes `text` to `path`.
pub(crate) fn write(path: &Path, text: impl AsRef<[u8]>) -> Result<(), StartError> {
    std::fs::write(path, text).map_err(|source| StartError::File {
        path: path.to_path_buf(),
        source,
    })
}
