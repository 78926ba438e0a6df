//! `veuctl policy check`: validate a policy file and summarise it.

use std::path::PathBuf;

use proto_accounting::Tier;
use proto_accounting::policy::{SimulatedEvidence, UnknownDevices};

use crate::Failure;
use crate::inputs::load_policy;
use crate::number::grouped;
use crate::table::escape;

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PolicyCommand {
    /// Check a policy file; with no FILE, the built-in 2025 UVEU policy (US headquarters).
    Check {
        /// Policy file (TOML), e.g. deploy/policies/uveu-2026-us.toml.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

pub fn run(args: &PolicyArgs) -> Result<u8, Failure> {
    let PolicyCommand::Check { file } = &args.command;
    let policy = load_policy(file.as_deref())?;
    let list = |tier: Tier| {
        let codes: Vec<String> = match tier {
            Tier::One => policy.tier1().map(|c| c.to_string()).collect(),
            _ => policy.tier3().map(|c| c.to_string()).collect(),
        };
        format!("{} ({})", codes.len(), codes.join(" "))
    };
    println!("{} v{}: valid", escape(&policy.id), policy.version);
    println!("  title          {}", escape(&policy.title));
    println!("  effective      {}", escape(&policy.effective.to_string()));
    println!("  digest         {}", policy.digest());
    println!("  headquarters   {}", policy.headquarters);
    println!(
        "  H100 reference {} TPP",
        grouped(policy.h100_reference_tpp)
    );
    println!("  Tier 1         {}", list(Tier::One));
    println!("  Tier 3         {}", list(Tier::Three));
    println!(
        "  rules          Tier-1 share >= {} %",
        policy.tier1_min_share
    );
    match policy.home_rule() {
        Some((country, share)) => println!("                 home ({country}) share >= {share} %"),
        None => println!(
            "                 no home rule for headquarters {}",
            policy.headquarters
        ),
    }
    println!(
        "                 each Tier-2 country <= {} %",
        policy.tier2_country_max_share
    );
    if policy.tier3_prohibited {
        println!("                 no compute in Tier 3");
    }
    println!(
        "  counting       ECCN prefixes {}, or TPP >= {}; unknown devices: {}; simulated evidence: {}",
        policy.counting.eccn_prefixes.join(" "),
        grouped(policy.counting.min_tpp),
        match policy.counting.unknown_devices {
            UnknownDevices::HighestOfArchitecture =>
                "counted at the highest TPP of their architecture",
            UnknownDevices::HighestInCatalogue => "counted at the highest TPP in the catalogue",
            UnknownDevices::Reject => "refused",
        },
        match policy.counting.simulated_evidence {
            SimulatedEvidence::Reject => "refused",
            SimulatedEvidence::Accept => "accepted",
        }
    );
    let location = &policy.location;
    println!(
        "  location       radii at {} km/ms, a measurement counts {} h; {}",
        location.speed_m_per_ms as f64 / 1000.0,
        location.max_age_ms / 3_600_000,
        if location.required_for_tier1 {
            "Tier-1 compute meets the minimums only while location-verified"
        } else {
            "location-verified compute is shown, the verdict does not depend on it"
        }
    );
    Ok(0)
}
