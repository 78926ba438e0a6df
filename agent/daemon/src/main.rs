//! veu-agent: counts the host's accelerators through NVML and streams signed, hash-chained
//! attestations to the collector.

mod attest;
mod config;
mod enroll;
mod inventory;
mod link;
mod metrics;
mod outbox;
mod rules;
mod run;
mod signal;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for a bad configuration (EX_CONFIG), so systemd stops restarting.
const EXIT_CONFIG: u8 = 78;

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
    /// Run the daemon.
    Run {
        /// Configuration file (TOML); see deploy/agent/agent.toml.
        #[arg(long, value_name = "FILE", default_value = "/etc/veu-agent/agent.toml")]
        config: PathBuf,
    },
    /// Check a configuration file: every error is reported with its key (exit status 78).
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long, value_name = "FILE", default_value = "/etc/veu-agent/agent.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Inventory(args) => report(inventory::run(&args)),
        Command::Enroll(args) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => report(runtime.block_on(enroll::run(&args))),
                Err(error) => report(Err(error.into())),
            }
        }
        Command::Renew(args) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => report(runtime.block_on(enroll::renew(&args))),
                Err(error) => report(Err(error.into())),
            }
        }
        Command::Key { config } => report(key(&config)),
        Command::CheckConfig { config } => match config::Config::load(&config) {
            Ok(loaded) => {
                println!(
                    "{}: valid (host {}, site {})",
                    config.display(),
                    loaded.host_id,
                    loaded.site_id
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("error: {errors}");
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Run { config } => {
            let config = match config::Config::load(&config) {
                Ok(config) => config,
                Err(errors) => {
                    eprintln!("error: {errors}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            // The one crypto provider of the process: ring (no aws-lc anywhere).
            let _ = rustls::crypto::ring::default_provider().install_default();
            init_logging(&config);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads(4)
                .build();
            match runtime {
                Ok(runtime) => report(runtime.block_on(run::run(config))),
                Err(error) => report(Err(error.into())),
            }
        }
    }
}

fn key(path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let config = config::Config::parse(&text, path)?;
    std::fs::create_dir_all(&config.state_dir)?;
    let (signer, _) = agent_sign::load_or_create(&config.state_dir.join("signing-key.pk8"))?;
    let public: String = signer
        .public_key()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("key id      {}", signer.key_id());
    println!("public key  {public}");
    println!(
        "register:   veuctl agents add --public-key {public} --host {} --site {}",
        config.host_id, config.site_id
    );
    Ok(())
}

fn init_logging(config: &config::Config) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(config.log_level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match config.log_format {
        config::LogFormat::Json => builder.json().init(),
        config::LogFormat::Text => builder.init(),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
