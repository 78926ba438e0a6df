//! `veuctl demo`: the whole pipeline on one machine in about a minute. A collector on the
//! embedded SQLite store with a development PKI, six real `veu-agent` processes on fake-NVML
//! fixtures in five countries, the live distribution, compute moved until a Tier-2 country
//! crosses 7 % and the violation caught, a signed monthly report, and an evidence bundle
//! verified offline, with the log's checkpoints cosigned by a `veu-witness` standing in for the
//! regulator's. It runs the same binaries and commands an operator and an auditor would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use collector_client::{Admin, CollectorStatus};
use veu_daemon_kit::{Hangup, Signals};

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

/// Processes the demo started. They are stopped when the demo ends or fails, and when veuctl
/// gets SIGINT, SIGTERM or SIGHUP (`on_signals`); each is also told to end with veuctl however
/// veuctl ends, SIGKILL included (`VEU_EXIT_WITH_PARENT`). They stay in veuctl's process
/// group, so Ctrl-C in the terminal reaches them too.
#[derive(Clone, Default)]
struct Processes(Arc<Mutex<Vec<(String, Child)>>>);

impl Processes {
    /// Starts `command` as one of the demo's processes.
    fn spawn(&self, name: &str, command: &mut Command) -> anyhow::Result<()> {
        let child = command
            .env(
                proto_config::parent::VARIABLE,
                std::process::id().to_string(),
            )
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.lock().push((name.to_owned(), child));
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Child)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Each process's name and id.
    fn ids(&self) -> Vec<(String, u32)> {
        self.lock()
            .iter()
            .map(|(name, child)| (name.clone(), child.id()))
            .collect()
    }

    /// The first process that has ended, with how.
    fn ended(&self) -> Option<(String, std::process::ExitStatus)> {
        self.lock().iter_mut().find_map(|(name, child)| {
            child
                .try_wait()
                .ok()
                .flatten()
                .map(|status| (name.clone(), status))
        })
    }

    /// SIGTERM to every process (agents drain, the collector closes its store), SIGKILL to
    /// any still running 5 s later; waits for all.
    fn stop(&self) {
        let mut children = self.lock();
        for (_, child) in children.iter() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(child),
                rustix::process::Signal::TERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, child) in children.iter_mut() {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        children.clear();
    }
}

/// Stops the processes when the demo returns, however it returns.
struct StopOnDrop(Processes);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
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
    let _stop = StopOnDrop(processes.clone());
    on_signals(processes.clone(), out.clone())?;

    step.next("a collector with a development PKI on the embedded SQLite store");
    let pki = out.join("pki");
    run_ok(
        Command::new(&bin.collector)
            .args(["pki", "init", "--server-name", "127.0.0.1", "--dir"])
            .arg(&pki),
        "veu-collector pki init",
    )?;
    // Three distinct free ports (the collector's, unless given, the witness's and the
    // metrics'), all held until each is chosen so that none is handed out twice.
    let [free, witness_port, metrics_port] = free_ports(args.port)?;
    let port = match args.port {
        0 => free,
        port => port,
    };
    let url = format!("https://127.0.0.1:{port}");
    // The regulator's witness: its key first, so that the collector is configured with it.
    let witness_dir = out.join("witness");
    std::fs::create_dir_all(&witness_dir)?;
    let keygen = run_ok(
        Command::new(&bin.witness)
            .args(["keygen", "--name", "witness.regulator.demo", "--out"])
            .arg(witness_dir.join("witness.key")),
        "veu-witness keygen",
    )?;
    let witness_key = String::from_utf8_lossy(&keygen.stdout).trim().to_owned();
    let collector_dir = out.join("collector");
    std::fs::create_dir_all(&collector_dir)?;
    std::fs::write(collector_dir.join("sites.toml"), SITES)?;
    // Fake NVML marks evidence simulated; this policy (the 2025 rule) accepts it.
    std::fs::write(
        collector_dir.join("policy.toml"),
        include_str!("../../../deploy/policies/uveu-2025-us-simulated.toml"),
    )?;
    std::fs::write(
        collector_dir.join("collector.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\nsites = \"sites.toml\"\n\n\
             [tls]\ncertificate = \"../pki/server.pem\"\nkey = \"../pki/server.key\"\nclient_ca = \"../pki/ca.pem\"\n\n\
             [enrollment]\nca_dir = \"../pki\"\n\n[rules]\npolicy = \"policy.toml\"\n\n\
             [ingest]\nfreshness_window = \"{}s\"\n\n[report]\norganisation = \"{ORGANISATION}\"\n\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n\
             [audit]\ntree_head_every = \"5s\"\norigin = \"{ORIGIN}\"\n\n\
             [[audit.witnesses]]\nurl = \"http://127.0.0.1:{witness_port}\"\nkey = \"{witness_key}\"\n",
            args.interval * 5
        ),
    )?;
    let log = std::fs::File::create(collector_dir.join("collector.log"))?;
    processes.spawn(
        "veu-collector",
        Command::new(&bin.collector)
            .arg("run")
            .arg("--config")
            .arg(collector_dir.join("collector.toml"))
            .stdout(Stdio::null())
            .stderr(log),
    )?;
    wait_listening(port, &collector_dir.join("collector.log"))?;
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
    std::fs::write(
        witness_dir.join("witness.toml"),
        format!(
            "listen = \"127.0.0.1:{witness_port}\"\nname = \"witness.regulator.demo\"\n\
             key_file = \"witness.key\"\nstate_dir = \"state\"\n\n\
             [[logs]]\norigin = \"{ORIGIN}\"\nkeys = [\"{}\"]\n",
            log_public_key.trim()
        ),
    )?;
    let log = std::fs::File::create(witness_dir.join("witness.log"))?;
    processes.spawn(
        "veu-witness",
        Command::new(&bin.witness)
            .arg("run")
            .arg("--config")
            .arg(witness_dir.join("witness.toml"))
            .stdout(Stdio::null())
            .stderr(log),
    )?;
    wait_listening(witness_port, &witness_dir.join("witness.log"))?;
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
        let fixture = dir.join("nvml.json");
        write_fixture(host.fixture, &fixture, host.id)?;
        let config = dir.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "host_id = \"{}\"\nsite_id = \"{}\"\nstate_dir = \"state\"\n\n\
                 [attestation]\ninterval = \"{}s\"\njitter_percent = 10\nwatch_interval = \"500ms\"\n\n\
                 [nvml]\nlibrary = \"{}\"\n\n\
                 [collector]\nendpoint = \"{url}\"\nserver_name = \"127.0.0.1\"\nca = \"{}\"\n\
                 certificate = \"tls/agent.pem\"\nkey = \"tls/agent.key\"\n",
                host.id,
                host.site,
                args.interval,
                bin.fake_nvml.display(),
                pki.join("ca.pem").display()
            ),
        )?;
        let token = enroll_token(&remote, host.site)?;
        run_ok(
            Command::new(&bin.agent)
                .args(["enroll", "--config"])
                .arg(&config)
                .args(["--token", &token])
                .current_dir(&dir),
            &format!("veu-agent enroll ({})", host.id),
        )?;
        println!(
            "  {:<10} at {:<9} {}",
            host.id,
            host.site,
            describe_fixture(&fixture)
        );
    }

    step.next("starting the agents (real veu-agent processes on the fake NVML library)");
    for host in &HOSTS {
        let dir = agents_dir.join(host.id);
        let log = std::fs::File::create(dir.join("agent.log"))?;
        processes.spawn(
            &format!("veu-agent {}", host.id),
            Command::new(&bin.agent)
                .args(["run", "--config"])
                .arg(dir.join("agent.toml"))
                .env("VEU_FAKE_NVML_FIXTURE", dir.join("nvml.json"))
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(log),
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
    let my = agents_dir.join("my-gpu-01").join("nvml.json");
    write_fixture(A100X8, &my, "my-gpu-01-rebuilt")?;
    println!("  my-gpu-01 now shows {}", describe_fixture(&my));
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
    let month = current_month();
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
    let (from, to) = month_bounds(&month);
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
        for (name, id) in processes.ids() {
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
            if let Some((name, status)) = processes.ended() {
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
struct Binaries {
    collector: PathBuf,
    witness: PathBuf,
    agent: PathBuf,
    veuctl: PathBuf,
    fake_nvml: PathBuf,
}

fn binaries() -> anyhow::Result<Binaries> {
    let veuctl = std::env::current_exe().context("cannot find this veuctl")?;
    let dir = veuctl
        .parent()
        .ok_or_else(|| anyhow!("veuctl has no directory"))?
        .to_path_buf();
    // `cargo build` puts the fake NVML library beside the binaries; `cargo test` leaves it in
    // deps/, where it is built as a test dependency.
    let fake_nvml = [
        dir.join("libveu_fake_nvml.so"),
        dir.join("deps/libveu_fake_nvml.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| dir.join("libveu_fake_nvml.so"));
    let found = Binaries {
        collector: dir.join("veu-collector"),
        witness: dir.join("veu-witness"),
        agent: dir.join("veu-agent"),
        fake_nvml,
        veuctl,
    };
    for path in [
        &found.collector,
        &found.witness,
        &found.agent,
        &found.fake_nvml,
    ] {
        if !path.exists() {
            bail!(
                "{} is missing: the demo runs the binaries beside this veuctl ({}); build them \
                 with `cargo build --workspace`, or copy veu-collector, veu-agent, veu-witness \
                 and libveu_fake_nvml.so next to veuctl",
                path.display(),
                dir.display()
            );
        }
    }
    Ok(found)
}

/// Three distinct free ports on 127.0.0.1, none of them `taken`: bound together, so that the
/// system cannot hand out one twice, then released for the daemons to bind.
fn free_ports(taken: u16) -> anyhow::Result<[u16; 3]> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < 3 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        if port != taken {
            ports.push(port);
        }
        held.push(listener);
    }
    Ok([ports[0], ports[1], ports[2]])
}

fn run_ok(command: &mut Command, what: &str) -> anyhow::Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
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

fn wait_listening(port: u16, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!(
                "the collector did not start; its log ({}):\n{}",
                log.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Polls `probe` until it returns a value, or fails after `limit`.
fn wait_for<T>(
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe()? {
            return Ok(found);
        }
        if Instant::now() > deadline {
            bail!("gave up waiting for {what} after {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
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

/// Writes a fixture, giving every GPU a UUID and serial of this host's own (the same UUID on
/// two hosts is a conflict the collector flags).
fn write_fixture(text: &str, to: &Path, host: &str) -> anyhow::Result<()> {
    let mut fixture: serde_json::Value =
        serde_json::from_str(text).context("a compiled-in NVML fixture")?;
    let salt: u32 = host
        .bytes()
        .fold(17u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    if let Some(devices) = fixture.get_mut("devices").and_then(|d| d.as_array_mut()) {
        for (index, device) in devices.iter_mut().enumerate() {
            device["uuid"] = format!("GPU-{salt:08x}-demo-{host}-{index:04}").into();
            device["serial"] = format!("{salt}{index:04}").into();
        }
    }
    // Written whole and renamed, so the library never reads half a file.
    let partial = to.with_extension("json.partial");
    std::fs::write(&partial, serde_json::to_string_pretty(&fixture)?)?;
    std::fs::rename(&partial, to)?;
    Ok(())
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

fn current_month() -> String {
    collector_report::month::format_date(crate::time::now_ms())
        .chars()
        .take(7)
        .collect()
}

fn month_bounds(month: &str) -> (String, String) {
    match month.parse::<collector_report::Month>() {
        Ok(month) => (month.start_ms().to_string(), month.end_ms().to_string()),
        Err(_) => ("0".into(), i64::MAX.to_string()),
    }
}
