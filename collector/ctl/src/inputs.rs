//! Loading the catalogue and policy named on the command line (or the built-in ones).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use proto_accounting::{Catalogue, Policy};

use crate::Failure;

/// `--policy` and `--catalogue`, shared by the commands that evaluate.
#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    /// Policy file (TOML). Default: the shipped 2025 UVEU policy, US headquarters
    /// (deploy/policies/uveu-2025-us.toml).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Accelerator catalogue file (TOML) replacing the built-in one.
    #[arg(long, value_name = "FILE")]
    pub catalogue: Option<PathBuf>,
}

impl RulesArgs {
    pub fn load(&self) -> Result<(Catalogue, Policy), Failure> {
        Ok((
            load_catalogue(self.catalogue.as_deref())?,
            load_policy(self.policy.as_deref())?,
        ))
    }
}

pub fn load_catalogue(path: Option<&Path>) -> Result<Catalogue, Failure> {
    match path {
        None => Catalogue::builtin()
            .context("the built-in catalogue is invalid")
            .map_err(Failure::bad_input),
        Some(path) => {
            let text = read_text(path)?;
            Catalogue::from_toml(&text)
                .with_context(|| format!("{}", path.display()))
                .map_err(Failure::bad_input)
        }
    }
}

pub fn load_policy(path: Option<&Path>) -> Result<Policy, Failure> {
    match path {
        None => Policy::uveu_2025_us()
            .context("the built-in policy is invalid")
            .map_err(Failure::bad_input),
        Some(path) => {
            let text = read_text(path)?;
            Policy::from_toml(&text)
                .with_context(|| format!("{}", path.display()))
                .map_err(Failure::bad_input)
        }
    }
}

pub fn read_text(path: &Path) -> Result<String, Failure> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))
        .map_err(Failure::bad_input)
}

pub fn read_bytes(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(Failure::bad_input)
}
