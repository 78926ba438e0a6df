//! veu-agent: counts the host's accelerators through NVML and streams signed, hash-chained
//! attestations to the collector.

mod attest;
mod config;
mod enroll;
mod evidence;
mod inventory;
mod link;
mod location;
mod metrics;
mod outbox;
mod rules;
mod run;
mod startup;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Parser, Subcommand};

/// `--version`: the package version and the git commit built from (`unknown` without one).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("VEU_COMMIT"), ")");

/// veu-agent: proves which accelerators this host has, to the veu-attest collector.
///
/// It enumerates the GPUs through NVML, prices them in TPP and H100 equivalents from the
/// accelerator catalogue, and signs periodic hash-chained attestations (Ed25519) that are
/// spooled to disk and streamed to the collector over mutual TLS.
#[derive(Debug, Parser)]
#[command(name = "veu-agent", version = VERSION, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enumerate the accelerators once and print them with TPP and H100e (no network).
    ///
    /// Exit status 1 with the reason when NVML is not available.
    /// Example: veu-agent inventory --json
    Inventory(inventory::InventoryArgs),
    /// Enroll this host with a one-time token: writes the client certificate and key named in
    /// the configuration's [collector] section.
    ///
    /// Example: veu-agent enroll --config /etc/veu-agent/agent.toml --token 3f2a…
    Enroll(enroll::EnrollArgs),
    /// Renew the client certificate before it expires: a fresh one for the same TLS key, host
    /// and site, authenticated by the current one (no token). Restart the agent afterwards.
    ///
    /// Example: veu-agent renew --config /etc/veu-agent/agent.toml
    Renew(enroll::RenewArgs),
    /// Print this host's signing key id and public key (making the key on first use), for
    /// registering the agent with `veuctl agents add` under an operator's own PKI.
    Key {
        /// Configuration file (its state_dir holds the key).
        #[arg(long, value_name = "FILE", default_value = "/etc/veu-agent/agent.toml")]
        config: PathBuf,
    },
    /// Probe the configured landmarks (or the one given) once and print each one's fastest
    /// round trip and the distance it bounds at the speed of light; exit status 1 when any
    /// probe fails. The landmarks submit what they measured to the collector themselves.
    ///
    /// Example: veu-agent probe --config /etc/veu-agent/agent.toml --landmark fra-1.example.org:7450
    Probe(location::ProbeArgs),
    /// Run the daemon. It first makes every check of check-config and exits with status 78 on
    /// any problem, before it creates anything.
    Run {
        /// Configuration file (TOML); see deploy/agent/agent.toml.
        #[arg(long, value_name = "FILE", default_value = "/etc/veu-agent/agent.toml")]
        config: PathBuf,
    },
    /// Check a configuration and everything it names, as `run` would, without creating
    /// anything: every problem is reported with its key (exit status 78); what a first `run`
    /// will create is listed.
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long, value_name = "FILE", default_value = "/etc/veu-agent/agent.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The one crypto provider of the process: ring (no aws-lc anywhere).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = match cli.command {
        Command::Inventory(args) => inventory::run(&args),
        Command::Enroll(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(enroll::run(&args))),
        Command::Renew(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(enroll::renew(&args))),
        Command::Probe(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(location::probe(&args))),
        Command::Key { config } => enroll::key(&config),
        Command::CheckConfig { config } => check_config(&config),
        Command::Run { config } => run(&config),
    };
    veu_daemon_kit::exit_code(result)
}

/// Everything `run` would check, and what it would create, without creating it.
fn check_config(path: &Path) -> anyhow::Result<()> {
    let startup = startup::check(path, SystemTime::now())?;
    println!(
        "{}: valid (host {}, site {})",
        path.display(),
        startup.config.host_id,
        startup.config.site_id
    );
    veu_daemon_kit::print_creates(&startup.creates);
    Ok(())
}

fn run(path: &Path) -> anyhow::Result<()> {
    veu_daemon_kit::start(
        || Ok(startup::check(path, SystemTime::now())?),
        |startup| {
            let config = &startup.config;
            (
                config.log_level,
                config.log_format == config::LogFormat::Json,
            )
        },
        tokio::runtime::Builder::new_current_thread().max_blocking_threads(4),
        run::run,
    )
}
