//! The workspace's binaries: found in one directory, as `cargo build` leaves them.

use std::path::{Path, PathBuf};

/// The collector daemon.
pub const COLLECTOR: &str = "veu-collector";
/// The agent daemon.
pub const AGENT: &str = "veu-agent";
/// The witness.
pub const WITNESS: &str = "veu-witness";
/// The operator's and auditor's command line.
pub const VEUCTL: &str = "veuctl";
/// The simulated agents.
pub const LOADGEN: &str = "veu-loadgen";
/// The fake NVML library the agents load instead of NVIDIA's.
pub const FAKE_NVML: &str = "libveu_fake_nvml.so";

/// A binary that cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// The running executable's own path is unknown.
    #[error("cannot find the running executable")]
    CurrentExe(#[source] std::io::Error),
    /// The running executable's path has no directory.
    #[error("{} has no directory", .0.display())]
    NoDirectory(PathBuf),
    /// Neither in the directory nor in its `deps/`.
    #[error("{} is missing (looked in {} and its deps/)", path.display(), dir.display())]
    Missing {
        /// Where it was expected.
        path: PathBuf,
        /// The directory of the binaries.
        dir: PathBuf,
    },
}

/// The directory that holds the workspace's binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// The binaries in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The binaries beside the running executable: its own directory, or the one above when
    /// it runs from `deps/` (a cargo test binary, in `target/<profile>/deps/`).
    pub fn beside_current_exe() -> Result<Self, BinaryError> {
        let exe = std::env::current_exe().map_err(BinaryError::CurrentExe)?;
        let mut dir = exe
            .parent()
            .ok_or_else(|| BinaryError::NoDirectory(exe.clone()))?;
        if dir.file_name().is_some_and(|name| name == "deps")
            && let Some(above) = dir.parent()
        {
            dir = above;
        }
        Ok(Self::in_dir(dir))
    }

    /// Their directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `name`: in the directory, or in its `deps/`, where cargo leaves a library
    /// built only as a test dependency.
    pub fn path(&self, name: &str) -> Result<PathBuf, BinaryError> {
        let beside = self.dir.join(name);
        [beside.clone(), self.dir.join("deps").join(name)]
            .into_iter()
            .find(|path| path.exists())
            .ok_or_else(|| BinaryError::Missing {
                path: beside,
                dir: self.dir.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn a_binary_is_found_beside_or_in_deps_and_a_missing_one_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("deps")).unwrap();
        std::fs::write(dir.path().join(VEUCTL), "").unwrap();
        std::fs::write(dir.path().join("deps").join(FAKE_NVML), "").unwrap();
        let binaries = Binaries::in_dir(dir.path());
        assert_eq!(binaries.path(VEUCTL).unwrap(), dir.path().join(VEUCTL));
        assert_eq!(
            binaries.path(FAKE_NVML).unwrap(),
            dir.path().join("deps").join(FAKE_NVML)
        );
        match binaries.path(AGENT) {
            Err(BinaryError::Missing { path, dir: where_ }) => {
                assert_eq!(path, dir.path().join(AGENT));
                assert_eq!(where_, dir.path());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_test_binary_in_deps_looks_in_the_profile_directory() {
        // This test runs from target/<profile>/deps/.
        let binaries = Binaries::beside_current_exe().unwrap();
        assert_ne!(binaries.dir().file_name().unwrap(), "deps");
        assert!(binaries.dir().join("deps").is_dir(), "{:?}", binaries.dir());
    }
}
