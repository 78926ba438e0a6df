//! veu-loadgen: simulates a fleet of agents against a running collector and prints one JSON
//! summary of what was sent, acknowledged and rejected, and how fast.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use collector_loadgen::{Credential, FleetPlan, StreamPlan, Target, enroll_fleet, stream_fleet};
use tokio_util::sync::CancellationToken;

/// Enrollments in progress at once.
const ENROLL_PARALLEL: usize = 16;

/// veu-loadgen: simulated agents (real Ed25519 keys, real signatures, real mutual TLS) that
/// enroll with one-time tokens and stream 8-GPU attestations to a collector.
///
/// Progress goes to stderr once a second; the summary is one JSON object on stdout. The
/// collector must accept simulated evidence (deploy/policies/uveu-2025-us-simulated.toml).
#[derive(Debug, Parser)]
#[command(name = "veu-loadgen", version, max_term_width = 100)]
struct Cli {
    /// The collector's gRPC endpoint.
    #[arg(long, value_name = "URL", default_value = "https://127.0.0.1:7443")]
    collector: String,
    /// Name its certificate carries [default: the endpoint's host].
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Directory of `veu-collector pki init`: ca.pem to trust the collector, admin.pem and
    /// admin.key to create enrollment tokens.
    #[arg(long, value_name = "DIR")]
    pki_dir: PathBuf,
    /// Simulated agents (hosts of 8 H100 GPUs).
    #[arg(long, value_name = "N", default_value_t = 100)]
    agents: usize,
    /// Sites agents are enrolled at, round-robin; each must be in the collector's registry.
    #[arg(long, value_name = "ID,…", value_delimiter = ',', required = true)]
    sites: Vec<String>,
    /// Stop sending after this long (`30s`, `2m`) [default: 30s without
    /// --attestations-per-agent].
    #[arg(long, value_name = "DURATION", value_parser = proto_config::parse_duration)]
    duration: Option<Duration>,
    /// Stop each agent after K attestations.
    #[arg(long, value_name = "K", conflicts_with = "duration")]
    attestations_per_agent: Option<u64>,
    /// Attestations per agent per second; 0 sends as fast as the window allows.
    #[arg(long, value_name = "R", default_value_t = 0.0)]
    rate: f64,
    /// Streams open at once [default: --agents]; agents beyond it start as others finish
    /// (meant for --attestations-per-agent).
    #[arg(long, value_name = "C")]
    concurrency: Option<usize>,
    /// Attestations an agent may have unanswered (pipelining).
    #[arg(long, value_name = "W", default_value_t = 64)]
    window: usize,
    /// Seed of the GPU UUIDs and serials [default: random]; reuse one to make a fleet that
    /// duplicates another's GPUs (the collector counts GPU conflicts).
    #[arg(long, value_name = "N")]
    gpu_seed: Option<u64>,
    /// Host names are PREFIX-00000, … [default: loadgen-<random>].
    #[arg(long, value_name = "PREFIX")]
    host_prefix: Option<String>,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The one crypto provider of the process: ring (no aws-lc anywhere).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (target, admin) = match credentials(&cli) {
        Ok(found) => found,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(proto_config::EXIT_CONFIG);
        }
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(run(&cli, &target, &admin)));
    match result {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn credentials(cli: &Cli) -> anyhow::Result<(Target, Credential)> {
    anyhow::ensure!(cli.agents > 0, "--agents must be at least 1");
    anyhow::ensure!(
        cli.rate >= 0.0 && cli.rate.is_finite(),
        "--rate must be 0 or more"
    );
    let server_name = match &cli.server_name {
        Some(name) => name.clone(),
        None => collector_loadgen::transport::host_of(&cli.collector).with_context(|| {
            format!(
                "cannot tell the host of {}; pass --server-name",
                cli.collector
            )
        })?,
    };
    let target = Target::from_pki_dir(&cli.collector, &server_name, &cli.pki_dir)?;
    let admin = Credential::from_pki_dir(&cli.pki_dir, "admin")?;
    Ok((target, admin))
}

async fn run(cli: &Cli, target: &Target, admin: &Credential) -> anyhow::Result<String> {
    let plan = FleetPlan {
        agents: cli.agents,
        sites: cli.sites.clone(),
        host_prefix: cli
            .host_prefix
            .clone()
            .unwrap_or_else(|| format!("loadgen-{:08x}", collector_loadgen::random_u64() as u32)),
        gpu_seed: cli.gpu_seed.unwrap_or_else(collector_loadgen::random_u64),
        parallel: ENROLL_PARALLEL,
    };
    let started = Instant::now();
    if !cli.quiet {
        eprintln!(
            "veu-loadgen: enrolling {} agents at {} as {}-*",
            plan.agents, target.endpoint, plan.host_prefix
        );
    }
    let agents = enroll_fleet(target, admin, &plan).await?;
    if !cli.quiet {
        eprintln!(
            "veu-loadgen: enrolled {} agents in {:.1} s; streaming",
            agents.len(),
            started.elapsed().as_secs_f64()
        );
    }
    let streams = StreamPlan {
        attestations_per_agent: cli.attestations_per_agent,
        // --duration and --attestations-per-agent exclude each other.
        duration: (cli.attestations_per_agent.is_none())
            .then(|| cli.duration.unwrap_or(Duration::from_secs(30))),
        rate: cli.rate,
        window: cli.window.max(1),
        concurrency: cli.concurrency.unwrap_or(cli.agents).max(1),
        presign: 0,
    };
    let shutdown = CancellationToken::new();
    let interrupt = shutdown.clone();
    tokio::spawn(async move {
        // Ctrl-C stops sending; the agents still wait for their answers.
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("veu-loadgen: interrupted; waiting for outstanding answers");
            interrupt.cancel();
        }
    });
    let summary = stream_fleet(target, agents, &streams, shutdown, !cli.quiet).await;
    let json = serde_json::to_string(&summary)?;
    if summary.failed_agents > 0 {
        println!("{json}");
        anyhow::bail!(
            "{} agent stream(s) failed; first: {}",
            summary.failed_agents,
            summary.errors.first().map_or("", String::as_str)
        );
    }
    Ok(json)
}
