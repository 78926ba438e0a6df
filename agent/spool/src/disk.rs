//! The few file-system moves the spool and the state file are built from, each failing with the
//! action and the path, and each durable only in the combination the callers use: write a
//! temporary file and fsync it, rename it into place, fsync the directory.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A failed file-system operation; converted into each public error family's `Io` variant.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) action: &'static str,
    pub(crate) path: PathBuf,
    pub(crate) source: io::Error,
}

impl Failure {
    pub(crate) fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Creates `dir` and any missing parents with mode 0700; an existing directory is left as it is.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), Failure> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Failure::new("cannot create directory", dir, e))
}

/// Writes `bytes` to `path` (created 0600 or truncated) and fsyncs it, so that a rename
/// afterwards can only ever expose the complete content.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::new("cannot create", path, e))?;
    file.write_all(bytes)
        .map_err(|e| Failure::new("cannot write", path, e))?;
    file.sync_all()
        .map_err(|e| Failure::new("cannot fsync", path, e))
}

/// Atomically replaces `to` with `from`; reported against `to`, the name the caller cares about.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), Failure> {
    fs::rename(from, to).map_err(|e| Failure::new("cannot rename into", to, e))
}

/// Makes the directory's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Failure> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Failure::new("cannot fsync directory", dir, e))
}

/// Removes a file; one already gone counts as removed (a crash may have removed it before).
pub(crate) fn remove(path: &Path) -> Result<(), Failure> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Failure::new("cannot remove", path, e)),
    }
}

/// Reads a whole file.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    fs::read(path).map_err(|e| Failure::new("cannot read", path, e))
}

/// Moves `path` into `into` (a sibling subdirectory, created 0700 if needed) without
/// overwriting an earlier file of the same name there, then makes both directories durable.
/// Returns where the file now is.
pub(crate) fn move_aside(path: &Path, parent: &Path, into: &Path) -> Result<PathBuf, Failure> {
    create_private_dir(into)?;
    let name = path.file_name().unwrap_or(path.as_os_str());
    let mut target = into.join(name);
    let mut suffix = 1u32;
    // Forensic copies must not overwrite each other; a sequence can be set aside twice when
    // a spool emptied by acks is restarted from an older chain state.
    while fs::symlink_metadata(&target).is_ok() {
        let mut renamed = name.to_os_string();
        renamed.push(format!(".{suffix}"));
        target = into.join(renamed);
        suffix = suffix.saturating_add(1);
    }
    fs::rename(path, &target).map_err(|e| Failure::new("cannot move aside", path, e))?;
    sync_dir(into)?;
    sync_dir(parent)?;
    Ok(target)
}
