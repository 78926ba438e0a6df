//! `veuctl status`: the collector's live distribution against the policy, stale hosts, GPU
//! conflicts and recent rejections.

use proto_accounting::Verdict;
use serde_json::json;

use crate::distribution::{Standing, Views};
use collector_client::Admin;

use crate::remote::{CollectorArgs, block_on};
use crate::table::escape;
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
    /// Exit with status 1 unless the last-known distribution is compliant: a broken rule, or
    /// no counted compute.
    #[arg(long)]
    check: bool,
}

pub fn run(args: &StatusArgs) -> Result<u8, Failure> {
    let status = block_on(async {
        Ok(Admin::new(args.collector.connect("admin").await?)
            .status(args.rejections)
            .await?)
    })?;
    let standing = Standing::evaluate(&Views {
        source: format!("{} (last known)", args.collector.collector),
        policy_toml: &status.policy_toml,
        policy_digest: &status.policy_digest,
        catalogue_digest: &status.catalogue_digest,
        last_known: status.last_known.as_ref(),
        verified: status.verified.as_ref(),
        hosts: status.hosts,
        stale_hosts: &status.stale_hosts,
        agents: Some(status.agents),
    })?;
    match args.format {
        Format::Json => {
            let mut value = standing.json();
            value.insert("conflicts".into(), status.conflicts.iter().map(|c| json!({"at_unix_ms": c.at_unix_ms, "host_id": c.host_id, "detail": c.detail})).collect());
            value.insert(
                "rejection_counts".into(),
                json!(
                    status
                        .rejection_counts
                        .iter()
                        .map(|(reason, count)| (reason.clone(), *count))
                        .collect::<std::collections::BTreeMap<_, _>>()
                ),
            );
            value.insert("recent_rejections".into(), status.recent_rejections.iter().map(|r| json!({"at_unix_ms": r.at_unix_ms, "reason": r.reason, "host_id": r.host_id, "sequence": r.sequence, "peer": r.peer, "detail": r.detail})).collect());
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        Format::Table => {
            print!("{}", standing.table());
            if !status.conflicts.is_empty() {
                println!("GPU conflicts ({}):", status.conflicts.len());
                for conflict in status.conflicts.iter().take(10) {
                    println!(
                        "  {}: {}",
                        escape(&conflict.host_id),
                        escape(&conflict.detail)
                    );
                }
            }
            if status.rejection_counts.is_empty() {
                println!("Rejections: none");
            } else {
                let counts: Vec<String> = status
                    .rejection_counts
                    .iter()
                    .map(|(reason, count)| format!("{} {count}", escape(reason)))
                    .collect();
                println!("Rejections: {}", counts.join(", "));
                for r in &status.recent_rejections {
                    println!(
                        "  {} seq {} from {}: {}",
                        escape(&r.reason),
                        r.sequence,
                        escape(&r.peer),
                        escape(&r.detail)
                    );
                }
            }
        }
    }
    Ok(if args.check && standing.verdict() != Verdict::Compliant {
        1
    } else {
        0
    })
}
