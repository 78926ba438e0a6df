//! `veuctl status`: the collector's live distribution against the policy, stale hosts, GPU
//! conflicts and recent rejections.

use anyhow::anyhow;
use proto_accounting::{CountryCode, Distribution, Policy, evaluate};
use proto_wire::v1;
use proto_wire::v1::admin_client::AdminClient;
use serde_json::json;

use crate::number::grouped;
use crate::plan::{FleetLine, PlanReport};
use crate::remote::{CollectorArgs, block_on, call_failed};
use crate::{Failure, Format};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    collector: CollectorArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Recent rejections to show.
    #[arg(long, value_name = "N", default_value_t = 10)]
    rejections: u32,
    /// Exit with status 1 when a rule is broken in the last-known distribution.
    #[arg(long)]
    check: bool,
}

pub fn run(args: &StatusArgs) -> Result<u8, Failure> {
    let status = block_on(async {
        let mut admin = AdminClient::new(args.collector.connect("admin").await?);
        admin
            .status(v1::StatusRequest {
                recent_rejections: args.rejections,
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| call_failed(&s))
    })?;
    // The collector's own policy file: limits and verdicts exactly as it applies them.
    let policy = Policy::from_toml(&status.policy_toml).map_err(|e| Failure {
        status: 1,
        error: anyhow!("the collector sent a policy this veuctl cannot read: {e}"),
    })?;
    let catalogue = proto_accounting::Catalogue::builtin().map_err(|e| Failure {
        status: 1,
        error: e.into(),
    })?;
    let unit = catalogue
        .by_id("H100-SXM5-80GB")
        .cloned()
        .ok_or_else(|| Failure {
            status: 1,
            error: anyhow!("the catalogue has no H100-SXM5-80GB"),
        })?;
    let view = |view: &Option<v1::DistributionView>| -> Distribution {
        let mut distribution = Distribution::new();
        for line in view.iter().flat_map(|v| &v.countries) {
            if let Ok(country) = CountryCode::parse(&line.country) {
                let _ = distribution.add(country, line.tpp);
            }
        }
        distribution
    };
    let last_known = view(&status.last_known);
    let verified = view(&status.verified);
    let evaluation = evaluate(&policy, &last_known);
    let verified_evaluation = evaluate(&policy, &verified);
    let source = FleetLine {
        file: format!("{} (last known)", args.collector.collector),
        rows: status.hosts as usize,
    };
    let report = PlanReport::new(
        source,
        &last_known,
        &status.catalogue_digest,
        &policy,
        &evaluation,
        &unit,
    );
    match args.format {
        Format::Json => {
            let value = json!({
                "last_known": report,
                "verified": {
                    "compliant": verified_evaluation.compliant(),
                    "total_tpp": verified_evaluation.total_tpp,
                    "violations": verified_evaluation.violations.iter().map(|v| json!({"rule": v.rule.as_str(), "country": v.country.map(|c| c.to_string())})).collect::<Vec<_>>(),
                },
                "hosts": status.hosts,
                "agents": status.agents,
                "stale_hosts": status.stale_hosts.iter().map(|h| json!({"host_id": h.host_id, "country": h.country, "tpp": h.tpp, "last_attested_unix_ms": h.last_attested_unix_ms})).collect::<Vec<_>>(),
                "conflicts": status.conflicts.iter().map(|c| json!({"at_unix_ms": c.at_unix_ms, "host_id": c.host_id, "detail": c.detail})).collect::<Vec<_>>(),
                "rejection_counts": status.rejection_counts.iter().map(|r| (r.reason.clone(), r.count)).collect::<std::collections::BTreeMap<_, _>>(),
                "recent_rejections": status.recent_rejections.iter().map(|r| json!({"at_unix_ms": r.at_unix_ms, "reason": r.reason, "host_id": r.host_id, "sequence": r.sequence, "peer": r.peer, "detail": r.detail})).collect::<Vec<_>>(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        Format::Table => {
            print!("{}", report.table());
            println!();
            println!(
                "Verified within the freshness window: {} ({} TPP of {} TPP)",
                if verified_evaluation.compliant() {
                    "COMPLIANT"
                } else {
                    "NOT COMPLIANT"
                },
                grouped(verified_evaluation.total_tpp),
                grouped(evaluation.total_tpp)
            );
            println!(
                "Hosts {} ({} stale), agents {}",
                status.hosts,
                status.stale_hosts.len(),
                status.agents
            );
            for host in &status.stale_hosts {
                println!(
                    "  stale: {} in {} ({} TPP)",
                    host.host_id,
                    host.country,
                    grouped(host.tpp)
                );
            }
            if !status.conflicts.is_empty() {
                println!("GPU conflicts ({}):", status.conflicts.len());
                for conflict in status.conflicts.iter().take(10) {
                    println!("  {}: {}", conflict.host_id, conflict.detail);
                }
            }
            if status.rejection_counts.is_empty() {
                println!("Rejections: none");
            } else {
                let counts: Vec<String> = status
                    .rejection_counts
                    .iter()
                    .map(|r| format!("{} {}", r.reason, r.count))
                    .collect();
                println!("Rejections: {}", counts.join(", "));
                for r in &status.recent_rejections {
                    println!(
                        "  {} seq {} from {}: {}",
                        r.reason, r.sequence, r.peer, r.detail
                    );
                }
            }
        }
    }
    Ok(if args.check && !report.compliant() {
        1
    } else {
        0
    })
}
