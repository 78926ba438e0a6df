//! The build script of the five binaries (`veu-agent`, `veu-collector`, `veuctl`,
//! `veu-witness`, `veu-landmark`): sets `VEU_COMMIT` to the short git commit they are built from, or
//! `unknown` outside a git checkout or without git (never a failed build), for `--version` and
//! the `*_build_info` metrics. Only the hash enters the binary, never a path of the build
//! machine.

use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"])
        .filter(|hash| hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_owned());
    // Built again when HEAD moves: a checkout rewrites HEAD, a commit appends to its log.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/logs/HEAD");
    }
    println!("cargo:rerun-if-env-changed=VEU_COMMIT");
    println!("cargo:rustc-env=VEU_COMMIT={commit}");
}
