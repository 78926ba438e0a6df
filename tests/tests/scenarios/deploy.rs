//! `deploy/` as an operator uses it: the systemd units verify and keep the exposure scores the
//! README states, the Kubernetes manifests are well formed and refer only to what they define,
//! every alert is tested firing and quiet, and the rules and the dashboard name only metrics the
//! daemons export. promtool's checks are `#[ignore]`d like the other promtool tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::binary;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a tool the test needs, failing with how to install it when it is missing.
fn tool(name: &str, package: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(found, "{name} is required (apt-get install {package})");
    Command::new(name)
}

// ---------------------------------------------------------------------------------------------
// systemd

const UNITS: [(&str, &str); 4] = [
    ("veu-agent.service", "veu-agent"),
    ("veu-collector.service", "veu-collector"),
    // Run by parties other than the operator, on their own machines.
    ("veu-witness.service", "veu-witness"),
    ("veu-landmark.service", "veu-landmark"),
];

#[test]
fn systemd_units_verify_cleanly_and_keep_their_exposure_scores() {
    let readme = read("deploy/README.md");
    let dir = tempfile::tempdir().unwrap();
    for (unit, program) in UNITS {
        let source = read(&format!("deploy/systemd/{unit}"));
        let installed = format!("/usr/local/bin/{program}");
        let config = format!("/etc/{program}/{}.toml", &program["veu-".len()..]);
        assert!(
            source.contains(&format!("\nExecStart={installed} run --config {config}\n")),
            "{unit}: ExecStart"
        );
        // The flags ExecStart uses are the binary's.
        let help = Command::new(binary(program))
            .args(["run", "--help"])
            .output()
            .unwrap();
        assert!(text(&help).contains("--config <FILE>"), "{}", text(&help));
        for setting in [
            format!("User={program}"),
            format!("StateDirectory={program}"),
            format!("ConfigurationDirectory={program}"),
            "Restart=on-failure".to_owned(),
            "RestartPreventExitStatus=78".to_owned(),
            "CapabilityBoundingSet=\n".to_owned(),
            "SystemCallFilter=@system-service".to_owned(),
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX".to_owned(),
        ] {
            assert!(source.contains(&setting), "{unit} lacks {setting:?}");
        }
        assert!(
            !source.lines().any(|l| l.starts_with("DynamicUser=")),
            "{unit}: keys need a fixed owner"
        );

        // verify needs ExecStart's binary: the copy runs the one just built.
        let copy = dir.path().join(unit);
        let built = binary(program);
        std::fs::write(&copy, source.replace(&installed, built.to_str().unwrap())).unwrap();
        let verify = tool("systemd-analyze", "systemd")
            .args(["verify", "--man=no"])
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            verify.status.success() && text(&verify).trim().is_empty(),
            "systemd-analyze verify {unit}:\n{}",
            text(&verify)
        );

        let security = tool("systemd-analyze", "systemd")
            .args(["security", "--offline=yes"])
            .arg(&copy)
            .output()
            .unwrap();
        let report = text(&security);
        let measured = exposure(&report, unit);
        let stated = stated_exposure(&readme, unit);
        assert!(
            measured <= stated,
            "{unit}: exposure {measured} is above the {stated} deploy/README.md states:\n{report}"
        );
    }
}

/// "→ Overall exposure level for veu-agent.service: 1.4 OK 🙂"
fn exposure(report: &str, unit: &str) -> f64 {
    let marker = format!("Overall exposure level for {unit}: ");
    let rest = report
        .split(&marker)
        .nth(1)
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// The README's table row "| `veu-agent.service` | 1.4 OK | ...".
fn stated_exposure(readme: &str, unit: &str) -> f64 {
    let row = readme
        .lines()
        .find(|line| line.starts_with(&format!("| `{unit}` |")))
        .unwrap_or_else(|| panic!("deploy/README.md has no exposure row for {unit}"));
    row.split('|')
        .nth(2)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn sysusers_creates_the_users_the_units_run_as() {
    // veu.conf for the operator's machines; veu-witness.conf alone on the witness's machine,
    // veu-landmark.conf on the landmark's.
    let mut created = BTreeMap::new();
    for (file, users) in [
        ("veu.conf", &["veu-agent", "veu-collector"][..]),
        ("veu-witness.conf", &["veu-witness"][..]),
        ("veu-landmark.conf", &["veu-landmark"][..]),
    ] {
        let root = tempfile::tempdir().unwrap();
        let path = repo().join("deploy/systemd/sysusers.d").join(file);
        let output = tool("systemd-sysusers", "systemd")
            .arg("--dry-run")
            .arg(format!("--root={}", root.path().display()))
            .arg(path.canonicalize().unwrap())
            .output()
            .unwrap();
        let report = text(&output);
        assert!(output.status.success(), "{file}: {report}");
        for user in users {
            assert!(
                report.contains(&format!("Creating user '{user}'")),
                "{file}: {report}"
            );
            created.insert(*user, file);
        }
        assert_eq!(
            report.matches("Creating user '").count(),
            users.len(),
            "{file} creates only {users:?}: {report}"
        );
    }
    for (_, user) in UNITS {
        assert!(
            created.contains_key(user),
            "no sysusers.d file creates {user}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The witness's example configuration

#[test]
fn the_witness_example_passes_check_config_with_a_generated_key() {
    let example = read("deploy/witness/witness.toml");
    let value = |key: &str| {
        example
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{key} = ")))
            .map(unquote)
            .unwrap_or_else(|| panic!("deploy/witness/witness.toml has no {key}"))
    };
    let (name, key_file, state_dir) = (value("name"), value("key_file"), value("state_dir"));
    // Where the systemd unit keeps them.
    assert_eq!(key_file, "/var/lib/veu-witness/witness.key");
    assert_eq!(state_dir, "/var/lib/veu-witness/state");
    assert_eq!(listen_port(&example, ""), "7380");
    assert!(
        example.contains(&format!("veu-witness keygen --name {name} ")),
        "the keygen command in the comments names the configured name"
    );

    // The file as installed, with the key and state under a temporary directory instead.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("witness.key");
    let keygen = Command::new(binary("veu-witness"))
        .args(["keygen", "--name", &name, "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", text(&keygen));
    assert!(String::from_utf8_lossy(&keygen.stdout).starts_with(&format!("{name}+")));
    let config = dir.path().join("witness.toml");
    std::fs::write(
        &config,
        example
            .replace(&key_file, key.to_str().unwrap())
            .replace(&state_dir, dir.path().join("state").to_str().unwrap()),
    )
    .unwrap();
    let check = Command::new(binary("veu-witness"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success() && text(&check).contains("valid"),
        "veu-witness check-config deploy/witness/witness.toml:\n{}",
        text(&check)
    );

    // And a key under another name is refused, with the configuration's exit status.
    std::fs::remove_file(&key).unwrap();
    let other = Command::new(binary("veu-witness"))
        .args(["keygen", "--name", "someone.else/veu", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(other.status.success(), "{}", text(&other));
    let check = Command::new(binary("veu-witness"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(78), "{}", text(&check));
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

/// One YAML document: its lines without comments or blank lines.
struct Document {
    file: String,
    lines: Vec<String>,
}

impl Document {
    /// A top-level key's scalar value.
    fn top(&self, key: &str) -> Option<String> {
        self.lines
            .iter()
            .find_map(|line| line.strip_prefix(&format!("{key}:")))
            .map(unquote)
    }

    /// A scalar directly under `metadata:`.
    fn metadata(&self, key: &str) -> Option<String> {
        let start = self.lines.iter().position(|l| l == "metadata:")?;
        self.lines[start + 1..]
            .iter()
            .take_while(|l| l.starts_with(' '))
            .find_map(|l| l.strip_prefix(&format!("  {key}:")))
            .map(unquote)
    }

    /// Every value of `key:` at any depth (list items included).
    fn values(&self, key: &str) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|line| {
                let line = line.trim_start().trim_start_matches("- ");
                line.strip_prefix(&format!("{key}:")).map(unquote)
            })
            .collect()
    }

    /// The `name:` on the line after each `parent:` line.
    fn names_under(&self, parent: &str) -> Vec<String> {
        self.lines
            .windows(2)
            .filter(|pair| pair[0].trim_start().trim_start_matches("- ") == format!("{parent}:"))
            .filter_map(|pair| pair[1].trim_start().strip_prefix("name:").map(unquote))
            .collect()
    }

    /// Whether a line reads `line`, after its indentation and any list dash.
    fn has(&self, line: &str) -> bool {
        self.lines
            .iter()
            .any(|l| l.trim() == line || l.trim().trim_start_matches("- ") == line)
    }
}

fn unquote(value: &str) -> String {
    let value = value.split(" #").next().unwrap().trim();
    value.trim_matches('"').trim_matches('\'').to_owned()
}

fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
    found.sort();
}

fn documents(root: &Path) -> Vec<Document> {
    let mut files = Vec::new();
    yaml_files(root, &mut files);
    let mut documents = Vec::new();
    for path in files {
        let file = path.strip_prefix(root).unwrap().display().to_string();
        let source = std::fs::read_to_string(&path).unwrap();
        assert!(!source.contains('\t'), "{file}: a tab in YAML");
        for part in source.split("\n---\n") {
            let lines: Vec<String> = part
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .map(|l| l.trim_end().to_owned())
                .collect();
            if !lines.is_empty() {
                documents.push(Document {
                    file: file.clone(),
                    lines,
                });
            }
        }
    }
    documents
}

/// The `listen` port of a TOML configuration's table (`""` for the top level).
fn listen_port(toml: &str, table: &str) -> String {
    let mut current = String::new();
    for line in toml.lines() {
        if let Some(name) = line.strip_prefix('[') {
            current = name.trim_end_matches(']').to_owned();
        } else if current == table
            && let Some(value) = line.strip_prefix("listen = ")
        {
            let value = unquote(value);
            assert!(value.starts_with("0.0.0.0:"), "{table} listen {value}");
            return value.rsplit(':').next().unwrap().to_owned();
        }
    }
    panic!("no listen in [{table}]")
}

#[test]
fn kubernetes_manifests_are_well_formed_and_refer_only_to_what_they_define() {
    let root = repo().join("deploy/kubernetes");
    let docs = documents(&root);
    let all_text: String = {
        let mut files = Vec::new();
        yaml_files(&root, &mut files);
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    };
    let readme = read("deploy/README.md");

    // Every object has apiVersion, kind and metadata.name, in the namespace.
    let mut defined: BTreeSet<(String, String)> = BTreeSet::new();
    let mut kustomization = None;
    for doc in &docs {
        let kind = doc
            .top("kind")
            .unwrap_or_else(|| panic!("{}: no kind", doc.file));
        assert!(
            doc.top("apiVersion").is_some(),
            "{}: no apiVersion",
            doc.file
        );
        if kind == "Kustomization" {
            kustomization = Some(doc);
            continue;
        }
        let name = doc
            .metadata("name")
            .unwrap_or_else(|| panic!("{}: {kind} without metadata.name", doc.file));
        if kind != "Namespace" {
            assert_eq!(
                doc.metadata("namespace").as_deref(),
                Some("veu-attest"),
                "{}: {kind} {name}",
                doc.file
            );
        }
        defined.insert((kind, name));
    }

    // Every resource and file the kustomization lists exists; every other manifest is applied
    // on its own, which the README explains.
    let kustomization = kustomization.expect("deploy/kubernetes/kustomization.yaml");
    let block = |key: &str| -> Vec<&String> {
        kustomization
            .lines
            .iter()
            .skip_while(|l| **l != format!("{key}:"))
            .skip(1)
            .take_while(|l| l.starts_with(' '))
            .collect()
    };
    let mut listed: BTreeSet<String> = block("resources")
        .iter()
        .filter_map(|l| l.strip_prefix("  - ").map(unquote))
        .collect();
    assert!(listed.len() >= 5, "{listed:?}");
    let generator = block("configMapGenerator");
    let config_maps: BTreeSet<String> = generator
        .iter()
        .filter_map(|l| l.strip_prefix("  - name: ").map(unquote))
        .collect();
    let files: Vec<String> = generator
        .iter()
        .filter_map(|l| l.strip_prefix("      - ").map(unquote))
        .collect();
    assert_eq!(
        config_maps,
        BTreeSet::from([
            "veu-agent-config".to_owned(),
            "veu-collector-config".to_owned()
        ])
    );
    assert_eq!(
        files,
        [
            "collector/collector.toml",
            "collector/sites.toml",
            "agent/agent.toml"
        ]
    );
    for file in listed.iter().chain(&files) {
        assert!(root.join(file).is_file(), "kustomization.yaml lists {file}");
    }
    listed.insert("kustomization.yaml".to_owned());
    for doc in &docs {
        if !listed.contains(&doc.file) {
            assert!(
                readme.contains(&format!("deploy/kubernetes/{}", doc.file)),
                "{} is not in kustomization.yaml and deploy/README.md does not say how to apply it",
                doc.file
            );
        }
    }

    // Pods mount only ConfigMaps, Secrets and claims that exist: Secrets are made with
    // `kubectl create secret generic NAME` (the commands are in the manifests' comments).
    for doc in &docs {
        for name in doc.names_under("configMap") {
            assert!(
                config_maps.contains(&name),
                "{}: ConfigMap {name}",
                doc.file
            );
        }
        for name in doc
            .values("secretName")
            .into_iter()
            .chain(doc.names_under("secretKeyRef"))
        {
            assert!(
                all_text.contains(&format!("create secret generic {name} ")),
                "{}: Secret {name} is made nowhere",
                doc.file
            );
        }
        for name in doc.values("claimName") {
            assert!(
                defined.contains(&("PersistentVolumeClaim".to_owned(), name.clone())),
                "{}: claim {name}",
                doc.file
            );
        }
    }

    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| {
                d.top("kind").as_deref() == Some(kind)
                    && d.metadata("name").as_deref() == Some(name)
            })
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };

    // The collector: one replica, replaced by Recreate (SQLite), TCP probes on the gRPC port,
    // container ports as its configuration listens, and a Service naming those ports.
    let collector = find("Deployment", "veu-collector");
    assert!(collector.has("replicas: 1") && collector.has("type: Recreate"));
    assert_eq!(collector.values("claimName"), ["veu-collector-state"]);
    let collector_toml = read("deploy/kubernetes/collector/collector.toml");
    let ports = collector.values("containerPort");
    assert_eq!(
        ports,
        [
            listen_port(&collector_toml, ""),
            listen_port(&collector_toml, "metrics")
        ]
    );
    assert_eq!(
        collector.values("port"),
        ["metrics", "metrics", "metrics"],
        "probes"
    );
    assert_eq!(
        collector.values("path"),
        ["/readyz", "/readyz", "/healthz"],
        "startup, readiness, liveness"
    );
    let service = find("Service", "veu-collector");
    assert_eq!(service.values("targetPort"), ["grpc", "metrics"]);

    // The agent: GPU nodes, unprivileged, the runtime's device access, the node as host id.
    let agent = find("DaemonSet", "veu-agent");
    for line in [
        "runtimeClassName: nvidia",
        "nvidia.com/gpu.present: \"true\"",
        "key: nvidia.com/gpu",
        "privileged: false",
        "fieldPath: spec.nodeName",
        "- name: VEU_HOST_ID",
        "- name: NVIDIA_VISIBLE_DEVICES",
        "path: /var/lib/veu-agent",
    ] {
        assert!(agent.has(line), "the DaemonSet lacks {line:?}");
    }
    assert!(!agent.has("privileged: true") && !agent.has("hostNetwork: true"));
    let agent_toml = read("deploy/kubernetes/agent/agent.toml");
    assert_eq!(
        agent.values("containerPort"),
        [listen_port(&agent_toml, "metrics")]
    );
    assert_eq!(
        find("Job", "veu-agent-enroll-NODE_NAME").values("secretName"),
        agent.values("secretName"),
        "the enrollment Job mounts the agent's CA"
    );

    // kubectl, where installed, renders the kustomization offline.
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok()
    {
        let output = Command::new("kubectl")
            .arg("kustomize")
            .arg(&root)
            .output()
            .unwrap();
        let rendered = text(&output);
        assert!(output.status.success(), "kubectl kustomize:\n{rendered}");
        for kind in [
            "Namespace",
            "ConfigMap",
            "Service",
            "PersistentVolumeClaim",
            "Deployment",
            "DaemonSet",
        ] {
            assert!(
                rendered.contains(&format!("\nkind: {kind}\n")),
                "{kind} in\n{rendered}"
            );
        }
        assert!(rendered.contains("  agent.toml: |") && rendered.contains("  sites.toml: |"));
    } else {
        eprintln!("kubectl is not installed: the kustomization was checked by structure only");
    }
}

// ---------------------------------------------------------------------------------------------
// Prometheus and Grafana

/// The metric names a daemon's `metrics.rs` registers, as exposed: prefix, name, and `_total`
/// for counters (fields typed `Counter` or `Family<_, Counter>` in `struct Metrics`).
fn exported(path: &str, prefix: &str) -> BTreeSet<String> {
    let source = read(path);
    let body = source
        .split("pub struct Metrics {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .unwrap_or_else(|| panic!("{path}: no struct Metrics"));
    let counters: BTreeSet<&str> = body
        .lines()
        .filter_map(|line| {
            let (field, ty) = line.trim().trim_start_matches("pub ").split_once(':')?;
            ty.contains("Counter").then_some(field.trim())
        })
        .collect();
    let mut names = BTreeSet::new();
    for call in source.split(".register(").skip(1) {
        let call = call.split(");").next().unwrap();
        let name = call.split('"').nth(1).unwrap();
        let field = call
            .split("metrics.")
            .nth(1)
            .and_then(|rest| rest.split(".clone()").next())
            .unwrap_or_else(|| panic!("{path}: register({name}) without metrics.FIELD"));
        let suffix = if counters.contains(field) {
            "_total"
        } else {
            ""
        };
        names.insert(format!("{prefix}_{name}{suffix}"));
    }
    names
}

fn exported_metrics() -> BTreeSet<String> {
    let mut names = exported("collector/app/src/metrics.rs", "veu_collector");
    names.extend(exported("agent/daemon/src/metrics.rs", "veu_agent"));
    // The scanner must see what the docs list, or it would pass vacuously.
    for known in [
        "veu_collector_rejections_total",
        "veu_collector_attestations_accepted_total",
        "veu_collector_share_percent",
        "veu_collector_tier1_share_percent",
        "veu_collector_rule_violations",
        "veu_agent_attestations_total",
        "veu_agent_last_ack_age_seconds",
    ] {
        assert!(names.contains(known), "{known} not found in {names:?}");
    }
    names
}

/// Every `veu_collector_*` or `veu_agent_*` name in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (start, _) in text.match_indices("veu_") {
        if start > 0 && text.as_bytes()[start - 1].is_ascii_alphanumeric() {
            continue;
        }
        let name: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.starts_with("veu_collector_") || name.starts_with("veu_agent_") {
            names.insert(name);
        }
    }
    names
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read("deploy/grafana/veu-attest.json")).expect("the dashboard is JSON")
}

/// Every query of the dashboard, with its panel's title.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push((
                panel["title"].as_str().unwrap().to_owned(),
                target["expr"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    queries
}

#[test]
fn rules_dashboard_and_docs_name_only_metrics_the_daemons_export() {
    let exported = exported_metrics();
    let mut sources: BTreeMap<String, String> = [
        "deploy/prometheus/rules.yml",
        "deploy/prometheus/rules.test.yml",
        "deploy/README.md",
        "docs/agent.md",
        "docs/collector.md",
    ]
    .into_iter()
    .map(|path| (path.to_owned(), read(path)))
    .collect();
    for (title, expr) in dashboard_queries(&dashboard()) {
        sources.insert(format!("dashboard panel {title:?}"), expr);
    }
    for (source, text) in &sources {
        let unknown: Vec<String> = metric_names(text).difference(&exported).cloned().collect();
        assert!(
            unknown.is_empty(),
            "{source} names metrics nobody exports: {unknown:?}"
        );
    }
    // The alerts use the job names the scrape configurations give.
    let prometheus = read("deploy/prometheus/prometheus.yml");
    for job in ["veu-collector", "veu-agent"] {
        assert!(prometheus.contains(&format!("job_name: {job}\n")));
    }
}

#[test]
fn every_alert_is_tested_firing_and_quiet_and_explained() {
    let rules = read("deploy/prometheus/rules.yml");
    let alerts: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: ").map(str::to_owned))
        .collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    let tests = read("deploy/prometheus/rules.test.yml");
    let lines: Vec<&str> = tests
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let (mut firing, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    for (i, line) in lines.iter().enumerate() {
        if let Some(alert) = line.strip_prefix("alertname: ") {
            let fires = lines
                .get(i + 1)
                .is_some_and(|next| next.starts_with("exp_alerts:"));
            if fires { &mut firing } else { &mut quiet }.insert(alert.to_owned());
        }
    }
    let readme = read("deploy/README.md");
    for alert in &alerts {
        assert!(firing.contains(alert), "no test where {alert} fires");
        assert!(quiet.contains(alert), "no test where {alert} stays quiet");
        assert!(
            readme.contains(&format!("`{alert}`")),
            "deploy/README.md does not explain {alert}"
        );
    }
}

/// The anchors GitHub gives the headings of a Markdown file: lower case, letters, digits, `-`
/// and `_` kept, spaces made `-`, everything else (backticks, punctuation) dropped.
fn heading_anchors(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter(|line| line.starts_with('#'))
        .map(|line| {
            line.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_alert_has_a_runbook_url_naming_its_runbook_in_deploy_readme() {
    let rules = read("deploy/prometheus/rules.yml");
    let anchors = heading_anchors(&read("deploy/README.md"));
    let blocks: Vec<&str> = rules.split("- alert: ").skip(1).collect();
    assert!(blocks.len() >= 10);
    for block in blocks {
        let alert = block.lines().next().unwrap().trim();
        let url = block
            .lines()
            .find_map(|line| line.trim().strip_prefix("runbook_url: "))
            .unwrap_or_else(|| panic!("{alert} has no runbook_url"));
        let anchor = url
            .strip_prefix("deploy/README.md#")
            .unwrap_or_else(|| panic!("{alert}: runbook_url {url} is not in deploy/README.md"));
        assert!(
            anchors.contains(anchor),
            "{alert}: deploy/README.md has no heading #{anchor}"
        );
        // Its own runbook, not another alert's.
        assert_eq!(anchor, alert.to_lowercase(), "{alert}");
    }
}

#[test]
fn the_dashboard_is_grafana_json_with_a_query_in_every_panel() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "veu-attest");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(variables, ["datasource", "view"]);
    let mut ids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap();
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate id: {title}"
        );
        let grid = &panel["gridPos"];
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "{title}"
        );
        if panel["type"] == "row" {
            continue;
        }
        titles.insert(title);
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}");
        let refs: BTreeSet<&str> = targets
            .iter()
            .map(|t| t["refId"].as_str().unwrap())
            .collect();
        assert_eq!(refs.len(), targets.len(), "{title}: refIds");
        for target in targets {
            assert!(!target["expr"].as_str().unwrap().is_empty(), "{title}");
        }
    }
    for wanted in [
        "Verdict",
        "Tier-1 share",
        "Home share",
        "Tier-2 shares against the 7 % maximum",
        "Countries: TPP and share",
        "Stale hosts",
        "Ingest rate",
        "Rejections by reason",
        "Agent streams and hosts",
    ] {
        assert!(titles.contains(wanted), "no panel {wanted:?} in {titles:?}");
    }
}

#[test]
#[ignore = "needs promtool (apt-get install prometheus); .ci/run runs it with --ignored"]
fn promtool_checks_the_prometheus_files_and_the_dashboard_queries() {
    let dir = repo().join("deploy/prometheus");
    for args in [
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "rules.yml"],
        ["test", "rules", "rules.test.yml"],
    ] {
        let output = tool("promtool", "prometheus")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        let report = text(&output);
        assert!(
            output.status.success() && !report.contains("WARNING"),
            "promtool {}:\n{report}",
            args.join(" ")
        );
    }

    // Each dashboard query, with Grafana's variables filled in, as a recording rule: promtool
    // parses it as Prometheus would.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in dashboard_queries(&dashboard()).iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$view", "last_known");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let file = tempfile::Builder::new().suffix(".yml").tempfile().unwrap();
    std::fs::write(file.path(), &rules).unwrap();
    let output = tool("promtool", "prometheus")
        .args(["check", "rules"])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}\n{rules}", text(&output));
}
