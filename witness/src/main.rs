//! veu-witness: cosigns a transparency log's checkpoints after checking they extend what it
//! cosigned before (C2SP tlog-witness).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use proto_note::KeyName;
use tokio_util::sync::CancellationToken;
use veu_daemon_kit::Hangup;
use veu_witness::config::Config;
use veu_witness::{daemon, keyfile};

/// `--version`: the package version and the git commit built from (`unknown` without one).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("VEU_COMMIT"), ")");

/// veu-witness: an independent witness of a veu-attest transparency log.
///
/// The operator's collector keeps its evidence in an append-only Merkle log and signs each
/// tree head as a C2SP checkpoint. Run this witness on a machine the operator does not
/// control: the collector submits every new checkpoint with a consistency proof, and the
/// witness cosigns it only if the log's key signed it and it extends the last checkpoint the
/// witness cosigned. Auditors who require the witness's cosignature on a checkpoint know the
/// operator cannot show them a history that differs from, or rolls back, what anyone else
/// was shown.
///
/// Start with `veu-witness keygen`, give the printed verifier key to the auditors, write a
/// configuration (see `veu-witness run --help`), then `veu-witness run`.
#[derive(Debug, Parser)]
#[command(name = "veu-witness", version = VERSION, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make the witness's Ed25519 key in a new file (mode 0600) and print its verifier key.
    ///
    /// The printed line, `<name>+<key ID>+<base64 key>`, is what auditors pin to check this
    /// witness's cosignatures (signature type 0x04, cosignature/v1). An existing file is never
    /// replaced.
    Keygen {
        /// The key file to create.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The witness's name, a schema-less URL such as `witness.example.org/veu`; no spaces
        /// or '+'.
        #[arg(long, value_name = "NAME")]
        name: String,
    },
    /// Print the verifier key of a key file.
    Vkey {
        /// The key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Run the witness until SIGTERM or SIGINT.
    ///
    /// The configuration is TOML; relative paths are taken from its directory:
    ///
    ///   listen = "0.0.0.0:7380"               # plain HTTP/1.1
    ///   name = "witness.example.org/veu"      # the key's name, as keygen wrote it
    ///   key_file = "witness.key"              # made by `veu-witness keygen`, mode 0600
    ///   state_dir = "/var/lib/veu-witness"    # each log's latest cosigned checkpoint
    ///   # log_level = "info"  log_format = "text" (or "json")
    ///
    ///   [[logs]]                              # one table per log witnessed
    ///   origin = "veu-attest.example/log/4f2c0a17"
    ///   keys = ["<the log's verifier key>"]   # or its 64 hex digits (the collector's log.pub)
    ///
    ///   [limits]                              # optional; these are the defaults
    ///   max_body = "64KiB"
    ///   read_timeout = "10s"
    ///   max_connections = 256
    ///   connection_lifetime = "5m"
    ///   shutdown_grace = "5s"
    ///
    /// Prints `veu-witness listening on <address>` on stdout once it serves. A bad
    /// configuration or key file exits with status 78.
    #[command(verbatim_doc_comment)]
    Run {
        /// Configuration file (TOML).
        #[arg(
            long,
            value_name = "FILE",
            default_value = "/etc/veu-witness/witness.toml"
        )]
        config: PathBuf,
    },
    /// Check a configuration file and the key file it names (exit status 78 on errors).
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(
            long,
            value_name = "FILE",
            default_value = "/etc/veu-witness/witness.toml"
        )]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Keygen { out, name } => {
            let name = match KeyName::new(name) {
                Ok(name) => name,
                Err(error) => return fail(&format!("--name: {error}")),
            };
            match keyfile::generate(&out, name) {
                Ok(vkey) => {
                    println!("{vkey}");
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error.to_string()),
            }
        }
        Command::Vkey { key } => match keyfile::read(&key) {
            Ok(key) => {
                println!("{}", key.verifier_key());
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error.to_string()),
        },
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(_) => {
                println!("{}: valid", config.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("error: {errors}");
                ExitCode::from(proto_config::EXIT_CONFIG)
            }
        },
        Command::Run { config } => {
            if let Err(error) = proto_config::parent::exit_with_parent() {
                return fail(&error);
            }
            let (config, key) = match Config::load(&config) {
                Ok(loaded) => loaded,
                Err(errors) => {
                    eprintln!("error: {errors}");
                    return ExitCode::from(proto_config::EXIT_CONFIG);
                }
            };
            veu_daemon_kit::init_logging(config.log_level, config.log_json);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => return fail(&format!("cannot start the runtime: {error}")),
            };
            let result = runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(veu_daemon_kit::cancel_on_signal(
                    "witness",
                    Hangup::Default,
                    shutdown.clone(),
                ));
                daemon::run(config, key, shutdown, |address| {
                    // The one line on stdout: where to reach the witness (port 0 picks one).
                    println!("veu-witness listening on {address}");
                })
                .await
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(&format!("{:#}", anyhow::Error::from(error))),
            }
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
