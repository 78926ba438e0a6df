//! `veuctl catalogue`: list the accelerator catalogue.

use std::path::PathBuf;

use anyhow::anyhow;
use serde::Serialize;

use crate::inputs::load_catalogue;
use crate::number::grouped;
use crate::{Failure, Format};

#[derive(Debug, clap::Args)]
pub struct CatalogueArgs {
    /// Catalogue file (TOML) to list instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    catalogue: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Serialize)]
struct Entry<'a> {
    id: &'a str,
    vendor: &'a str,
    architecture: &'a str,
    aliases: &'a [String],
    nvml_names: &'a [String],
    pci: Vec<String>,
    tpp: u64,
    eccn: Option<&'a str>,
    source: &'a str,
    confirmed: bool,
}

pub fn run(args: &CatalogueArgs) -> Result<u8, Failure> {
    let catalogue = load_catalogue(args.catalogue.as_deref())?;
    let entries: Vec<Entry<'_>> = catalogue
        .entries()
        .iter()
        .map(|a| Entry {
            id: &a.id,
            vendor: &a.vendor,
            architecture: &a.architecture,
            aliases: &a.aliases,
            nvml_names: &a.nvml_names,
            pci: a.pci.iter().map(ToString::to_string).collect(),
            tpp: a.tpp,
            eccn: a.eccn.as_deref(),
            source: &a.source,
            confirmed: a.confirmed,
        })
        .collect();
    match args.format {
        Format::Json => {
            let value = serde_json::json!({
                "digest": catalogue.digest().to_string(),
                "accelerators": entries,
            });
            let text = serde_json::to_string_pretty(&value)
                .map_err(|error| Failure::bad_input(anyhow!(error)))?;
            println!("{text}");
        }
        Format::Table => {
            println!(
                "Catalogue {} ({} accelerators)",
                catalogue.digest(),
                entries.len()
            );
            println!();
            println!(
                "{:<24} {:>7}  {:<10} {:<18} {:<20} Aliases",
                "Id", "TPP", "Arch", "ECCN", "PCI"
            );
            for entry in &entries {
                let mark = if entry.confirmed {
                    ""
                } else {
                    " (unconfirmed)"
                };
                println!(
                    "{:<24} {:>7}  {:<10} {:<18} {:<20} {}{mark}",
                    entry.id,
                    grouped(entry.tpp),
                    entry.architecture,
                    entry.eccn.unwrap_or("-"),
                    if entry.pci.is_empty() {
                        "-".to_owned()
                    } else {
                        entry.pci.join(" ")
                    },
                    entry.aliases.join(", "),
                );
            }
        }
    }
    Ok(0)
}
