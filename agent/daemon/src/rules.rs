//! The catalogue and policy the agent prices devices with.

use std::path::Path;

use anyhow::Context as _;
use proto_accounting::{Catalogue, Policy};

/// Loads the configured files, or the built-in catalogue and 2025 policy.
pub fn load(
    catalogue: Option<&Path>,
    policy: Option<&Path>,
) -> anyhow::Result<(Catalogue, Policy)> {
    let catalogue = match catalogue {
        None => Catalogue::builtin().context("the built-in catalogue is invalid")?,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Catalogue::from_toml(&text).with_context(|| path.display().to_string())?
        }
    };
    let policy = match policy {
        None => Policy::uveu_2025_us().context("the built-in policy is invalid")?,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Policy::from_toml(&text).with_context(|| path.display().to_string())?
        }
    };
    Ok((catalogue, policy))
}
