//! Location from round trips with real processes on loopback: three `veu-landmark`s at chosen
//! coordinates (Kassel, Frankfurt, Singapore), user-space delay relays standing in for the
//! distance between a host and a landmark, real agents answering with their attestation keys,
//! and the collector judging. What the operator and the auditor observe is checked:
//! `veuctl status` and the offline verifier's answer on the exported bundle.
//!
//! - an honest host in Kassel, measured by its own agent daemon through the Kassel landmark:
//!   location-verified;
//! - a host that claims Frankfurt but sits in "Johor": the relay adds Johor–Frankfurt latency
//!   on the Frankfurt landmark's path, and the Singapore landmark gets a fast answer: not
//!   verified, and inconsistent because Singapore's disk excludes Frankfurt;
//! - a host in Kassel measured only by distant landmarks: unverified, never wrongly verified;
//! - a landmark with a valid landmark certificate that is not in the registry: refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use collector_testkit::{DelayRelay, one_way_for_km};
use proto_evidence::Coordinates;
use serde_json::Value;
use veu_fleet::Process;

use crate::support::{Agent, Collector, binary, daemon, eventually, free_port, ok};

const KASSEL: (f64, f64) = (51.3127, 9.4797);
const FRANKFURT: (f64, f64) = (50.1109, 8.6821);
const SINGAPORE: (f64, f64) = (1.3521, 103.8198);
const JOHOR: (f64, f64) = (1.4927, 103.7414);

fn km((a_lat, a_lon): (f64, f64), (b_lat, b_lon): (f64, f64)) -> f64 {
    proto_location::distance_km(
        Coordinates::from_degrees(a_lat, a_lon).unwrap(),
        Coordinates::from_degrees(b_lat, b_lon).unwrap(),
    )
}

/// A `veu-landmark` process, killed when dropped.
struct Landmark {
    port: u16,
    dir: PathBuf,
    _process: Process,
}

impl Landmark {
    /// Makes the key of landmark `id` at `place` in `dir`; returns its registry entry.
    fn keygen(dir: &Path, id: &str, (lat, lon): (f64, f64)) -> String {
        ok(&Command::new(binary("veu-landmark"))
            .args(["keygen", "--id", id, "--operator", "Test Audit"])
            .args([
                "--latitude",
                &lat.to_string(),
                "--longitude",
                &lon.to_string(),
            ])
            .arg("--key")
            .arg(dir.join(format!("{id}.key")))
            .output()
            .unwrap())
    }

    /// Issues its landmark certificate from the collector's CA and starts it.
    fn start(collector: &Collector, dir: &Path, id: &str, (lat, lon): (f64, f64)) -> Self {
        ok(&Command::new(binary("veu-collector"))
            .args(["pki", "issue", "--role", "landmark", "--name", id, "--dir"])
            .arg(collector.dir.join("pki"))
            .arg("--out")
            .arg(dir)
            .output()
            .unwrap());
        let port = free_port();
        let config = dir.join(format!("{id}.toml"));
        std::fs::write(
            &config,
            format!(
                "id = \"{id}\"\nlatitude = {lat}\nlongitude = {lon}\nkey = \"{id}.key\"\n\
                 listen = \"127.0.0.1:{port}\"\nrounds = 5\n\
                 [collector]\nendpoint = \"https://127.0.0.1:{}\"\nca = \"{}\"\n\
                 certificate = \"landmark-{id}.pem\"\nkey = \"landmark-{id}.key\"\n",
                collector.port,
                collector.dir.join("pki/ca.pem").display()
            ),
        )
        .unwrap();
        let process = daemon(
            "veu-landmark",
            &config,
            &dir.join(format!("{id}.log")),
            port,
        );
        Self {
            port,
            dir: dir.to_path_buf(),
            _process: process,
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn log(&self, id: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{id}.log"))).unwrap_or_default()
    }
}

/// Delay relays on a runtime of their own (the scenario itself blocks on processes).
struct Relays {
    runtime: tokio::runtime::Runtime,
    relays: Vec<DelayRelay>,
}

impl Relays {
    fn new() -> Self {
        Self {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            relays: Vec::new(),
        }
    }

    /// A relay to `target` adding the fibre latency of `km`; returns its address.
    fn add(&mut self, target: SocketAddr, km: f64) -> String {
        let relay = self
            .runtime
            .block_on(DelayRelay::start(target, one_way_for_km(km)))
            .unwrap();
        let addr = relay.addr().to_string();
        self.relays.push(relay);
        addr
    }
}

/// `veu-agent probe` of `agent` through `landmark` (host:port): the landmark measures the
/// agent's key and submits the statement.
fn probe(agent: &Agent, landmark: &str) -> String {
    ok(&Command::new(binary("veu-agent"))
        .args(["probe", "--config", "agent.toml", "--landmark", landmark])
        .current_dir(agent.dir())
        .output()
        .unwrap())
}

fn status(collector: &Collector) -> Value {
    serde_json::from_str(&ok(&collector.veuctl(&["status", "--format", "json"]))).unwrap()
}

#[test]
fn landmarks_verify_an_honest_host_and_expose_one_claiming_frankfurt_from_johor() {
    let dir = tempfile::tempdir().unwrap();
    let stations = dir.path().join("landmarks");
    std::fs::create_dir_all(&stations).unwrap();
    // The registry the collector trusts: three landmarks; rogue-1 has a key but no entry.
    let registry: String = [
        ("kas-1", KASSEL),
        ("fra-1", FRANKFURT),
        ("sin-1", SINGAPORE),
    ]
    .iter()
    .map(|(id, place)| Landmark::keygen(&stations, id, *place))
    .collect::<Vec<_>>()
    .join("\n");
    Landmark::keygen(&stations, "rogue-1", KASSEL);
    std::fs::write(dir.path().join("landmarks.toml"), &registry).unwrap();
    std::fs::write(
        dir.path().join("sites.toml"),
        format!(
            "[[site]]\nid = \"us-va-1\"\ncountry = \"US\"\n\
             [[site]]\nid = \"de-kas-1\"\ncountry = \"DE\"\nlatitude = {}\nlongitude = {}\n\
             [[site]]\nid = \"de-fra-1\"\ncountry = \"DE\"\nlatitude = {}\nlongitude = {}\n",
            KASSEL.0, KASSEL.1, FRANKFURT.0, FRANKFURT.1
        ),
    )
    .unwrap();
    // A German company's policy that counts Tier-1 compute only where landmarks verify it.
    let simulated = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/policies/uveu-2025-us-simulated.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        format!(
            "{}\n[location]\nrequire_for_tier1 = true\n",
            simulated
                .replace("id = \"uveu-2025-us-simulated\"", "id = \"de-located\"")
                .replace("headquarters = \"US\"", "headquarters = \"DE\"")
        ),
    )
    .unwrap();
    let collector = Collector::start_with(
        dir.path(),
        None,
        "\n[location]\nlandmarks = \"landmarks.toml\"\n",
    );
    let kas = Landmark::start(&collector, &stations, "kas-1", KASSEL);
    let fra = Landmark::start(&collector, &stations, "fra-1", FRANKFURT);
    let sin = Landmark::start(&collector, &stations, "sin-1", SINGAPORE);
    let rogue = Landmark::start(&collector, &stations, "rogue-1", KASSEL);
    let mut relays = Relays::new();
    // Johor to Frankfurt, and Kassel to Singapore, in fibre.
    let fra_from_johor = relays.add(fra.addr(), km(JOHOR, FRANKFURT));
    let sin_from_kassel = relays.add(sin.addr(), km(KASSEL, SINGAPORE));

    // The honest host's own daemon probes the Kassel landmark (first probe within 30 s).
    let honest = Agent::start_configured(
        &collector,
        "de-honest",
        "de-kas-1",
        1000,
        &format!("[location]\nlandmarks = [\"{}\"]\n", kas.addr()),
    );
    let johor = Agent::start_configured(&collector, "de-johor", "de-fra-1", 1000, "");
    let far = Agent::start_configured(&collector, "de-far", "de-kas-1", 1000, "");
    eventually(Duration::from_secs(30), "three hosts counted", || {
        status(&collector)["hosts"].as_u64() == Some(3)
    });

    // Johor: slow through Frankfurt's relay, fast to Singapore.
    let slow = probe(&johor, &fra_from_johor);
    let rtt_ms: f64 = slow
        .split("min RTT ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no round trip in {slow:?}"));
    // Twice the fibre time from Johor to Frankfurt (10,270 km): about 100 ms.
    assert!(rtt_ms >= 2.0 * km(JOHOR, FRANKFURT) / 204.0, "{slow}");
    probe(&johor, &sin.addr().to_string());
    // Kassel, measured only from Singapore.
    probe(&far, &sin_from_kassel);
    // A landmark nobody registered measures the honest host: the collector refuses it.
    probe(&honest, &rogue.addr().to_string());

    eventually(
        Duration::from_secs(60),
        "the honest host verified and the Johor host inconsistent",
        || {
            let location = &status(&collector)["location"];
            location["verified_hosts"] == 1
                && location["inconsistent_hosts"] == serde_json::json!(["de-johor"])
        },
    );
    let status = status(&collector);
    let location = &status["location"];
    let per_host = status["last_known"]["total_tpp"].as_u64().unwrap() / 3;
    assert_eq!(location["verified_tpp"], per_host, "{location}");
    assert_eq!(location["countries"][0]["country"], "DE");
    assert_eq!(location["countries"][0]["verified_tpp"], per_host);
    eventually(
        Duration::from_secs(20),
        "the rogue landmark refused",
        || rogue.log("rogue-1").contains("not enrolled"),
    );
    // Three German hosts, all declared in Tier 1; only the honest one is verified, so a third
    // of the compute meets the 75 % minimum and the rest only dilutes it.
    assert_eq!(status["last_known"]["verdict"], "not_compliant", "{status}");
    assert_eq!(
        status["last_known"]["violations"][0]["rule"], "tier1_min_share",
        "{status}"
    );
    assert_eq!(status["last_known"]["tier1_tpp"], per_host);
    assert_eq!(status["last_known"]["tier1_unlocated_tpp"], 2 * per_host);
    assert_eq!(location["tier1_tpp"], 3 * per_host);
    assert_eq!(location["tier1_verified_tpp"], per_host);
    let table = collector.veuctl(&["status", "--check"]);
    assert!(
        !table.status.success(),
        "--check passes a non-compliant fleet"
    );
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.contains("LOCATION INCONSISTENT: de-johor"), "{table}");
    assert!(
        table.contains("Tier-1 share (location-verified)"),
        "{table}"
    );
    assert!(table.contains("is not location-verified"), "{table}");
    // Each host's verdict and what it rests on, for the operator.
    let hosts: Value = serde_json::from_str(&ok(
        &collector.veuctl(&["audit", "hosts", "--format", "json"])
    ))
    .unwrap();
    let host = |id: &str| {
        hosts
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(host("de-honest")["location"], "verified");
    assert_eq!(host("de-far")["location"], "unverified");
    assert_eq!(host("de-johor")["location"], "inconsistent");
    assert!(
        host("de-johor")["location_detail"]
            .as_str()
            .unwrap()
            .contains("sin-1"),
        "{}",
        host("de-johor")
    );

    // The month's report so far shows the location-verified share and the inconsistent host.
    let (month, _, _) = crate::support::month_of(crate::support::now_ms());
    let report_dir = dir.path().join("report");
    ok(&collector.veuctl(&[
        "report",
        "--month",
        &month,
        "--out",
        report_dir.to_str().unwrap(),
        "--log-key",
        collector.log_pub().to_str().unwrap(),
    ]));
    let report: Value =
        serde_json::from_slice(&std::fs::read(report_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        report["end_of_month"]["location_verified_tpp"], per_host,
        "{report}"
    );
    assert_eq!(
        report["location"]["inconsistent"][0]["host_id"], "de-johor",
        "{}",
        report["location"]
    );
    assert_eq!(report["limits"]["tier1_requires_location"], true);
    assert_eq!(report["verdict"]["at_end"], "not_compliant", "{report}");
    assert_eq!(report["end_of_month"]["tier1_unlocated_tpp"], 2 * per_host);
    let html = std::fs::read_to_string(report_dir.join("report.html")).unwrap();
    assert!(
        html.contains("de-johor"),
        "the HTML report names the inconsistent host"
    );

    // The auditor recomputes the same from the exported bundle, offline, report included.
    let bundle = dir.path().join("bundle");
    collector.export_month(&bundle);
    let report_json = report_dir.join("report.json");
    let (code, out) = collector.verify(&bundle, &["--report", report_json.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PASS"), "{out}");
    let (code, out) = collector.verify(&bundle, &["--format", "json"]);
    assert_eq!(code, 0, "{out}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    let verdicts: Vec<(String, String)> = answer["location"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_owned(),
                h["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("de-far".to_owned(), "unverified".to_owned()),
            ("de-honest".to_owned(), "verified".to_owned()),
            ("de-johor".to_owned(), "inconsistent".to_owned()),
        ]
    );
    assert_eq!(answer["location"]["verified_tpp"], per_host);
    let (code, table) = collector.verify(&bundle, &[]);
    assert_eq!(code, 0);
    assert!(
        table.contains("LOCATION INCONSISTENT: host de-johor"),
        "{table}"
    );

    // An auditor who trusts only the Singapore landmark: nothing is verified on the
    // operator's Kassel landmark, and the Johor host is still exposed.
    let pinned = dir.path().join("auditor-landmarks.toml");
    let sin_entry = registry
        .split("[[landmark]]")
        .find(|entry| entry.contains("\"sin-1\""))
        .unwrap();
    std::fs::write(&pinned, format!("[[landmark]]{sin_entry}")).unwrap();
    let (code, out) = collector.verify(
        &bundle,
        &["--format", "json", "--landmarks", pinned.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["location"]["landmarks"], "pinned");
    assert_eq!(answer["location"]["verified_tpp"], 0);
    drop((kas, fra, sin, honest, johor, far));
}
