//! veu-collector: verifies agents' attestations, stores them, evaluates the distribution of
//! compute continuously, and serves admins and auditors.

mod config;
mod run;
mod startup;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Parser, Subcommand};

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
    /// Run the collector. It first makes every check of check-config and exits with status 78
    /// on any problem, before it creates anything.
    Run {
        /// Configuration file (TOML); see deploy/collector/collector.toml.
        #[arg(
            long,
            value_name = "FILE",
            default_value = "/etc/veu-collector/collector.toml"
        )]
        config: PathBuf,
    },
    /// Check a configuration and everything it names, as `run` would, without creating
    /// anything: every problem is reported with its key (exit status 78); what a first `run`
    /// will create is listed.
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
    /// Issue a client certificate and key from the CA in DIR: for a round-trip-time landmark
    /// (`--role landmark --name fra-1`, the name its measurements carry and the collector's
    /// landmark registry lists), or another admin or auditor. Writes ROLE-NAME.pem and
    /// ROLE-NAME.key (mode 0600) into OUT; refuses to replace them.
    Issue {
        /// The directory `pki init` wrote (ca.pem and ca.key).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// landmark, auditor or admin (agents enroll with a token instead).
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// The identity's name: 1 to 256 characters of A-Za-z0-9-_.:
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Where to write the two files (default: DIR).
        #[arg(long, value_name = "OUT")]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The one crypto provider of the process: ring (no aws-lc anywhere).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = match cli.command {
        Command::Pki {
            command: PkiCommand::Init { dir, server_names },
        } => collector_pki::init(&dir, &server_names, SystemTime::now())
            .map(|paths| println!("development PKI written to {}", paths.dir.display()))
            .map_err(anyhow::Error::from),
        Command::Pki {
            command:
                PkiCommand::Issue {
                    dir,
                    role,
                    name,
                    out,
                },
        } => issue(&dir, &role, &name, out.as_deref()),
        Command::CheckConfig { config } => check_config(&config),
        Command::Run { config } => run(&config),
    };
    veu_daemon_kit::exit_code(result)
}

/// `pki issue`: a client credential from the development CA.
fn issue(dir: &Path, role: &str, name: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let role: collector_pki::Role = role.parse()?;
    if role == collector_pki::Role::Agent {
        anyhow::bail!(
            "agents enroll with a token (veuctl enroll-token, then veu-agent enroll), so that their key never leaves the host"
        );
    }
    let (cert, key) = collector_pki::issue(dir, role, name, out.unwrap_or(dir), SystemTime::now())?;
    println!(
        "urn:veu:{role}:{name}: certificate {}, key {}",
        cert.display(),
        key.display()
    );
    Ok(())
}

/// Everything `run` would check, and what it would create, without creating it.
fn check_config(path: &Path) -> anyhow::Result<()> {
    let startup = startup::check(path, SystemTime::now())?;
    println!("{}: valid", path.display());
    for warning in startup.warnings() {
        println!("warning: {warning}");
    }
    veu_daemon_kit::print_creates(&startup.creates);
    Ok(())
}

fn run(path: &Path) -> anyhow::Result<()> {
    veu_daemon_kit::start(
        || Ok(startup::check(path, SystemTime::now())?),
        |startup| (startup.config.log_level, startup.config.log_json),
        &mut tokio::runtime::Builder::new_multi_thread(),
        run::run,
    )
}
