//! `veu-agent inventory`: one enumeration, priced, as a table or JSON; with `--gpu-evidence`,
//! each GPU's attestation report over one nonce. No network.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_core::{GpuSource, PricedInventory, price};
use agent_nvml::NvmlSource;
use anyhow::Context as _;
use base64::Engine as _;
use proto_accounting::catalogue::MatchedBy;
use proto_accounting::{Catalogue, Policy};
use proto_evidence::{EvidenceSource, GpuEvidence};
use serde_json::json;
use veu_daemon_kit::hex;

use crate::rules;

#[derive(Debug, clap::Args)]
pub struct InventoryArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// NVML library to load (default: the driver's libnvidia-ml.so.1).
    #[arg(long, value_name = "PATH")]
    nvml_lib: Option<PathBuf>,
    /// Accelerator catalogue replacing the built-in one.
    #[arg(long, value_name = "FILE")]
    catalogue: Option<PathBuf>,
    /// Policy (default: the built-in 2025 UVEU policy, US headquarters).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Also time N enumerations and print their median and 99th percentile on stderr.
    #[arg(long, value_name = "N")]
    repeat: Option<u32>,
    /// Also ask every GPU for its attestation report over one nonce, as the daemon does after
    /// a collector challenge (JSON carries the report and chain in base64).
    #[arg(long)]
    gpu_evidence: bool,
    /// The 32-byte nonce every GPU signs, in hex (default: random).
    #[arg(long, value_name = "HEX", requires = "gpu_evidence", value_parser = parse_nonce)]
    nonce: Option<[u8; 32]>,
    /// Deadline for the reports of all devices together.
    #[arg(long, value_name = "DURATION", default_value = "10s", requires = "gpu_evidence", value_parser = proto_config::parse_duration)]
    gpu_evidence_timeout: Duration,
}

pub fn run(args: &InventoryArgs) -> anyhow::Result<()> {
    let (catalogue, policy) = rules::load(args.catalogue.as_deref(), args.policy.as_deref())?;
    let source = Arc::new(NvmlSource::open(args.nvml_lib.as_deref())?);
    let inventory = source.enumerate()?;
    if let Some(runs) = args.repeat.filter(|runs| *runs > 0) {
        time_enumerations(&source, runs, inventory.devices.len())?;
    }
    let priced = price(&inventory, &catalogue, &policy);
    let evidence = if args.gpu_evidence {
        let nonce = match args.nonce {
            Some(nonce) => nonce,
            None => random_nonce()?,
        };
        let requests = inventory.devices.iter().map(|d| (d.index, nonce)).collect();
        let collect = crate::evidence::collect(
            Arc::clone(&source) as Arc<dyn GpuSource>,
            requests,
            args.gpu_evidence_timeout,
        );
        let collected = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?
            .block_on(collect);
        Some((nonce, collected))
    } else {
        None
    };
    if args.json {
        let mut value = to_json(
            &source,
            &inventory.driver_version,
            &priced,
            &catalogue,
            &policy,
        );
        if let Some((nonce, collected)) = &evidence {
            value["gpu_evidence_nonce"] = json!(hex(nonce));
            for (index, evidence) in collected {
                if let Some(device) = value["devices"]
                    .as_array_mut()
                    .and_then(|devices| devices.iter_mut().find(|d| d["index"] == *index))
                {
                    device["gpu_evidence"] = evidence_json(evidence);
                }
            }
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!(
            "{}",
            table(
                &source,
                &inventory.driver_version,
                &priced,
                &catalogue,
                &policy
            )
        );
        if let Some((nonce, collected)) = &evidence {
            print!("{}", evidence_table(nonce, collected));
        }
    }
    Ok(())
}

fn evidence_json(evidence: &GpuEvidence) -> serde_json::Value {
    let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    match evidence {
        GpuEvidence::NotCollected => json!({"collected": false}),
        GpuEvidence::Report {
            report,
            certificate_chain,
        } => json!({
            "report_bytes": report.len(),
            "certificate_chain_bytes": certificate_chain.len(),
            "report": base64(report),
            "certificate_chain": base64(certificate_chain),
        }),
        GpuEvidence::Unavailable { fault, message } => json!({
            "fault": fault.code(),
            "message": message,
        }),
    }
}

fn evidence_table(nonce: &[u8; 32], collected: &[(u32, GpuEvidence)]) -> String {
    let mut out = format!("\nGPU attestation reports over nonce {}\n", hex(nonce));
    for (index, evidence) in collected {
        let line = match evidence {
            GpuEvidence::NotCollected => "not collected".to_owned(),
            GpuEvidence::Report {
                report,
                certificate_chain,
            } => format!(
                "report {} bytes, certificate chain {} bytes",
                report.len(),
                certificate_chain.len()
            ),
            GpuEvidence::Unavailable { fault, message } => {
                format!("no report ({}): {message}", fault.code())
            }
        };
        out.push_str(&format!("{index:>3}  {line}\n"));
    }
    out
}

fn random_nonce() -> anyhow::Result<[u8; 32]> {
    let mut nonce = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .ok()
        .context("the system random generator failed")?;
    Ok(nonce)
}

fn parse_nonce(text: &str) -> Result<[u8; 32], String> {
    let digits = text.trim();
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{text:?} is not 32 bytes in hex (64 hex digits)"));
    }
    let mut nonce = [0u8; 32];
    for (byte, pair) in nonce.iter_mut().zip(digits.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|e| e.to_string())?;
    }
    Ok(nonce)
}

/// Times `runs` enumerations: NVML's cost per inventory on this host.
fn time_enumerations(source: &NvmlSource, runs: u32, devices: usize) -> anyhow::Result<()> {
    let mut samples = Vec::with_capacity(runs as usize);
    for _ in 0..runs {
        let start = std::time::Instant::now();
        source.enumerate()?;
        samples.push(start.elapsed());
    }
    samples.sort();
    let at = |quantile: f64| samples[((samples.len() - 1) as f64 * quantile) as usize];
    eprintln!(
        "enumeration of {devices} device(s): median {:.1} us, p99 {:.1} us, over {runs} runs",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6
    );
    Ok(())
}

fn source_name(source: EvidenceSource) -> &'static str {
    match source {
        EvidenceSource::Nvml => "nvml",
        EvidenceSource::Simulated => "simulated",
    }
}

fn to_json(
    source: &NvmlSource,
    driver: &str,
    priced: &PricedInventory,
    catalogue: &Catalogue,
    policy: &Policy,
) -> serde_json::Value {
    let devices: Vec<serde_json::Value> = priced
        .devices
        .iter()
        .map(|device| {
            let r = &device.record;
            json!({
                "index": r.index,
                "uuid": r.uuid,
                "serial": r.serial,
                "board_part_number": r.board_part_number,
                "name": r.name,
                "model": if r.unknown { "unknown" } else { r.catalogue_id.as_str() },
                "unknown": r.unknown,
                "matched_by": device.matched_by.map(|m| match m {
                    MatchedBy::PciSubsystem => "pci_subsystem",
                    MatchedBy::Pci => "pci",
                    MatchedBy::Name => "name",
                }),
                "counted": device.counted,
                "tpp": r.tpp,
                "h100e": device.h100e,
                "pci_bus_id": r.pci_bus_id,
                "pci_device_id": format!("0x{:08x}", r.pci_device_id),
                "pci_subsystem_id": format!("0x{:08x}", r.pci_subsystem_id),
                "architecture": r.architecture,
                "compute_capability": r.compute_capability,
                "memory_total_bytes": r.memory_total_bytes,
                "max_sm_clock_mhz": r.max_sm_clock_mhz,
                "mig": {"enabled": r.mig_enabled, "instances": r.mig_instances},
                "vbios_version": r.vbios_version,
                "confidential_compute": r.confidential_compute,
                "faults": r.faults.iter().map(|f| json!({"query": f.query, "message": f.message})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let host = agent_host::read();
    json!({
        "devices": devices,
        "device_count": priced.totals.devices,
        "unknown_devices": priced.totals.unknown_devices,
        "faulty_devices": priced.totals.faulty_devices,
        "total_tpp": priced.totals.tpp,
        "total_h100e": priced.h100e,
        "driver_version": driver,
        "evidence_source": source_name(source.evidence_source()),
        "nvml_library": source.library().display().to_string(),
        "catalogue_digest": catalogue.digest().to_string(),
        "policy": {"id": policy.id, "version": policy.version, "digest": policy.digest().to_string()},
        "host": {
            "hostname": host.hostname,
            "machine_id": host.machine_id,
            "os": host.os,
            "kernel": host.kernel,
            "boot_time_unix_s": host.boot_time_unix_s,
            "cpu_model": host.cpu_model,
            "cpu_count": host.cpu_count,
            "memory_bytes": host.memory_bytes,
        },
    })
}

fn table(
    source: &NvmlSource,
    driver: &str,
    priced: &PricedInventory,
    catalogue: &Catalogue,
    policy: &Policy,
) -> String {
    let mut out = String::new();
    let evidence = match source.evidence_source() {
        EvidenceSource::Nvml => "",
        EvidenceSource::Simulated => " (fake library: evidence is simulated)",
    };
    out.push_str(&format!(
        "NVML      {}{evidence}\n",
        source.library().display()
    ));
    out.push_str(&format!(
        "Driver    {}\n",
        if driver.is_empty() { "?" } else { driver }
    ));
    out.push_str(&format!(
        "Rules     catalogue {}, policy {} v{}\n\n",
        catalogue.digest(),
        policy.id,
        policy.version
    ));
    if priced.devices.is_empty() {
        out.push_str("No accelerators found.\n");
    } else {
        out.push_str(&format!(
            "{:>3}  {:<22} {:<26} {:<40} {:>7} {:>6}  {:<6} {}\n",
            "Idx", "Model", "Name", "UUID", "TPP", "H100e", "MIG", "Faults"
        ));
        for device in &priced.devices {
            let r = &device.record;
            let model = if r.unknown {
                "unknown".to_owned()
            } else {
                r.catalogue_id.clone()
            };
            let mig = if r.mig_enabled {
                format!("{} inst", r.mig_instances)
            } else {
                "-".into()
            };
            let faults = if r.faults.is_empty() {
                "-".to_owned()
            } else {
                r.faults
                    .iter()
                    .map(|f| format!("{}: {}", f.query, f.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            out.push_str(&format!(
                "{:>3}  {:<22} {:<26} {:<40} {:>7} {:>6.2}  {:<6} {}\n",
                r.index,
                model,
                if r.name.is_empty() {
                    "?"
                } else {
                    r.name.as_str()
                },
                if r.uuid.is_empty() {
                    "?"
                } else {
                    r.uuid.as_str()
                },
                r.tpp,
                device.h100e,
                mig,
                faults
            ));
        }
    }
    let totals = priced.totals;
    out.push_str(&format!(
        "\nTotal     {} device(s), {} TPP = {:.2} H100e ({} unknown, {} with faults)\n",
        totals.devices, totals.tpp, priced.h100e, totals.unknown_devices, totals.faulty_devices
    ));
    out
}
