//! veu-collector: verifies agents' attestations, stores them, evaluates the distribution of
//! compute continuously, and serves admins and auditors.

mod config;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for a bad configuration (EX_CONFIG), so systemd stops restarting.
const EXIT_CONFIG: u8 = 78;

/// `--version`: the package version and the git commit built from (`unknown` without one).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("VEU_COMMIT"), ")");

/// veu-collector: the server of veu-attest.
///
/// Agents stream signed, hash-chained attestations over mutual TLS; the collector verifies
/// each (signature, key binding, chain, clock, nonce, site, catalogue), stores it durably
/// before acknowledging it, and keeps the live distribution of compute per country against
/// the policy.
#[derive(Debug, Parser)]
#[command(name = "veu-collector", version = VERSION, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the collector.
    Run {
        /// Configuration file (TOML); see deploy/collector/collector.toml.
        #[arg(
            long,
            value_name = "FILE",
            default_value = "/etc/veu-collector/collector.toml"
        )]
        config: PathBuf,
    },
    /// Check a configuration file: every error is reported with its key (exit status 78).
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(
            long,
            value_name = "FILE",
            default_value = "/etc/veu-collector/collector.toml"
        )]
        config: PathBuf,
    },
    /// Development PKI.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Create a development CA, a server certificate, and admin and auditor client
    /// certificates in DIR (keys with mode 0600). Refuses to replace an existing CA.
    Init {
        /// Directory to write (created with mode 0700).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Name (DNS or IP) the server certificate carries; repeat for several.
        #[arg(long = "server-name", value_name = "NAME", required = true)]
        server_names: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The one crypto provider of the process: ring (no aws-lc anywhere).
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Pki {
            command: PkiCommand::Init { dir, server_names },
        } => match collector_pki::init(&dir, &server_names, std::time::SystemTime::now()) {
            Ok(paths) => {
                println!("development PKI written to {}", paths.dir.display());
                ExitCode::SUCCESS
            }
            Err(error) => report(Err(error.into())),
        },
        Command::CheckConfig { config } => match config::Config::load(&config) {
            Ok(_) => {
                println!("{}: valid", config.display());
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
            let builder = tracing_subscriber::fmt()
                .with_max_level(config.log_level)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false);
            if config.log_json {
                builder.json().init();
            } else {
                builder.init();
            }
            match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => report(runtime.block_on(run::run(config))),
                Err(error) => report(Err(error.into())),
            }
        }
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
