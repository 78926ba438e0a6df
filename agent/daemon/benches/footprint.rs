//! Agent footprint beside the Prometheus node exporter, measured in one run on this machine:
//! resident memory and CPU of `veu-agent run` at a 1 s and at the default 60 s interval on the
//! 8 x H100 fake-NVML fixture, of `prometheus-node-exporter` scraped every 15 s, and the time of
//! one enumeration of 8 GPUs.
//!
//! ```text
//! cargo bench -p agent-daemon --bench footprint
//! ```
//! `VEU_BENCH_SECONDS` sets the duration (default 180). Needs `prometheus-node-exporter`
//! (Debian package of that name) on the PATH.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Clock ticks per second for /proc/PID/stat (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

struct Process {
    name: String,
    child: Child,
    rss_kib: Vec<u64>,
    start_ticks: u64,
}

impl Process {
    fn sample(&mut self) {
        if let Some(rss) = rss_kib(self.child.id()) {
            self.rss_kib.push(rss);
        }
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

/// User plus system CPU ticks of a process.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scrape(port: u16, path: &str) {
    if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        );
        let mut body = Vec::new();
        let _ = stream.read_to_end(&mut body);
    }
}

fn agent(
    bin: &Path,
    library: &Path,
    fixture: &Path,
    dir: &Path,
    interval: &str,
    port: u16,
) -> Child {
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "host_id = \"bench-{interval}\"\nsite_id = \"us-va-1\"\nstate_dir = \"state\"\n\
             [attestation]\ninterval = \"{interval}\"\n\
             [nvml]\nlibrary = \"{}\"\n[log]\nlevel = \"warn\"\n\
             [metrics]\nlisten = \"127.0.0.1:{port}\"\n",
            library.display()
        ),
    )
    .unwrap();
    Command::new(bin)
        .args(["run", "--config"])
        .arg(&config)
        .env("VEU_FAKE_NVML_FIXTURE", fixture)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn main() {
    // `cargo bench` passes --bench; any other argument is a filter this bench ignores.
    let seconds: u64 = std::env::var("VEU_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_veu-agent"));
    // Built into deps/ as a dev-dependency of this bench.
    let library = bin.parent().unwrap().join("deps/libveu_fake_nvml.so");
    assert!(library.exists(), "{} is missing", library.display());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fixture = repo.join("tests/fixtures/nvml/dgx-h100.json");
    let exporter = which("prometheus-node-exporter").expect(
        "prometheus-node-exporter is not installed (apt-get install prometheus-node-exporter)",
    );

    // One enumeration of 8 GPUs, timed by the agent itself over 1,000 runs.
    let timing = Command::new(&bin)
        .args(["inventory", "--repeat", "1000", "--nvml-lib"])
        .arg(&library)
        .env("VEU_FAKE_NVML_FIXTURE", &fixture)
        .output()
        .unwrap();
    let enumeration = String::from_utf8_lossy(&timing.stderr).trim().to_owned();

    let fast_dir = tempfile::tempdir().unwrap();
    let slow_dir = tempfile::tempdir().unwrap();
    let (fast_port, slow_port, exporter_port) = (free_port(), free_port(), free_port());
    let mut processes = vec![
        (
            "veu-agent, 1 s interval",
            agent(&bin, &library, &fixture, fast_dir.path(), "1s", fast_port),
            fast_port,
            "/metrics",
        ),
        (
            "veu-agent, 60 s interval",
            agent(&bin, &library, &fixture, slow_dir.path(), "60s", slow_port),
            slow_port,
            "/metrics",
        ),
        (
            "prometheus-node-exporter",
            Command::new(exporter)
                .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
            exporter_port,
            "/metrics",
        ),
    ]
    .into_iter()
    .map(|(name, child, port, path)| {
        (
            Process {
                name: name.to_owned(),
                start_ticks: cpu_ticks(child.id()),
                child,
                rss_kib: Vec::new(),
            },
            port,
            path,
        )
    })
    .collect::<Vec<_>>();

    // Let every process start and settle before measuring.
    std::thread::sleep(Duration::from_secs(3));
    for (process, _, _) in &mut processes {
        process.start_ticks = cpu_ticks(process.child.id());
    }
    eprintln!("measuring for {seconds} s ...");
    let start = Instant::now();
    let mut next_scrape = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) {
        if Instant::now() >= next_scrape {
            // Scraped like a Prometheus server would, every 15 s: both sides pay for it.
            for (_, port, path) in &processes {
                scrape(*port, path);
            }
            next_scrape += Duration::from_secs(15);
        }
        for (process, _, _) in &mut processes {
            process.sample();
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let elapsed = start.elapsed().as_secs_f64();

    println!(
        "footprint over {elapsed:.0} s on this machine, 8 x H100 fake-NVML fixture, no collector connection"
    );
    println!(
        "{:<28} {:>12} {:>12} {:>16}",
        "process", "RSS max", "RSS mean", "CPU % of a core"
    );
    let mut results = Vec::new();
    for (process, _, _) in &mut processes {
        let ticks = cpu_ticks(process.child.id()).saturating_sub(process.start_ticks);
        let cpu_percent = 100.0 * ticks as f64 / TICKS_PER_SECOND / elapsed;
        let max = process.rss_kib.iter().copied().max().unwrap_or(0);
        let mean = process.rss_kib.iter().sum::<u64>() as f64 / process.rss_kib.len().max(1) as f64;
        println!(
            "{:<28} {:>8.1} MiB {:>8.1} MiB {:>15.3} %",
            process.name,
            max as f64 / 1024.0,
            mean / 1024.0,
            cpu_percent
        );
        results.push((max, cpu_percent));
        let _ = process.child.kill();
        let _ = process.child.wait();
    }
    println!("{enumeration}");
    let (agent_rss, exporter_rss) = (results[1].0 as f64, results[2].0 as f64);
    println!(
        "ratio: agent RSS / node exporter RSS = {:.2} (goal < 1); agent CPU at a 60 s interval = {:.3} % of a core (goal < 0.1 %)",
        agent_rss / exporter_rss,
        results[1].1
    );
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.exists())
}
