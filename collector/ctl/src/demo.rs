//! `veuctl demo`: the whole pipeline on one machine in about a minute. A collector on the
//! embedded SQLite store with a development PKI, six real `veu-agent` processes on fake-NVML
//! fixtures in five countries, the live distribution, compute moved until a Tier-2 country
//! crosses 7 % and the violation caught, a signed monthly report, and an evidence bundle
//! verified offline, with the log's checkpoints cosigned by a `veu-witness` standing in for the
//! regulator's. It runs the same binaries and commands an operator and an auditor would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use collector_client::{Admin, CollectorStatus};
use veu_daemon_kit::{Hangup, Signals};
use veu_fleet::agent::{self, AgentConfig};
use veu_fleet::binaries::{self, Binaries};
use veu_fleet::collector::{self, CollectorConfig};
use veu_fleet::witness::{self, WitnessConfig};
use veu_fleet::{Group, STARTUP, run_ok, wait_listening};

use crate::Failure;
use crate::remote::{CollectorArgs, block_on};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Directory for everything the demo writes (PKI, databases, configs, logs, report,
    /// evidence). A directory an earlier demo wrote is replaced; any other must be empty.
    #[arg(long, value_name = "DIR", default_value = "target/veu-demo")]
    out: PathBuf,
    /// Port of the demo collector (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    port: u16,
    /// Seconds between each agent's attestations.
    #[arg(long, value_name = "SECONDS", default_value_t = 2)]
    interval: u64,
    /// Leave the collector, the witness and the agents running at the end, and print the
    /// environment that points veuctl at them; Ctrl-C, SIGTERM or SIGHUP stops them all.
    #[arg(long)]
    keep_running: bool,
}

/// The demo log's origin: the first line of its checkpoints.
const ORIGIN: &str = "veu-attest.demo/log";

/// The regulator's witness, as its key names it.
const WITNESS_NAME: &str = "witness.regulator.demo";

/// The organisation the demo's report names.
const ORGANISATION: &str = "Example Cloud Inc. (demo)";

/// Marks a directory the demo wrote, so the next demo may replace it.
const MARKER: &str = ".veu-demo";

/// One simulated host: where it is and which fixture its fake NVML library reads.
struct Host {
    id: &'static str,
    site: &'static str,
    /// The NVML fixture's text.
    fixture: &'static str,
}

const HOSTS: [Host; 6] = [
    Host {
        id: "us-gpu-01",
        site: "us-va-1",
        fixture: DGX_H100,
    },
    Host {
        id: "us-gpu-02",
        site: "us-tx-1",
        fixture: HGX_H200,
    },
    Host {
        id: "de-gpu-01",
        site: "de-fra-1",
        fixture: DGX_H100,
    },
    Host {
        id: "jp-gpu-01",
        site: "jp-tyo-1",
        fixture: A100X8,
    },
    Host {
        id: "my-gpu-01",
        site: "my-jhb-1",
        fixture: L40S_X4,
    },
    Host {
        id: "in-gpu-01",
        site: "in-mum-1",
        fixture: L40S_X4,
    },
];

const SITES: &str = "\
[[site]]\nid = \"us-va-1\"\ncountry = \"US\"\nname = \"Ashburn, Virginia\"\n\n\
[[site]]\nid = \"us-tx-1\"\ncountry = \"US\"\nname = \"Dallas, Texas\"\n\n\
[[site]]\nid = \"de-fra-1\"\ncountry = \"DE\"\nname = \"Frankfurt\"\n\n\
[[site]]\nid = \"jp-tyo-1\"\ncountry = \"JP\"\nname = \"Tokyo\"\n\n\
[[site]]\nid = \"my-jhb-1\"\ncountry = \"MY\"\nname = \"Johor Bahru\"\n\n\
[[site]]\nid = \"in-mum-1\"\ncountry = \"IN\"\nname = \"Mumbai\"\n";

/// How long the demo's processes are given to end after SIGTERM (agents drain, the collector
/// closes its store) before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// Processes the demo started. They are stopped when the demo ends or fails, and when veuctl
/// gets SIGINT, SIGTERM or SIGHUP (`on_signals`); each is also told to end with veuctl however
/// veuctl ends, SIGKILL included (`VEU_EXIT_WITH_PARENT`). They stay in veuctl's process
/// group, so Ctrl-C in the terminal reaches them too.
#[derive(Clone, Default)]
struct Processes(Group);

impl Processes {
    /// Starts `command` as one of the demo's processes, told to end with veuctl.
    fn spawn(&self, name: &str, command: &mut Command) -> anyhow::Result<()> {
        command.env(
            proto_config::parent::VARIABLE,
            std::process::id().to_string(),
        );
        Ok(self.0.spawn(name, command)?)
    }

    /// SIGTERM to every process, SIGKILL to any still running [`GRACE`] later; waits for all.
    fn stop(&self) {
        self.0.stop(GRACE);
    }
}

/// On SIGINT, SIGTERM or SIGHUP: stop every process, say so, and exit with 128 + the signal's
/// number, as a shell reports a process a signal ended.
fn on_signals(processes: Processes, out: PathBuf) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Registered here, before the demo starts anything, so no signal falls between.
    let mut signals = {
        let _entered = runtime.enter();
        Signals::install("demo", Hangup::Stops)?
    };
    std::thread::spawn(move || {
        let signal = runtime.block_on(signals.stop());
        processes.stop();
        println!(
            "\n{}: the collector, the witness and the agents are stopped; everything is in {}.",
            signal.name(),
            out.display()
        );
        std::process::exit(128 + signal.number());
    });
    Ok(())
}

pub fn run(args: &DemoArgs) -> Result<u8, Failure> {
    demo(args).map_err(|error| Failure { status: 1, error })?;
    Ok(0)
}

/// The steps the demo prints.
const STEPS: usize = 9;

struct Step {
    started: Instant,
    number: usize,
}

impl Step {
    fn next(&mut self, what: &str) {
        self.number += 1;
        println!(
            "\n[{}/{STEPS} {:>4.1}s] {what}",
            self.number,
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    let bin = binaries()?;
    let out = &args.out;
    if out.join(MARKER).exists() {
        std::fs::remove_dir_all(out)
            .with_context(|| format!("cannot remove the earlier demo in {}", out.display()))?;
    } else if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        bail!(
            "{} is not empty and not an earlier demo's; give another --out",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(
        out.join(MARKER),
        "written by veuctl demo; replaced by the next one\n",
    )?;
    let out = out.canonicalize()?;
    let mut step = Step {
        started: Instant::now(),
        number: 0,
    };
    let processes = Processes::default();
    let _stop = processes.0.stop_on_drop(GRACE);
    on_signals(processes.clone(), out.clone())?;

    step.next("a collector with a development PKI on the embedded SQLite store");
    let pki = out.join("pki");
    collector::pki_init(&bin.binaries, &pki)?;
    // Three distinct free ports (the collector's, unless given, the witness's and the
    // metrics'), all held until each is chosen so that none is handed out twice.
    let [free, witness_port, metrics_port] = veu_fleet::free_ports(&[args.port])?;
    let port = match args.port {
        0 => free,
        port => port,
    };
    let url = format!("https://127.0.0.1:{port}");
    // The regulator's witness: its key first, so that the collector is configured with it.
    let witness_dir = out.join("witness");
    std::fs::create_dir_all(&witness_dir)?;
    let witness_key = witness::keygen(
        &bin.binaries,
        WITNESS_NAME,
        &witness_dir.join("witness.key"),
    )?;
    let collector_dir = out.join("collector");
    std::fs::create_dir_all(&collector_dir)?;
    std::fs::write(collector_dir.join("sites.toml"), SITES)?;
    // Fake NVML marks evidence simulated; this policy (the 2025 rule) accepts it.
    std::fs::write(
        collector_dir.join("policy.toml"),
        include_str!("../../../deploy/policies/uveu-2025-us-simulated.toml"),
    )?;
    let config = CollectorConfig {
        sections: format!(
            "[ingest]\nfreshness_window = \"{}s\"\n\n[report]\norganisation = \"{ORGANISATION}\"\n\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n",
            args.interval * 5
        ),
        tree_head_every: "5s".to_owned(),
        audit: format!(
            "origin = \"{ORIGIN}\"\n\n\
             [[audit.witnesses]]\nurl = \"http://127.0.0.1:{witness_port}\"\nkey = \"{witness_key}\"\n"
        ),
        ..CollectorConfig::new(port, "../pki", "policy.toml")
    }
    .write(&collector_dir)?;
    let log = collector_dir.join("collector.log");
    processes.spawn(
        "veu-collector",
        &mut veu_fleet::daemon::run_command(&bin.collector, &config, &log)?,
    )?;
    wait_listening("veu-collector", port, STARTUP, &log)?;
    println!("  collector at {url}, state in {}", collector_dir.display());
    println!(
        "  log key (auditors pin it): {}",
        collector_dir.join("state/log.pub").display()
    );
    println!(
        "  metrics at http://127.0.0.1:{metrics_port}/metrics, the latest checkpoint at \
         http://127.0.0.1:{metrics_port}/checkpoint"
    );

    step.next("a witness outside the operator's control cosigns the log's checkpoints");
    let log_public_key = std::fs::read_to_string(collector_dir.join("state/log.pub"))
        .context("the collector wrote no log.pub")?;
    let config = WitnessConfig {
        port: witness_port,
        name: WITNESS_NAME.to_owned(),
        key_file: PathBuf::from("witness.key"),
        origin: ORIGIN.to_owned(),
        log_key: log_public_key,
    }
    .write(&witness_dir)?;
    let log = witness_dir.join("witness.log");
    processes.spawn(
        "veu-witness",
        &mut veu_fleet::daemon::run_command(&bin.witness, &config, &log)?,
    )?;
    wait_listening("veu-witness", witness_port, STARTUP, &log)?;
    println!("  witness at http://127.0.0.1:{witness_port}, its key (auditors pin it):");
    println!("  {witness_key}");

    let remote = CollectorArgs {
        collector: url.clone(),
        server_name: None,
        pki_dir: Some(pki.clone()),
        ca: None,
        cert: None,
        key: None,
    };

    step.next("enrolling six agents in five countries with one-time tokens");
    let agents_dir = out.join("agents");
    for host in &HOSTS {
        let dir = agents_dir.join(host.id);
        std::fs::create_dir_all(&dir)?;
        write_fixture(host.fixture, &dir, host.id)?;
        AgentConfig {
            host: host.id.to_owned(),
            site: host.site.to_owned(),
            interval: Duration::from_secs(args.interval),
            jitter_percent: 10,
            nvml_library: bin.fake_nvml.clone(),
            endpoint: url.clone(),
            ca: pki.join("ca.pem"),
            extra: String::new(),
        }
        .write(&dir)?;
        let token = enroll_token(&remote, host.site)?;
        agent::enroll(&bin.binaries, &dir, &token)?;
        println!(
            "  {:<10} at {:<9} {}",
            host.id,
            host.site,
            describe_fixture(&dir.join("nvml.json"))
        );
    }

    step.next("starting the agents (real veu-agent processes on the fake NVML library)");
    for host in &HOSTS {
        processes.spawn(
            &format!("veu-agent {}", host.id),
            &mut agent::run_command(&bin.binaries, &agents_dir.join(host.id))?,
        )?;
    }
    wait_for(Duration::from_secs(30), "every host attesting", || {
        let status = status(&remote)?;
        Ok((status.hosts as usize == HOSTS.len() && status.stale_hosts.is_empty()).then_some(()))
    })?;

    step.next("the live distribution (veuctl status)");
    print_command(&bin.veuctl, &["status"], &url, &pki)?;

    step.next("moving compute: my-gpu-01 in Malaysia (Tier 2) is rebuilt with 8 x A100");
    let moved_at = Instant::now();
    let my = agents_dir.join("my-gpu-01");
    write_fixture(A100X8, &my, "my-gpu-01-rebuilt")?;
    println!(
        "  my-gpu-01 now shows {}",
        describe_fixture(&my.join("nvml.json"))
    );
    let caught = wait_for(Duration::from_secs(30), "the violation", || {
        let status = status(&remote)?;
        let broken = status
            .last_known
            .as_ref()
            .is_some_and(|view| !view.violations.is_empty());
        Ok(broken.then_some(status))
    })?;
    let view = caught.last_known.unwrap_or_default();
    for violation in &view.violations {
        println!(
            "  VIOLATION caught {:.1} s after the change: {} {}",
            moved_at.elapsed().as_secs_f64(),
            violation.rule,
            violation.country
        );
    }
    print_command(&bin.veuctl, &["status"], &url, &pki)?;

    step.next("the signed monthly report");
    let this_month = veu_fleet::calendar::this_month()?;
    let month = this_month.to_string();
    let report_dir = out.join("report");
    let log_pub = collector_dir.join("state/log.pub");
    let log_pub_text = log_pub.display().to_string();
    let report_text = report_dir.display().to_string();
    print_command(
        &bin.veuctl,
        &[
            "report",
            "--month",
            &month,
            "--out",
            &report_text,
            "--log-key",
            &log_pub_text,
        ],
        &url,
        &pki,
    )?;
    println!(
        "  open {} in a browser",
        report_dir.join("report.html").display()
    );

    step.next("evidence export and offline verification (the log key and the witness's key)");
    let bundle = out.join("evidence");
    let bundle_text = bundle.display().to_string();
    let (from, to) = (
        this_month.start_ms().to_string(),
        this_month.end_ms().to_string(),
    );
    println!(
        "  $ veuctl evidence export --from {from} --to {to} --out {bundle_text}\n    \
         (again until the bundle's end head is one the witness cosigned after the report)"
    );
    let report_json = report_dir.join("report.json").display().to_string();
    let verify = [
        "verify",
        &bundle_text,
        "--log-key",
        &log_pub_text,
        "--witness-key",
        &witness_key,
        "--report",
        &report_json,
    ];
    // The bundle ends at the newest head the witness cosigned; it must be one signed after
    // the report was made, which takes the collector one or two `tree_head_every`.
    let export = [
        "evidence",
        "export",
        "--from",
        &from,
        "--to",
        &to,
        "--out",
        &bundle_text,
    ];
    wait_for(
        Duration::from_secs(60),
        "a cosigned head after the report",
        || {
            let exported = run_ok(
                Command::new(&bin.veuctl)
                    .args(export)
                    .env("VEU_COLLECTOR", &url)
                    .env("VEU_PKI_DIR", &pki),
                "veuctl evidence export",
            );
            let checked = Command::new(&bin.veuctl).args(verify).output();
            Ok(match (exported, checked) {
                (Ok(_), Ok(output)) if output.status.success() => Some(()),
                _ => None,
            })
        },
    )?;
    print_command(&bin.veuctl, &verify, &url, &pki)?;

    step.next(if args.keep_running {
        "running; Ctrl-C (or SIGTERM, SIGHUP) stops the collector, the witness and the agents"
    } else {
        "stopping the agents and the collector"
    });
    if args.keep_running {
        for (name, id) in processes.0.ids() {
            println!("  {name}: pid {id}");
        }
        println!(
            "  In another shell, veuctl reaches this collector with:\n\n    \
             export VEU_COLLECTOR={url} VEU_PKI_DIR={}\n    \
             {} status\n\n  \
             metrics: curl http://127.0.0.1:{metrics_port}/metrics; \
             checkpoint: curl http://127.0.0.1:{metrics_port}/checkpoint",
            pki.display(),
            bin.veuctl.display()
        );
        // Until a signal (`on_signals` stops everything and exits) or a process ends on its own.
        loop {
            if let Some((name, status)) = processes.0.ended() {
                bail!(
                    "{name} ended on its own ({status}); its log is in {}",
                    out.display()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    processes.stop();
    println!(
        "\nDone in {:.0} s. Everything is in {}: pki/, collector/ (config, state, log), \
         agents/<host>/ (config, key, spool, log), witness/ (config, key, state, log), report/, evidence/.",
        step.started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

/// The NVML fixtures the simulated hosts read, compiled in: the demo needs no checkout.
const DGX_H100: &str = include_str!("../../../tests/fixtures/nvml/dgx-h100.json");
const HGX_H200: &str = include_str!("../../../tests/fixtures/nvml/hgx-h200.json");
const A100X8: &str = include_str!("../../../tests/fixtures/nvml/a100x8.json");
const L40S_X4: &str = include_str!("../../../tests/fixtures/nvml/l40s-x4.json");

/// The binaries the demo runs, found beside this veuctl.
struct DemoBinaries {
    binaries: Binaries,
    collector: PathBuf,
    witness: PathBuf,
    veuctl: PathBuf,
    fake_nvml: PathBuf,
}

fn binaries() -> anyhow::Result<DemoBinaries> {
    let veuctl = std::env::current_exe().context("cannot find this veuctl")?;
    let binaries = Binaries::beside_current_exe()?;
    let found = |name: &str| {
        binaries.path(name).map_err(|_| {
            anyhow::anyhow!(
                "{} is missing: the demo runs the binaries beside this veuctl ({}); build them \
                 with `cargo build --workspace`, or copy veu-collector, veu-agent, veu-witness \
                 and libveu_fake_nvml.so next to veuctl",
                binaries.dir().join(name).display(),
                binaries.dir().display()
            )
        })
    };
    let collector = found(binaries::COLLECTOR)?;
    let witness = found(binaries::WITNESS)?;
    found(binaries::AGENT)?;
    let fake_nvml = found(binaries::FAKE_NVML)?;
    Ok(DemoBinaries {
        collector,
        witness,
        veuctl,
        fake_nvml,
        binaries,
    })
}

/// Runs `veuctl ARGS` against the demo collector and shows its output, indented.
fn print_command(veuctl: &Path, args: &[&str], url: &str, pki: &Path) -> anyhow::Result<()> {
    println!("  $ veuctl {}", args.join(" "));
    let output = Command::new(veuctl)
        .args(args)
        .env("VEU_COLLECTOR", url)
        .env("VEU_PKI_DIR", pki)
        .output()
        .context("cannot run veuctl")?;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        println!("    {line}");
    }
    if !output.status.success() {
        bail!(
            "veuctl {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Polls `probe` every 250 ms until it returns a value, or fails after `limit`.
fn wait_for<T>(
    limit: Duration,
    what: &str,
    probe: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    veu_fleet::wait_for(what, limit, Duration::from_millis(250), probe)
}

fn status(remote: &CollectorArgs) -> anyhow::Result<CollectorStatus> {
    block_on(async { Ok(Admin::new(remote.connect("admin").await?).status(0).await?) })
        .map_err(|failure| failure.error)
}

fn enroll_token(remote: &CollectorArgs, site: &str) -> anyhow::Result<String> {
    block_on(async {
        Ok(Admin::new(remote.connect("admin").await?)
            .enroll_token(site, 600, None)
            .await?)
    })
    .map_err(|failure| failure.error)
}

/// Writes a host's fixture into its directory, every GPU with a UUID and serial of `host`'s
/// own (the same UUID on two hosts is a conflict the collector flags).
fn write_fixture(text: &str, dir: &Path, host: &str) -> anyhow::Result<()> {
    let mut fixture: serde_json::Value =
        serde_json::from_str(text).context("a compiled-in NVML fixture")?;
    agent::own_gpus(&mut fixture, host);
    Ok(agent::write_fixture(dir, &fixture)?)
}

fn describe_fixture(path: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let Ok(fixture) = serde_json::from_str::<serde_json::Value>(&text) else {
        return String::new();
    };
    let devices = fixture["devices"].as_array().cloned().unwrap_or_default();
    let name = devices
        .first()
        .and_then(|d| d["name"].as_str())
        .unwrap_or("no GPU");
    format!("{} x {name}", devices.len())
}
