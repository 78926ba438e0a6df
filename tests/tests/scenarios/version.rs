//! `--version` of every binary names the git commit it was built from (`unknown` outside a
//! git checkout), and nothing else: no path of the build machine.

use std::process::Command;

use crate::support::{binary, ok};

#[test]
fn every_binary_names_its_version_and_commit() {
    for name in [
        "veu-collector",
        "veu-agent",
        "veuctl",
        "veu-witness",
        "veu-landmark",
    ] {
        let printed = ok(&Command::new(binary(name))
            .arg("--version")
            .output()
            .unwrap());
        let line = printed.trim();
        let rest = line
            .strip_prefix(&format!("{name} {} (", env!("CARGO_PKG_VERSION")))
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{name} --version printed {line:?}"));
        assert!(
            rest == "unknown" || (rest.len() >= 7 && rest.bytes().all(|b| b.is_ascii_hexdigit())),
            "{name}: {rest:?} is not a commit"
        );
    }
}
