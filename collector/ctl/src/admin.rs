//! `veuctl enroll-token`, `veuctl agents list|revoke`, `veuctl decommission`: admin calls.

use collector_client::{Admin, Audit};
use serde_json::json;
pub use veu_daemon_kit::hex;

use crate::confirm::{ConfirmArgs, confirm};
use crate::number::{counted, grouped};
use crate::remote::{CollectorArgs, block_on};
use crate::table::escape;
use crate::time::rfc3339;
use crate::{Failure, Format};

#[derive(Debug, clap::Args)]
pub struct EnrollTokenArgs {
    #[command(flatten)]
    collector: CollectorArgs,
    /// The site (from the collector's site registry) the enrolling host is at.
    #[arg(long, value_name = "SITE")]
    site: String,
    /// Validity in hours.
    #[arg(long, value_name = "HOURS", default_value_t = 24)]
    valid_hours: u32,
    /// Make a rebind token for this existing host: the key that spends it takes the host over
    /// (moved to --site, or re-keyed) and every earlier key of the host is revoked. Without it
    /// the token only enrols a host id nobody holds yet.
    #[arg(long, value_name = "HOST")]
    rebind: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct AgentsArgs {
    #[command(subcommand)]
    command: AgentsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AgentsCommand {
    /// Every enrolled key with its host, site and state.
    List {
        #[command(flatten)]
        collector: CollectorArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Register an agent whose client certificate comes from the operator's own PKI: binds its
    /// signing key (`veu-agent key` prints it) to a host and site.
    Add {
        #[command(flatten)]
        collector: CollectorArgs,
        /// The agent's Ed25519 signing public key, 64 hex digits.
        #[arg(long, value_name = "HEX")]
        public_key: String,
        /// Host id; the agent's certificate must carry the SAN URI urn:veu:agent:<HOST>.
        #[arg(long, value_name = "HOST")]
        host: String,
        /// Site from the collector's site registry.
        #[arg(long, value_name = "SITE")]
        site: String,
        /// The host exists already: re-bind it to this key (moved or re-keyed), revoking its
        /// earlier keys. Without it an existing host id is refused. Re-binding cannot be undone:
        /// it asks for confirmation on a terminal and needs --yes otherwise.
        #[arg(long)]
        rebind: bool,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Revoke a key (hex key id from `agents list`): its attestations are refused from now on.
    Revoke {
        #[command(flatten)]
        collector: CollectorArgs,
        /// Key id, 64 hex digits.
        #[arg(value_name = "KEY_ID")]
        key_id: String,
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct DecommissionArgs {
    #[command(flatten)]
    collector: CollectorArgs,
    /// The host to remove from the distribution.
    #[arg(value_name = "HOST")]
    host: String,
    #[command(flatten)]
    confirm: ConfirmArgs,
}

pub fn enroll_token(args: &EnrollTokenArgs) -> Result<u8, Failure> {
    block_on(async {
        let mut admin = Admin::new(args.collector.connect("admin").await?);
        let token = admin
            .enroll_token(
                &args.site,
                args.valid_hours.saturating_mul(3600),
                args.rebind.as_deref(),
            )
            .await?;
        println!("{}", escape(&token));
        match &args.rebind {
            Some(host) => eprintln!(
                "one-time REBIND token: host {host} moves to site {} under the key that spends it, and its earlier keys are revoked; on the host: veu-agent enroll --token {}",
                args.site,
                escape(&token)
            ),
            None => eprintln!(
                "one-time token for a new host at site {}; on the host: veu-agent enroll --token {}",
                args.site,
                escape(&token)
            ),
        }
        Ok(0)
    })
}

pub fn agents(args: &AgentsArgs) -> Result<u8, Failure> {
    match &args.command {
        AgentsCommand::List { collector, format } => block_on(async {
            let agents = Admin::new(collector.connect("admin").await?)
                .agents()
                .await?;
            match format {
                Format::Json => {
                    let list: Vec<_> = agents
                        .iter()
                        .map(|a| {
                            json!({"key_id": hex(&a.key_id), "host_id": a.host_id, "site_id": a.site_id,
                                   "enrolled_unix_ms": a.enrolled_unix_ms,
                                   "revoked_unix_ms": a.revoked_unix_ms})
                        })
                        .collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&list).unwrap_or_default()
                    );
                }
                Format::Table => {
                    println!("{:<64}  {:<24} {:<20} State", "Key id", "Host", "Site");
                    for a in &agents {
                        let state = if a.revoked_unix_ms.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        println!(
                            "{:<64}  {:<24} {:<20} {state}",
                            hex(&a.key_id),
                            escape(&a.host_id),
                            escape(&a.site_id)
                        );
                    }
                }
            }
            Ok(0)
        }),
        AgentsCommand::Add {
            collector,
            public_key,
            host,
            site,
            rebind,
            confirm: confirming,
        } => {
            let raw = unhex(public_key).ok_or_else(|| {
                Failure::bad_input(anyhow::anyhow!(
                    "{public_key:?} is not a 64-digit hex public key"
                ))
            })?;
            block_on(async {
                let mut admin = Admin::new(collector.connect("admin").await?);
                if *rebind || confirming.dry_run {
                    let agents = admin.agents().await?;
                    let active: Vec<String> = agents
                        .iter()
                        .filter(|a| a.host_id == *host && a.revoked_unix_ms.is_none())
                        .map(|a| hex(&a.key_id))
                        .collect();
                    let what = if *rebind {
                        format!(
                            "re-bind host {host} to this key at site {site}, revoking its {}{}",
                            counted(active.len() as u64, "active key", "active keys"),
                            if active.is_empty() {
                                String::new()
                            } else {
                                format!(" ({})", active.join(", "))
                            }
                        )
                    } else {
                        format!(
                            "register {host} at {site} with this key (the host now has {})",
                            counted(active.len() as u64, "active key", "active keys")
                        )
                    };
                    if confirming.dry_run {
                        println!("dry run, nothing changed: would {what}");
                        return Ok(0);
                    }
                    confirm(confirming, &format!("Re-bind host {host} at site {site}"))?;
                }
                let key_id = admin.register_agent(raw, host, site, *rebind).await?;
                println!("registered {host} at {site}: key {}", hex(&key_id));
                Ok(0)
            })
        }
        AgentsCommand::Revoke {
            collector,
            key_id,
            confirm: confirming,
        } => {
            let raw = unhex(key_id).ok_or_else(|| {
                Failure::bad_input(anyhow::anyhow!("{key_id:?} is not a 64-digit hex key id"))
            })?;
            block_on(async {
                let mut admin = Admin::new(collector.connect("admin").await?);
                let agents = admin.agents().await?;
                let Some(found) = agents.iter().find(|a| a.key_id == raw) else {
                    return Err(Failure {
                        status: 1,
                        error: anyhow::anyhow!("the collector has no key {key_id}"),
                    });
                };
                let state = match found.revoked_unix_ms {
                    Some(at) => format!("revoked since {}", rfc3339(at)),
                    None => "active".to_owned(),
                };
                let what = format!(
                    "revoke key {key_id} of host {} at site {} (now {state}): its attestations are refused from then on",
                    found.host_id, found.site_id
                );
                if confirming.dry_run {
                    println!("dry run, nothing changed: would {what}");
                    return Ok(0);
                }
                confirm(
                    confirming,
                    &format!("Revoke key {key_id} of host {}", found.host_id),
                )?;
                if admin.revoke_agent(raw).await? {
                    println!("revoked {key_id}");
                    Ok(0)
                } else {
                    Err(Failure {
                        status: 1,
                        error: anyhow::anyhow!("no active key {key_id}"),
                    })
                }
            })
        }
    }
}

pub fn decommission(args: &DecommissionArgs) -> Result<u8, Failure> {
    block_on(async {
        let channel = args.collector.connect("admin").await?;
        let mut admin = Admin::new(channel.clone());
        let hosts = Audit::new(channel).hosts().await?;
        let Some(host) = hosts.iter().find(|h| h.host_id == args.host) else {
            return Err(Failure {
                status: 1,
                error: anyhow::anyhow!("the collector has no host {}", args.host),
            });
        };
        let state = if let Some(at) = host.decommissioned_unix_ms {
            format!("already decommissioned since {}", rfc3339(at))
        } else {
            format!(
                "counts {} TPP on {} in {} at site {}, last attested {}",
                grouped(host.tpp),
                counted(u64::from(host.devices), "device", "devices"),
                escape(&host.country),
                escape(&host.site_id),
                host.last_attested_unix_ms
                    .map_or_else(|| "never".to_owned(), rfc3339)
            )
        };
        if args.confirm.dry_run {
            println!(
                "dry run, nothing changed: would decommission {} (now: {state}); it would count nowhere from then on",
                args.host
            );
            return Ok(0);
        }
        confirm(
            &args.confirm,
            &format!("Decommission {} ({state})", args.host),
        )?;
        if admin.decommission(&args.host).await? {
            println!(
                "decommissioned {}: it no longer counts in the distribution",
                args.host
            );
            Ok(0)
        } else {
            Err(Failure {
                status: 1,
                error: anyhow::anyhow!("no host {}", args.host),
            })
        }
    })
}

pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
