//! Reading a TOML configuration key by key, so that one pass finds every problem in it: each
//! syntax error (with its line, column and caret), unknown and missing keys, values of the
//! wrong type, and whatever the daemon's own checks add. No problem stops the reading; a value
//! with a problem is left out, and the reader goes on with the next key.

use std::cell::RefCell;
use std::rc::Rc;

use serde::de::DeserializeOwned;

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
/// `path` under the key `syntax`: where each daemon's `Config::read` starts.
pub fn root(
    text: &str,
    path: &std::path::Path,
    problems: &Problems,
) -> Result<Section, crate::ConfigErrors> {
    let table = parse(text).map_err(|syntax| crate::ConfigErrors {
        path: path.to_path_buf(),
        errors: syntax
            .into_iter()
            .map(|e| ("syntax".to_owned(), e))
            .collect(),
    })?;
    Ok(Section::root(table, problems))
}

/// Paths a configuration file names are relative to the file's own folder: the function that
/// makes a path read from the file at `path` absolute (or leaves an absolute one alone).
pub fn resolver(path: &std::path::Path) -> impl Fn(std::path::PathBuf) -> std::path::PathBuf {
    let base = path
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    move |p| if p.is_relative() { base.join(p) } else { p }
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
}

impl Section {
    /// The document's top level.
    pub fn root(table: toml::Table, problems: &Problems) -> Self {
        Self {
            path: String::new(),
            table,
            known: Vec::new(),
            problems: problems.clone(),
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

    fn child(&self, path: String, table: toml::Table) -> Section {
        Section {
            path,
            table,
            known: Vec::new(),
            problems: self.problems.clone(),
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
    use std::path::PathBuf;

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
