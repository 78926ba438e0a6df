//! veu-landmark: measures round trips to agents' attestation keys from surveyed coordinates
//! and submits the signed fastest round to the collector.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use proto_evidence::Coordinates;
use tokio_util::sync::CancellationToken;
use veu_daemon_kit::Hangup;
use veu_landmark::config::Config;
use veu_landmark::{daemon, registry};

/// `--version`: the package version and the git commit built from (`unknown` without one).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("VEU_COMMIT"), ")");

/// The configuration file by default.
const DEFAULT_CONFIG: &str = "/etc/veu-landmark/landmark.toml";

/// veu-landmark: a round-trip-time landmark for veu-attest's location evidence.
///
/// Agents connect to it and answer its nonces with their attestation key; the fastest round
/// bounds how far the key's holder can be from the landmark's surveyed coordinates. Each
/// measurement is signed with the landmark's key and submitted to the collector over mutual
/// TLS (a `landmark` client certificate from the collector's CA).
///
/// Start with `veu-landmark keygen`, add the printed entry to the landmark registry, write a
/// configuration (deploy/landmark/landmark.toml), then `veu-landmark run`.
#[derive(Debug, Parser)]
#[command(name = "veu-landmark", version = VERSION, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make the landmark's Ed25519 signing key in a new file (mode 0600) and print its
    /// `[[landmark]]` registry entry. An existing file is never replaced.
    ///
    /// Id and coordinates come from --id, --latitude and --longitude, or from --config.
    Keygen {
        /// The key file to create (default: the configuration's `key`).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        #[command(flatten)]
        entry: EntryArgs,
    },
    /// Print the `[[landmark]]` registry entry of the configuration's existing key.
    ShowKey {
        /// Configuration file (TOML).
        #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Who runs the landmark, for people reading the registry.
        #[arg(long, value_name = "TEXT", default_value = "")]
        operator: String,
    },
    /// Run the landmark until SIGTERM or SIGINT. It first makes every check of check-config
    /// and exits with status 78 on any problem.
    Run {
        /// Configuration file (TOML); see deploy/landmark/landmark.toml.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Check a configuration and the key and TLS files it names: every problem is reported
    /// with its key (exit status 78).
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct EntryArgs {
    /// Configuration file to take id, coordinates and key path from.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The landmark's id (the name in its landmark certificate).
    #[arg(long, value_name = "ID", required_unless_present = "config")]
    id: Option<String>,
    /// Surveyed latitude, degrees north.
    #[arg(long, value_name = "DEGREES", allow_negative_numbers = true)]
    latitude: Option<f64>,
    /// Surveyed longitude, degrees east.
    #[arg(long, value_name = "DEGREES", allow_negative_numbers = true)]
    longitude: Option<f64>,
    /// Who runs the landmark, for people reading the registry.
    #[arg(long, value_name = "TEXT", default_value = "")]
    operator: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The one crypto provider of the process: ring (no aws-lc anywhere).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = match cli.command {
        Command::Keygen { key, entry } => keygen(key, &entry),
        Command::ShowKey { config, operator } => show_key(&config, &operator),
        Command::CheckConfig { config } => Config::load(&config, SystemTime::now())
            .map(|loaded| {
                println!(
                    "{}: valid (landmark {} at {})",
                    config.display(),
                    loaded.config.id,
                    loaded.config.at
                );
            })
            .map_err(anyhow::Error::from),
        Command::Run { config } => run(&config),
    };
    veu_daemon_kit::exit_code(result)
}

fn keygen(key: Option<PathBuf>, args: &EntryArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(Config::parse(&text, path)?)
        }
        None => None,
    };
    let id = args
        .id
        .clone()
        .or_else(|| config.as_ref().map(|c| c.id.clone()))
        .context("--id is required without --config")?;
    proto_config::check_id(&id).map_err(|message| anyhow::anyhow!("--id: {message}"))?;
    let latitude = args
        .latitude
        .or_else(|| config.as_ref().map(|c| c.at.latitude()))
        .context("--latitude is required without --config")?;
    let longitude = args
        .longitude
        .or_else(|| config.as_ref().map(|c| c.at.longitude()))
        .context("--longitude is required without --config")?;
    let at = Coordinates::from_degrees(latitude, longitude)?;
    let path = key
        .or_else(|| config.as_ref().map(|c| c.key.clone()))
        .context("--key is required without --config")?;
    let signer = proto_seal::keyfile::create(&path)?;
    eprintln!("created {} (mode 0600)", path.display());
    println!(
        "{}",
        registry::entry(&id, at, *signer.public_key().as_bytes(), &args.operator)
    );
    Ok(())
}

fn show_key(path: &Path, operator: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config = Config::parse(&text, path)?;
    let signer = proto_seal::keyfile::load(&config.key)?;
    println!(
        "{}",
        registry::entry(
            &config.id,
            config.at,
            *signer.public_key().as_bytes(),
            operator
        )
    );
    Ok(())
}

fn run(path: &Path) -> anyhow::Result<()> {
    veu_daemon_kit::start(
        || Ok(Config::load(path, SystemTime::now())?),
        |loaded| (loaded.config.log_level, loaded.config.log_json),
        &mut tokio::runtime::Builder::new_multi_thread(),
        |loaded| async {
            let shutdown = CancellationToken::new();
            tokio::spawn(veu_daemon_kit::cancel_on_signal(
                "landmark",
                Hangup::Default,
                shutdown.clone(),
            ));
            daemon::run(loaded, shutdown, |address| {
                // The one line on stdout: where agents reach the landmark (port 0 picks one).
                println!("veu-landmark listening on {address}");
            })
            .await
        },
    )
}
