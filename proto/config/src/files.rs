//! Checks of the files and directories a configuration names, made before a daemon creates
//! anything: a file can be read, a directory can be written (or made), and what the daemon will
//! create is said, not done.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Access, AtFlags, CWD};

use crate::document::Problems;

/// Reads a file a configuration key names; a file that cannot be read is a problem at `key`.
pub fn read(key: &str, path: &Path, problems: &Problems) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            problems.push(key, cannot_read(path, &error));
            None
        }
    }
}

/// Whether a file a configuration key names can be opened for reading (a library, say, that
/// is not read whole); a problem at `key` when not.
pub fn readable(key: &str, path: &Path, problems: &Problems) -> bool {
    match std::fs::File::open(path).and_then(|file| file.metadata()) {
        Ok(metadata) if metadata.is_file() => true,
        Ok(_) => {
            problems.push(key, format!("{} is not a regular file", path.display()));
            false
        }
        Err(error) => {
            problems.push(key, cannot_read(path, &error));
            false
        }
    }
}

/// `read`, as UTF-8 text.
pub fn read_text(key: &str, path: &Path, problems: &Problems) -> Option<String> {
    let bytes = read(key, path, problems)?;
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(_) => {
            problems.push(key, format!("{} is not UTF-8 text", path.display()));
            None
        }
    }
}

/// The configuration file's text, or why it cannot be read (key `file`).
pub fn read_config(path: &Path) -> Result<String, crate::ConfigErrors> {
    std::fs::read_to_string(path)
        .map_err(|error| crate::ConfigErrors::one(path, "file", cannot_read(path, &error)))
}

/// What reading `path` failed with, in words.
pub fn cannot_read(path: &Path, error: &std::io::Error) -> String {
    match error.kind() {
        ErrorKind::NotFound => format!("{} does not exist", path.display()),
        ErrorKind::IsADirectory => format!("{} is a directory, not a file", path.display()),
        _ => format!("cannot read {}: {error}", path.display()),
    }
}

/// A directory a daemon writes to: there and writable (`Ok(false)`), or absent and makeable,
/// because its nearest existing ancestor is a writable directory (`Ok(true)`: it will be made).
/// Checked with `faccessat(2)` for the effective user, so nothing is written to find out.
pub fn writable_dir(key: &str, path: &Path, problems: &Problems) -> Option<bool> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => match writable(path) {
            Ok(()) => Some(false),
            Err(error) => {
                problems.push(key, format!("{} is not writable: {error}", path.display()));
                None
            }
        },
        Ok(_) => {
            problems.push(key, format!("{} is not a directory", path.display()));
            None
        }
        Err(error) if error.kind() == ErrorKind::NotFound => {
            let mut ancestor = path.parent();
            while let Some(dir) = ancestor {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                match std::fs::metadata(dir) {
                    Ok(metadata) if metadata.is_dir() => {
                        return match writable(dir) {
                            Ok(()) => Some(true),
                            Err(error) => {
                                problems.push(
                                    key,
                                    format!(
                                        "{} does not exist and cannot be made: {} is not writable ({error})",
                                        path.display(),
                                        dir.display()
                                    ),
                                );
                                None
                            }
                        };
                    }
                    Ok(_) => {
                        problems.push(
                            key,
                            format!(
                                "{} cannot be made: {} is not a directory",
                                path.display(),
                                dir.display()
                            ),
                        );
                        return None;
                    }
                    Err(error) if error.kind() == ErrorKind::NotFound => {
                        ancestor = dir.parent();
                    }
                    Err(error) => {
                        problems.push(key, format!("cannot inspect {}: {error}", dir.display()));
                        return None;
                    }
                }
            }
            problems.push(key, format!("{} cannot be made", path.display()));
            None
        }
        Err(error) if error.kind() == ErrorKind::NotADirectory => {
            problems.push(
                key,
                format!(
                    "{} cannot be made: a part of the path is a file, not a directory",
                    path.display()
                ),
            );
            None
        }
        Err(error) => {
            problems.push(key, format!("cannot inspect {}: {error}", path.display()));
            None
        }
    }
}

/// A file a daemon keeps in a directory already checked with [`writable_dir`]: when it exists,
/// it must be a regular file the daemon can read and write. `Ok(true)` when it exists.
pub fn writable_file(key: &str, path: &Path, problems: &Problems) -> Option<bool> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => {
            let access = rustix::fs::accessat(
                CWD,
                path,
                Access::READ_OK | Access::WRITE_OK,
                AtFlags::EACCESS,
            );
            match access {
                Ok(()) => Some(true),
                Err(error) => {
                    problems.push(
                        key,
                        format!(
                            "{} cannot be read and written: {}",
                            path.display(),
                            std::io::Error::from(error)
                        ),
                    );
                    None
                }
            }
        }
        Ok(_) => {
            problems.push(key, format!("{} is not a regular file", path.display()));
            None
        }
        Err(error) if error.kind() == ErrorKind::NotFound => Some(false),
        Err(error) => {
            problems.push(key, format!("cannot inspect {}: {error}", path.display()));
            None
        }
    }
}

/// A secret key file: when it exists, readable by its owner only (a key others can read is
/// a key others may have copied). `Some(bytes)` when it exists and passes.
pub fn private_file(key: &str, path: &Path, problems: &Problems) -> Option<Option<Vec<u8>>> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => {
            let mode = metadata.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                problems.push(
                    key,
                    format!(
                        "{} has mode {mode:04o}; a key must be readable by its owner only (chmod 600 {})",
                        path.display(),
                        path.display()
                    ),
                );
                return None;
            }
            read(key, path, problems).map(Some)
        }
        Ok(_) => {
            problems.push(key, format!("{} is not a regular file", path.display()));
            None
        }
        Err(error) if error.kind() == ErrorKind::NotFound => Some(None),
        Err(error) => {
            problems.push(key, format!("cannot inspect {}: {error}", path.display()));
            None
        }
    }
}

/// What a daemon will create on its first start: said by `check-config`, done only by `run`
/// after every check passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Creates(pub Vec<(PathBuf, &'static str)>);

impl Creates {
    /// Notes that `path` (what it is) will be created.
    pub fn add(&mut self, path: &Path, what: &'static str) {
        self.0.push((path.to_path_buf(), what));
    }

    /// One line per path, for `check-config`.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(path, what)| format!("{} ({what})", path.display()))
            .collect()
    }
}

fn writable(dir: &Path) -> Result<(), std::io::Error> {
    rustix::fs::accessat(
        CWD,
        dir,
        Access::WRITE_OK | Access::EXEC_OK,
        AtFlags::EACCESS,
    )
    .map_err(std::io::Error::from)
}

/// A rule file (a catalogue or policy): the file named at `key`, or the built-in text; parsed by `parse`,
/// whose problems are reported under `key`, prefixed with the file.
pub fn rule_file<T>(
    key: &str,
    path: Option<&Path>,
    builtin: &str,
    problems: &Problems,
    parse: impl Fn(&str) -> Result<T, Vec<String>>,
) -> Option<(T, String)> {
    if problems.has(key) {
        return None;
    }
    let text = match path {
        None => builtin.to_owned(),
        Some(path) => read_text(key, path, problems)?,
    };
    match parse(&text) {
        Ok(value) => Some((value, text)),
        Err(messages) => {
            let file = path.map_or("the built-in file".to_owned(), |p| p.display().to_string());
            for message in messages {
                problems.push(key, format!("{file}: {message}"));
            }
            None
        }
    }
}

/// A rule file read: its value and its text.
pub type Rule<T> = (T, String);

/// The daemon's catalogue and policy, each from the file `[rules]` names or the built-in one,
/// with its text (for digests and the audit service); a problem with either is reported under
/// `rules.catalogue` or `rules.policy`.
pub fn rules(
    catalogue: Option<&Path>,
    policy: Option<&Path>,
    problems: &Problems,
) -> (
    Option<Rule<proto_accounting::Catalogue>>,
    Option<Rule<proto_accounting::Policy>>,
) {
    (
        rule_file(
            "rules.catalogue",
            catalogue,
            proto_accounting::catalogue::BUILTIN_TOML,
            problems,
            |text| proto_accounting::Catalogue::from_toml(text).map_err(|e| e.messages()),
        ),
        rule_file(
            "rules.policy",
            policy,
            proto_accounting::policy::UVEU_2025_US_TOML,
            problems,
            |text| proto_accounting::Policy::from_toml(text).map_err(|e| e.messages()),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_checked_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let problems = Problems::new();
        assert_eq!(writable_dir("a", dir.path(), &problems), Some(false));
        let missing = dir.path().join("x/y/z");
        assert_eq!(writable_dir("b", &missing, &problems), Some(true));
        assert!(!dir.path().join("x").exists(), "nothing is made");
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert_eq!(writable_dir("c", &file, &problems), None);
        assert_eq!(writable_dir("d", &file.join("state"), &problems), None);
        let keys: Vec<String> = problems.list().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["c", "d"]);
        assert!(
            problems.list()[1].1.contains("not a directory"),
            "{:?}",
            problems.list()
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "only the test's own file"
        );
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        let problems = Problems::new();
        assert_eq!(private_file("k", &key, &problems), Some(None));
        std::fs::write(&key, "secret").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(private_file("k", &key, &problems), None);
        assert!(problems.list()[0].1.contains("chmod 600"));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            private_file("k", &key, &Problems::new()),
            Some(Some(b"secret".to_vec()))
        );
    }
}
