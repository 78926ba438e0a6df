//! Reading a TOML configuration key by key, so that one pass finds every problem in it: each
//! syntax error (with its line, column and caret), unknown and missing keys, values of the
//! wrong type, and whatever the daemon's own checks add. No problem stops the reading; a value
//! with a problem is left out, and the reader goes on with the next key.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::str::FromStr;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::ConfigErrors;

/// What a log level that is none says it must be.
pub const LOG_LEVELS: &str = "must be one of error, warn, info, debug, trace";

/// The problems found in one configuration, as `(key, message)` pairs in the order found;
/// shared by every [`Section`] of the document and by the checks that follow.
#[derive(Debug, Clone, Default)]
pub struct Problems(Rc<RefCell<Vec<(String, String)>>>);

impl Problems {
    /// No problem yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem at `key`.
    pub fn push(&self, key: impl Into<String>, message: impl Into<String>) {
        self.0.borrow_mut().push((key.into(), message.into()));
    }

    /// True when `key`, or a key under it, has a problem: later checks skip such keys, since
    /// their value is not known.
    pub fn has(&self, key: &str) -> bool {
        self.0.borrow().iter().any(|(found, _)| {
            found == key
                || found
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
    }

    /// True without problems.
    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    /// Every problem recorded, in the order found.
    pub fn list(&self) -> Vec<(String, String)> {
        self.0.borrow().clone()
    }
}

/// Parses a whole TOML document. On syntax errors, every one of them, each as the TOML parser
/// renders it: the line and column, the line itself, a caret under the fault, and what was
/// expected, on several lines.
pub fn parse(text: &str) -> Result<toml::Table, Vec<String>> {
    let (_, mut errors) = toml::de::DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        errors.sort_by_key(|error| error.span().map_or(0, |span| span.start));
        return Err(errors
            .iter()
            .map(|error| error.to_string().trim_end().to_owned())
            .collect());
    }
    // Syntax is fine; what is left (a key defined twice, say) comes from building the table.
    toml::from_str(text).map_err(|error| vec![error.to_string().trim_end().to_owned()])
}

/// A daemon's configuration text as its root section, every syntax error reported against
/// `path` under the key `syntax`: where each daemon's `Config::read` starts. The paths it
/// reads ([`Section::path`]) are relative to the folder of `path`.
pub fn root(text: &str, path: &Path, problems: &Problems) -> Result<Section, ConfigErrors> {
    let table = parse(text).map_err(|syntax| ConfigErrors {
        path: path.to_path_buf(),
        errors: syntax
            .into_iter()
            .map(|e| ("syntax".to_owned(), e))
            .collect(),
    })?;
    let mut root = Section::root(table, problems);
    root.base = base(path);
    Ok(root)
}

/// The configuration `read` (a daemon's `Config::read`) makes of `text`, when it found no
/// problem; else every problem, each with its key. `path` names the file in errors and
/// anchors relative paths; nothing it names is read.
pub fn checked<T>(
    text: &str,
    path: &Path,
    read: impl FnOnce(&str, &Path, &Problems) -> Result<T, ConfigErrors>,
) -> Result<T, ConfigErrors> {
    let problems = Problems::new();
    let config = read(text, path, &problems)?;
    match ConfigErrors::of(path, &problems) {
        None => Ok(config),
        Some(errors) => Err(errors),
    }
}

/// The configuration file at `path` as `read` (a daemon's `Config::read`) makes it, its
/// problems recorded in `problems`: where a daemon's start-up checks begin. A file that cannot
/// be read, or text with syntax errors, stops it.
pub fn load<T>(
    path: &Path,
    problems: &Problems,
    read: impl FnOnce(&str, &Path, &Problems) -> Result<T, ConfigErrors>,
) -> Result<T, ConfigErrors> {
    let text = crate::files::read_config(path)?;
    read(&text, path, problems)
}

/// Paths a configuration file names are relative to the file's own folder: the function that
/// makes a path read from the file at `path` absolute (or leaves an absolute one alone).
pub fn resolver(path: &Path) -> impl Fn(PathBuf) -> PathBuf {
    let base = base(path);
    move |p| if p.is_relative() { base.join(p) } else { p }
}

fn base(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new(".")).to_path_buf()
}

/// One table of a document, read key by key. Every key read is taken out of it; the keys left
/// when it is dropped are unknown, and recorded as problems then, with the keys it knows.
#[derive(Debug)]
pub struct Section {
    /// Its key path: empty for the document, `tls`, `audit.witnesses[0]`.
    path: String,
    table: toml::Table,
    known: Vec<&'static str>,
    problems: Problems,
    /// The folder relative paths are taken from: the configuration file's.
    base: PathBuf,
}

impl Section {
    /// The document's top level.
    pub fn root(table: toml::Table, problems: &Problems) -> Self {
        Self {
            path: String::new(),
            table,
            known: Vec::new(),
            problems: problems.clone(),
            base: PathBuf::new(),
        }
    }

    /// The full key path of `name` in this section.
    pub fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// Records a problem at `name` in this section.
    pub fn problem(&self, name: &str, message: impl Into<String>) {
        self.problems.push(self.key(name), message);
    }

    /// The value of `name`, when present and of type `T`; a value of another type is a problem.
    pub fn optional<T: DeserializeOwned>(&mut self, name: &'static str) -> Option<T> {
        self.known.push(name);
        let value = self.table.remove(name)?;
        match value.try_into::<T>() {
            Ok(value) => Some(value),
            Err(error) => {
                self.problem(name, error.message().trim().to_owned());
                None
            }
        }
    }

    /// The value of `name`; absent, it is a problem.
    pub fn required<T: DeserializeOwned>(&mut self, name: &'static str) -> Option<T> {
        if !self.table.contains_key(name) {
            self.known.push(name);
            self.problem(name, "is missing (required)");
            return None;
        }
        self.optional(name)
    }

    /// The table `name` (`[name]`), empty when absent.
    pub fn table(&mut self, name: &'static str) -> Section {
        self.known.push(name);
        let table = match self.table.remove(name) {
            None => toml::Table::new(),
            Some(toml::Value::Table(table)) => table,
            Some(other) => {
                self.problem(
                    name,
                    format!(
                        "must be a table ([{}]), not {}",
                        self.key(name),
                        other.type_str()
                    ),
                );
                toml::Table::new()
            }
        };
        self.child(self.key(name), table)
    }

    /// True when the table `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.table.contains_key(name)
    }

    /// The array of tables `name` (`[[name]]`), empty when absent.
    pub fn tables(&mut self, name: &'static str) -> Vec<Section> {
        self.known.push(name);
        let items = match self.table.remove(name) {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items,
            Some(other) => {
                self.problem(
                    name,
                    format!(
                        "must be an array of tables ([[{}]]), not {}",
                        self.key(name),
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        };
        let mut sections = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            let path = format!("{}[{index}]", self.key(name));
            match item {
                toml::Value::Table(table) => sections.push(self.child(path, table)),
                other => self
                    .problems
                    .push(path, format!("must be a table, not {}", other.type_str())),
            }
        }
        sections
    }

    /// The path `name`, relative to the configuration file's folder, when present.
    pub fn path(&mut self, name: &'static str) -> Option<PathBuf> {
        self.optional::<PathBuf>(name)
            .map(|path| self.resolve(path))
    }

    /// The path `name`, relative to the configuration file's folder; absent, it is a problem
    /// (and the path empty).
    pub fn required_path(&mut self, name: &'static str) -> PathBuf {
        self.required::<PathBuf>(name)
            .map(|path| self.resolve(path))
            .unwrap_or_default()
    }

    /// The value of `name` read from its text with [`FromStr`] when present; text that is not
    /// one is a problem, `"<text>" <expected>`.
    pub fn parsed<T: FromStr>(&mut self, name: &'static str, expected: &str) -> Option<T> {
        let text = self.optional::<String>(name);
        self.parse_text(name, text, expected)
    }

    /// The socket address `name` (`127.0.0.1:9464`) when present; anything else is a problem
    /// that shows `example`.
    pub fn address(&mut self, name: &'static str, example: &str) -> Option<SocketAddr> {
        self.parsed(name, &format!("is not an address like {example}"))
    }

    /// [`Section::address`], and its absence a problem.
    pub fn required_address(&mut self, name: &'static str, example: &str) -> Option<SocketAddr> {
        let text = self.required::<String>(name);
        self.parse_text(name, text, &format!("is not an address like {example}"))
    }

    /// The log level `name` (`error`, `warn`, `info`, `debug` or `trace`) when present.
    pub fn log_level<L: FromStr>(&mut self, name: &'static str) -> Option<L> {
        self.parsed(name, LOG_LEVELS)
    }

    /// The duration `name` (`30s`, [`crate::parse_duration`]), or `default` when absent. A
    /// value shorter than `minimum` is a problem that says `too_short`; a value with a problem
    /// gives `default`.
    pub fn duration(
        &mut self,
        name: &'static str,
        default: Duration,
        minimum: Duration,
        too_short: &str,
    ) -> Duration {
        match self
            .optional::<String>(name)
            .map(|text| crate::parse_duration(&text))
        {
            None => default,
            Some(Ok(duration)) if duration >= minimum => duration,
            Some(Ok(_)) => {
                self.problem(name, too_short);
                default
            }
            Some(Err(message)) => {
                self.problem(name, message);
                default
            }
        }
    }

    /// [`Section::duration`], a value shorter than `minimum` refused as `must be at least
    /// <minimum in ms>ms`.
    pub fn duration_at_least(
        &mut self,
        name: &'static str,
        default: Duration,
        minimum: Duration,
    ) -> Duration {
        let too_short = format!("must be at least {}ms", minimum.as_millis());
        self.duration(name, default, minimum, &too_short)
    }

    /// The id `name` (a host's, a site's: [`crate::check_id`]); absent, it is a problem (and
    /// the id empty).
    pub fn required_id(&mut self, name: &'static str) -> String {
        let id = self.required::<String>(name).unwrap_or_default();
        if !self.problems.has(&self.key(name)) {
            self.check_id(name, &id);
        }
        id
    }

    /// Records a problem at `name` when `id` is not a valid id ([`crate::check_id`]).
    pub fn check_id(&self, name: &str, id: &str) {
        if let Err(message) = crate::check_id(id) {
            self.problem(name, message);
        }
    }

    /// Records a problem at `name` when `url`, its value, is not an `https://` URL (unless
    /// `name` has a problem already).
    pub fn check_https(&self, name: &str, url: &str) {
        if !self.problems.has(&self.key(name)) && !url.starts_with("https://") {
            self.problem(name, format!("{url:?} must be an https:// URL"));
        }
    }

    /// The name a server's certificate must carry: `given` (the value of `name`), else the
    /// host of `endpoint`, the value of the key `endpoint_name`. Neither is a problem at
    /// `name`, unless `endpoint_name` has a problem already (and the name is empty).
    pub fn server_name(
        &self,
        name: &str,
        given: Option<String>,
        endpoint_name: &str,
        endpoint: &str,
    ) -> String {
        let server_name = given
            .or_else(|| crate::url_host(endpoint))
            .unwrap_or_default();
        if server_name.is_empty() && !self.problems.has(&self.key(endpoint_name)) {
            self.problem(name, "cannot be derived from the endpoint; set it");
        }
        server_name
    }

    fn resolve(&self, path: PathBuf) -> PathBuf {
        if path.is_relative() {
            self.base.join(path)
        } else {
            path
        }
    }

    fn parse_text<T: FromStr>(
        &self,
        name: &str,
        text: Option<String>,
        expected: &str,
    ) -> Option<T> {
        let text = text?;
        match text.parse() {
            Ok(value) => Some(value),
            Err(_) => {
                self.problem(name, format!("{text:?} {expected}"));
                None
            }
        }
    }

    fn child(&self, path: String, table: toml::Table) -> Section {
        Section {
            path,
            table,
            known: Vec::new(),
            problems: self.problems.clone(),
            base: self.base.clone(),
        }
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        let known = if self.known.is_empty() {
            "none".to_owned()
        } else {
            self.known.join(", ")
        };
        let place = if self.path.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("in [{}]", self.path)
        };
        for name in self.table.keys() {
            self.problems.push(
                self.key(name),
                format!("unknown key (known {place}: {known})"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_found_in_one_pass() {
        let text = "listen = 7443\nstat_dir = \"s\"\n[tls]\ncertificate = \"a\"\nkey = [1]\n\
                    [log]\nformat = \"xml\"\nlevel = \"info\"\n[[witness]]\nurl = \"x\"\n";
        let problems = Problems::new();
        {
            let mut root = Section::root(parse(text).unwrap(), &problems);
            assert_eq!(root.required::<String>("listen"), None);
            assert_eq!(root.required::<PathBuf>("state_dir"), None);
            let mut tls = root.table("tls");
            assert_eq!(tls.required::<PathBuf>("certificate"), Some("a".into()));
            assert_eq!(tls.required::<PathBuf>("key"), None);
            let mut log = root.table("log");
            #[derive(serde::Deserialize, Debug, PartialEq)]
            #[serde(rename_all = "lowercase")]
            enum Format {
                Text,
                Json,
            }
            // A bad value of an enumeration hides nothing after it.
            assert_eq!(log.optional::<Format>("format"), None);
            assert_eq!(log.optional::<String>("level").as_deref(), Some("info"));
            for mut witness in root.tables("witnesses") {
                let _: Option<String> = witness.required("url");
            }
        }
        let keys: Vec<String> = problems.list().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "listen",
                "state_dir",
                "tls.key",
                "log.format",
                "stat_dir",
                "witness"
            ]
        );
        let list = problems.list();
        assert!(list[0].1.contains("integer"), "{list:?}");
        assert!(
            list[3].1.contains("xml") && list[3].1.contains("text"),
            "{list:?}"
        );
        assert!(
            list[4]
                .1
                .starts_with("unknown key (known at the top level: listen, state_dir")
        );
        assert!(problems.has("tls") && problems.has("tls.key") && !problems.has("tls.certificate"));
        assert!(!problems.has("log.form"));
    }

    #[test]
    fn typed_values_take_their_default_or_record_one_problem_each() {
        let text = "state = \"s\"\nkey = \"/abs/k\"\nid = \"a b\"\nwait = \"50ms\"\n\
                    grace = \"0s\"\nbad = \"soon\"\nlevel = \"loud\"\nlisten = \"here\"\n\
                    endpoint = \"http://x:1\"\n";
        let problems = Problems::new();
        let path = Path::new("/etc/veu/x.toml");
        {
            let mut root = root(text, path, &problems).unwrap();
            assert_eq!(root.required_path("state"), Path::new("/etc/veu/s"));
            assert_eq!(root.path("key"), Some(PathBuf::from("/abs/k")));
            assert_eq!(root.required_path("ca"), PathBuf::new());
            assert_eq!(root.required_id("id"), "a b");
            let second = Duration::from_secs(1);
            let tenth = Duration::from_millis(100);
            assert_eq!(root.duration_at_least("wait", second, tenth), second);
            let zero = Duration::from_millis(1);
            assert_eq!(
                root.duration("grace", second, zero, "must be more than zero"),
                second
            );
            assert_eq!(root.duration("bad", second, zero, "-"), second);
            assert_eq!(root.duration("absent", second, zero, "-"), second);
            assert_eq!(root.log_level::<u8>("level"), None);
            assert_eq!(root.address("listen", "127.0.0.1:9464"), None);
            assert_eq!(root.required_address("metrics", "127.0.0.1:9464"), None);
            let endpoint: String = root.required("endpoint").unwrap();
            root.check_https("endpoint", &endpoint);
            assert_eq!(
                root.server_name("server_name", None, "endpoint", &endpoint),
                "x"
            );
        }
        let list = problems.list();
        let keys: Vec<&str> = list.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "ca", "id", "wait", "grace", "bad", "level", "listen", "metrics", "endpoint"
            ]
        );
        assert_eq!(list[2].1, "must be at least 100ms");
        assert_eq!(list[3].1, "must be more than zero");
        assert_eq!(
            list[5].1,
            "\"loud\" must be one of error, warn, info, debug, trace"
        );
        assert_eq!(list[6].1, "\"here\" is not an address like 127.0.0.1:9464");
        assert_eq!(list[8].1, "\"http://x:1\" must be an https:// URL");
    }

    #[test]
    fn checked_text_is_a_configuration_or_every_problem() {
        let read = |text: &str, path: &Path, problems: &Problems| {
            let mut root = root(text, path, problems)?;
            Ok(root.required::<u32>("n"))
        };
        let path = Path::new("x.toml");
        assert_eq!(checked("n = 1", path, read), Ok(Some(1)));
        let errors = checked("m = 1", path, read).unwrap_err();
        let keys: Vec<&str> = errors.errors.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["n", "m"]);
        assert_eq!(
            checked("n = ", path, read).unwrap_err().errors[0].0,
            "syntax"
        );
    }

    #[test]
    fn syntax_errors_keep_their_line_column_and_caret() {
        let errors = parse("a = 1\nb = \nc = \"x\n[d\n").unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        for (error, line) in errors.iter().zip(2..) {
            assert!(
                error.contains(&format!("at line {line}, column")),
                "{errors:?}"
            );
        }
        let first = &errors[0];
        assert!(
            first.starts_with("TOML parse error at line 2, column"),
            "{first}"
        );
        assert!(first.lines().count() >= 4, "{first}");
        assert!(first.contains('^'), "{first}");
    }

    #[test]
    fn a_key_defined_twice_is_an_error() {
        let errors = parse("a = 1\na = 2\n").unwrap_err();
        assert!(errors[0].contains("line 2"), "{errors:?}");
    }
}
