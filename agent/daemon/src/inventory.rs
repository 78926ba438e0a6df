//! `veu-agent inventory`: one enumeration, priced, as a table or JSON. No network.

use std::path::PathBuf;

use agent_core::{GpuSource, PricedInventory, price};
use agent_nvml::NvmlSource;
use proto_accounting::catalogue::MatchedBy;
use proto_accounting::{Catalogue, Policy};
use proto_evidence::EvidenceSource;
use serde_json::json;

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
}

pub fn run(args: &InventoryArgs) -> anyhow::Result<()> {
    let (catalogue, policy) = rules::load(args.catalogue.as_deref(), args.policy.as_deref())?;
    let source = NvmlSource::open(args.nvml_lib.as_deref())?;
    let inventory = source.enumerate()?;
    if let Some(runs) = args.repeat.filter(|runs| *runs > 0) {
        time_enumerations(&source, runs, inventory.devices.len())?;
    }
    let priced = price(&inventory, &catalogue, &policy);
    if args.json {
        let value = to_json(
            &source,
            &inventory.driver_version,
            &priced,
            &catalogue,
            &policy,
        );
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
    }
    Ok(())
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
