//! The dependency rules of ARCHITECTURE.md, checked on the resolved dependency graph:
//!
//! 1. Pure crates (every `*-core` crate, `proto-accounting`, `proto-evidence`) never depend,
//!    directly or through anything, on NVML, ring, tonic, prost, a SQL library or the daemons'
//!    kit (which brings a runtime and a log subscriber).
//!    `proto-gpu-evidence` is pure by the same rule except that it verifies signatures with ring.
//! 2. At most one workspace crate links nvml-wrapper, and it is `agent-nvml`.
//! 3. Generated protobuf types stop at the transport crates: only those may depend directly
//!    on `proto-wire`, `prost` or `tonic`.
//! 4. No OpenSSL or aws-lc anywhere in the tree: crypto is ring.
//! 5. Only `proto-seal` links ed25519-dalek, for batch verification; every single signature is
//!    ring's.
//! 6. Each SQL library belongs to one store crate: only `collector-store-sqlite` links rusqlite,
//!    only `collector-store-postgres` links tokio-postgres, and neither the storage port nor the
//!    other store reaches the other's library.
//! 7. Application crates (`collector-app`) are not transport crates: they reach `proto-wire`,
//!    `prost` or `tonic` through nothing but the evidence codec (`proto-seal`), which lets no
//!    generated type out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Crates that are pure by name, besides every `*-core` crate.
pub const PURE_CONTRACT_CRATES: &[&str] = &[
    "proto-accounting",
    "proto-evidence",
    "proto-merkle",
    "proto-location",
    "collector-report",
];

/// Pure crates that verify signatures: no I/O and nothing of [`FORBIDDEN_IN_PURE`] but ring.
pub const PURE_VERIFIER_CRATES: &[&str] = &["proto-gpu-evidence"];

/// What a pure crate must never reach.
pub const FORBIDDEN_IN_PURE: &[&str] = &[
    "nvml-wrapper",
    "nvml-wrapper-sys",
    "ring",
    "ed25519-dalek",
    "curve25519-dalek",
    "tonic",
    "prost",
    "rusqlite",
    "libsqlite3-sys",
    "tokio-postgres",
    "postgres",
    "sqlx",
    "veu-daemon-kit",
];

/// The only crate allowed to link the NVML bindings.
pub const NVML_CRATE: &str = "agent-nvml";

/// The only crate allowed to link ed25519-dalek (`open_batch`).
pub const BATCH_VERIFY_CRATE: &str = "proto-seal";

/// Crates that may use generated protobuf types directly: the contract itself, the evidence
/// codec, and the transport adapters of agent, collector, the collector's client, the load
/// generator and the landmark. veuctl is not one: it calls the collector through
/// `collector-client` and reads only plain types.
pub const TRANSPORT_CRATES: &[&str] = &[
    "proto-wire",
    "proto-seal",
    "agent-uplink",
    "collector-server",
    "collector-client",
    "collector-loadgen",
    "collector-testkit",
    "veu-landmark",
];

/// Application crates: every business operation, with no transport in them.
pub const APPLICATION_CRATES: &[&str] = &["collector-app"];

/// The evidence codec: encodes and decodes envelopes and payloads with prost and the contract,
/// and lets no generated type out. The one way an application crate may reach them.
pub const EVIDENCE_CODEC: &str = "proto-seal";

/// What an application crate reaches only through [`EVIDENCE_CODEC`].
pub const TRANSPORT_ONLY: &[&str] = &["proto-wire", "prost", "tonic"];

/// Each store crate and the one SQL library it owns.
pub const STORE_CRATES: &[(&str, &str)] = &[
    ("collector-store-sqlite", "rusqlite"),
    ("collector-store-postgres", "tokio-postgres"),
];

/// The storage port, which no SQL library may reach.
pub const STORE_PORT: &str = "collector-store";

/// Crates that may not appear anywhere in the tree.
pub const BANNED_EVERYWHERE: &[&str] = &["aws-lc-rs", "aws-lc-sys", "openssl", "openssl-sys"];

/// Packages and their normal (non-dev, non-build) dependencies, by name.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Workspace member names.
    pub members: BTreeSet<String>,
    /// Every package in the resolved graph and its normal dependencies.
    pub edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    /// Runs `cargo metadata` in `workspace` and reads the resolved graph.
    pub fn load(workspace: &Path) -> Result<Self, String> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let output = Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--locked"])
            .current_dir(workspace)
            .output()
            .map_err(|error| format!("cannot run cargo metadata: {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let metadata: Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| format!("cargo metadata printed invalid JSON: {error}"))?;
        Self::from_metadata(&metadata)
    }

    /// Reads the graph from `cargo metadata` JSON.
    pub fn from_metadata(metadata: &Value) -> Result<Self, String> {
        let mut names = BTreeMap::new();
        for package in metadata["packages"].as_array().ok_or("no packages")? {
            let id = package["id"].as_str().ok_or("package without id")?;
            let name = package["name"].as_str().ok_or("package without name")?;
            names.insert(id.to_owned(), name.to_owned());
        }
        let name_of = |id: &Value| -> Result<String, String> {
            let id = id.as_str().ok_or("id is not a string")?;
            names
                .get(id)
                .cloned()
                .ok_or_else(|| format!("unknown package id {id}"))
        };
        let mut graph = Graph::default();
        for member in metadata["workspace_members"]
            .as_array()
            .ok_or("no workspace_members")?
        {
            graph.members.insert(name_of(member)?);
        }
        for node in metadata["resolve"]["nodes"]
            .as_array()
            .ok_or("no resolve graph")?
        {
            let from = name_of(&node["id"])?;
            let deps = graph.edges.entry(from).or_default();
            for dep in node["deps"].as_array().ok_or("node without deps")? {
                let normal = dep["dep_kinds"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|kind| kind["kind"].is_null()));
                if normal {
                    deps.insert(name_of(&dep["pkg"])?);
                }
            }
        }
        Ok(graph)
    }

    /// Adds an edge; for tests of the rules themselves.
    pub fn add_edge(&mut self, from: &str, to: &str) {
        self.edges
            .entry(from.to_owned())
            .or_default()
            .insert(to.to_owned());
        self.edges.entry(to.to_owned()).or_default();
    }

    /// Crates the rules treat as pure.
    pub fn pure_crates(&self) -> Vec<&str> {
        self.members
            .iter()
            .map(String::as_str)
            .filter(|name| name.ends_with("-core") || PURE_CONTRACT_CRATES.contains(name))
            .collect()
    }

    /// The path `from → … → to` through normal dependencies, if `to` is reachable.
    pub fn path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        self.path_avoiding(from, to, &[])
    }

    /// The path `from → … → to` through normal dependencies that passes through none of
    /// `avoiding`, if there is one.
    pub fn path_avoiding(&self, from: &str, to: &str, avoiding: &[&str]) -> Option<Vec<String>> {
        let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([from]);
        let mut seen: BTreeSet<&str> = avoiding.iter().copied().collect();
        seen.insert(from);
        while let Some(current) = queue.pop_front() {
            if current == to {
                let mut path = vec![to.to_owned()];
                let mut at = to;
                while let Some(&before) = previous.get(at) {
                    path.push(before.to_owned());
                    at = before;
                }
                path.reverse();
                return Some(path);
            }
            for next in self.edges.get(current).into_iter().flatten() {
                if seen.insert(next) {
                    previous.insert(next, current);
                    queue.push_back(next);
                }
            }
        }
        None
    }

    /// Every broken rule, in words.
    pub fn violations(&self) -> Vec<String> {
        let mut found = Vec::new();
        for pure in self.pure_crates() {
            for forbidden in FORBIDDEN_IN_PURE {
                if let Some(path) = self.path(pure, forbidden) {
                    found.push(format!(
                        "pure crate {pure} reaches {forbidden}: {}",
                        path.join(" -> ")
                    ));
                }
            }
        }
        for &verifier in PURE_VERIFIER_CRATES {
            for forbidden in FORBIDDEN_IN_PURE.iter().filter(|name| **name != "ring") {
                if let Some(path) = self.path(verifier, forbidden) {
                    found.push(format!(
                        "pure verifier crate {verifier} reaches {forbidden}: {}",
                        path.join(" -> ")
                    ));
                }
            }
        }
        let direct = |dependency: &str| -> Vec<&str> {
            self.members
                .iter()
                .filter(|member| {
                    self.edges
                        .get(*member)
                        .is_some_and(|deps| deps.contains(dependency))
                })
                .map(String::as_str)
                .collect()
        };
        for member in direct("nvml-wrapper") {
            if member != NVML_CRATE {
                found.push(format!(
                    "{member} links nvml-wrapper; only {NVML_CRATE} may"
                ));
            }
        }
        for member in direct("ed25519-dalek") {
            if member != BATCH_VERIFY_CRATE {
                found.push(format!(
                    "{member} links ed25519-dalek; only {BATCH_VERIFY_CRATE} may (signatures are ring's)"
                ));
            }
        }
        for generated in ["proto-wire", "prost", "tonic"] {
            for member in direct(generated) {
                if member != generated && !TRANSPORT_CRATES.contains(&member) {
                    found.push(format!(
                        "{member} depends on {generated}; generated protobuf types stop at the transport crates ({})",
                        TRANSPORT_CRATES.join(", ")
                    ));
                }
            }
        }
        for application in APPLICATION_CRATES
            .iter()
            .filter(|name| self.members.contains(**name))
        {
            for transport in TRANSPORT_ONLY {
                if let Some(path) = self.path_avoiding(application, transport, &[EVIDENCE_CODEC]) {
                    found.push(format!(
                        "application crate {application} reaches {transport} other than through {EVIDENCE_CODEC}: {}",
                        path.join(" -> ")
                    ));
                }
            }
        }
        for &(store, library) in STORE_CRATES {
            for member in direct(library) {
                if member != store {
                    found.push(format!("{member} links {library}; only {store} may"));
                }
            }
            for &(other, _) in STORE_CRATES {
                if other != store
                    && let Some(path) = self.path(other, library)
                {
                    found.push(format!(
                        "{other} reaches {library}, the SQL library of {store}: {}",
                        path.join(" -> ")
                    ));
                }
            }
            if let Some(path) = self.path(STORE_PORT, library) {
                found.push(format!(
                    "the storage port reaches {library}: {}",
                    path.join(" -> ")
                ));
            }
        }
        for banned in BANNED_EVERYWHERE {
            if self.edges.contains_key(*banned) {
                let users: Vec<&str> = self
                    .edges
                    .iter()
                    .filter(|(_, deps)| deps.contains(*banned))
                    .map(|(name, _)| name.as_str())
                    .collect();
                found.push(format!(
                    "{banned} is in the tree (pulled by {})",
                    users.join(", ")
                ));
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small workspace that follows every rule.
    fn clean() -> Graph {
        let mut graph = Graph::default();
        for member in [
            "agent-core",
            "agent-nvml",
            "agent-uplink",
            "proto-accounting",
            "proto-wire",
        ] {
            graph.members.insert(member.to_owned());
        }
        graph.add_edge("agent-core", "proto-accounting");
        graph.add_edge("proto-accounting", "serde");
        graph.add_edge("agent-nvml", "nvml-wrapper");
        graph.add_edge("agent-nvml", "agent-core");
        graph.add_edge("agent-uplink", "proto-wire");
        graph.add_edge("agent-uplink", "ring");
        graph.add_edge("proto-wire", "prost");
        graph.add_edge("proto-wire", "tonic");
        graph
    }

    #[test]
    fn a_clean_graph_passes() {
        assert_eq!(clean().violations(), Vec::<String>::new());
        assert_eq!(clean().pure_crates(), ["agent-core", "proto-accounting"]);
    }

    #[test]
    fn a_direct_forbidden_edge_from_a_core_fails() {
        let mut graph = clean();
        graph.add_edge("agent-core", "ring");
        assert_eq!(
            graph.violations(),
            ["pure crate agent-core reaches ring: agent-core -> ring"]
        );
    }

    #[test]
    fn a_transitive_forbidden_edge_fails_with_its_path() {
        let mut graph = clean();
        graph.add_edge("serde", "sneaky");
        graph.add_edge("sneaky", "rusqlite");
        assert_eq!(
            graph.violations(),
            [
                "pure crate agent-core reaches rusqlite: agent-core -> proto-accounting -> serde -> sneaky -> rusqlite",
                "pure crate proto-accounting reaches rusqlite: proto-accounting -> serde -> sneaky -> rusqlite",
            ]
        );
    }

    #[test]
    fn the_gpu_evidence_verifier_may_reach_ring_but_not_transport() {
        let mut graph = clean();
        graph.members.insert("proto-gpu-evidence".to_owned());
        graph.add_edge("proto-gpu-evidence", "ring");
        graph.add_edge("proto-gpu-evidence", "x509-parser");
        assert!(graph.violations().is_empty(), "{:?}", graph.violations());
        graph.add_edge("x509-parser", "tonic");
        assert_eq!(
            graph.violations(),
            [
                "pure verifier crate proto-gpu-evidence reaches tonic: proto-gpu-evidence -> x509-parser -> tonic"
            ]
        );
    }

    #[test]
    fn a_second_nvml_crate_fails() {
        let mut graph = clean();
        graph.members.insert("collector-server".to_owned());
        graph.add_edge("collector-server", "nvml-wrapper");
        assert_eq!(
            graph.violations(),
            ["collector-server links nvml-wrapper; only agent-nvml may"]
        );
    }

    #[test]
    fn a_store_reaching_another_stores_sql_library_fails() {
        let mut graph = clean();
        for member in [
            "collector-store",
            "collector-store-sqlite",
            "collector-store-postgres",
        ] {
            graph.members.insert(member.to_owned());
        }
        graph.add_edge("collector-store-sqlite", "collector-store");
        graph.add_edge("collector-store-sqlite", "rusqlite");
        graph.add_edge("collector-store-postgres", "collector-store");
        graph.add_edge("collector-store-postgres", "tokio-postgres");
        assert_eq!(graph.violations(), Vec::<String>::new());
        // The port pulls SQLite in again, and with it the PostgreSQL store.
        graph.add_edge("collector-store", "rusqlite");
        assert_eq!(
            graph.violations(),
            [
                "collector-store links rusqlite; only collector-store-sqlite may",
                "collector-store-postgres reaches rusqlite, the SQL library of collector-store-sqlite: collector-store-postgres -> collector-store -> rusqlite",
                "the storage port reaches rusqlite: collector-store -> rusqlite",
            ]
        );
    }

    #[test]
    fn batch_verification_outside_proto_seal_fails() {
        let mut graph = clean();
        graph.members.insert("proto-seal".to_owned());
        graph.add_edge("proto-seal", "ed25519-dalek");
        assert_eq!(graph.violations(), Vec::<String>::new());
        graph.add_edge("agent-uplink", "ed25519-dalek");
        assert_eq!(
            graph.violations(),
            ["agent-uplink links ed25519-dalek; only proto-seal may (signatures are ring's)"]
        );
    }

    #[test]
    fn generated_types_outside_transport_crates_fail() {
        let mut graph = clean();
        graph.members.insert("agent-spool".to_owned());
        graph.add_edge("agent-spool", "prost");
        let violations = graph.violations();
        assert_eq!(violations.len(), 1);
        assert!(
            violations[0].starts_with("agent-spool depends on prost"),
            "{violations:?}"
        );
    }

    #[test]
    fn the_application_reaches_transport_only_through_the_evidence_codec() {
        let mut graph = clean();
        for member in ["collector-app", "collector-store", "proto-seal"] {
            graph.members.insert(member.to_owned());
        }
        graph.add_edge("collector-app", "proto-seal");
        graph.add_edge("collector-app", "collector-store");
        graph.add_edge("proto-seal", "proto-wire");
        graph.add_edge("proto-seal", "prost");
        assert_eq!(graph.violations(), Vec::<String>::new());

        graph.add_edge("collector-store", "tonic");
        assert_eq!(
            graph.violations(),
            [
                format!(
                    "collector-store depends on tonic; generated protobuf types stop at the transport crates ({})",
                    TRANSPORT_CRATES.join(", ")
                ),
                "application crate collector-app reaches tonic other than through proto-seal: collector-app -> collector-store -> tonic".to_owned(),
            ]
        );
    }

    #[test]
    fn an_application_depending_on_generated_types_fails() {
        let mut graph = clean();
        graph.members.insert("collector-app".to_owned());
        graph.add_edge("collector-app", "proto-wire");
        assert_eq!(
            graph.violations(),
            [
                format!(
                    "collector-app depends on proto-wire; generated protobuf types stop at the transport crates ({})",
                    TRANSPORT_CRATES.join(", ")
                ),
                "application crate collector-app reaches proto-wire other than through proto-seal: collector-app -> proto-wire".to_owned(),
                "application crate collector-app reaches prost other than through proto-seal: collector-app -> proto-wire -> prost".to_owned(),
                "application crate collector-app reaches tonic other than through proto-seal: collector-app -> proto-wire -> tonic".to_owned(),
            ]
        );
    }

    #[test]
    fn aws_lc_anywhere_fails() {
        let mut graph = clean();
        graph.add_edge("tonic", "aws-lc-rs");
        assert_eq!(
            graph.violations(),
            ["aws-lc-rs is in the tree (pulled by tonic)"]
        );
    }

    #[test]
    fn reads_cargo_metadata_json_and_ignores_dev_dependencies() {
        let metadata = serde_json::json!({
            "packages": [
                {"id": "a 0.1", "name": "agent-core"},
                {"id": "r 0.17", "name": "ring"},
                {"id": "p 1", "name": "proptest"},
            ],
            "workspace_members": ["a 0.1"],
            "resolve": {"nodes": [
                {"id": "a 0.1", "deps": [
                    {"pkg": "p 1", "dep_kinds": [{"kind": "dev", "target": null}]},
                    {"pkg": "r 0.17", "dep_kinds": [{"kind": "dev", "target": null}]},
                ]},
                {"id": "r 0.17", "deps": []},
                {"id": "p 1", "deps": []},
            ]},
        });
        let graph = Graph::from_metadata(&metadata).unwrap();
        assert_eq!(
            graph.violations(),
            Vec::<String>::new(),
            "dev-dependencies may use anything"
        );

        let mut metadata = metadata;
        metadata["resolve"]["nodes"][0]["deps"][1]["dep_kinds"][0]["kind"] = Value::Null;
        let graph = Graph::from_metadata(&metadata).unwrap();
        assert_eq!(
            graph.violations(),
            ["pure crate agent-core reaches ring: agent-core -> ring"]
        );
    }
}
