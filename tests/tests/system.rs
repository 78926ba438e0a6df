//! The system tests: one binary, one module per area.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "scenarios/support.rs"]
mod support;

#[path = "scenarios/evidence.rs"]
mod evidence;

#[path = "scenarios/demo.rs"]
mod demo;

#[path = "scenarios/readme.rs"]
mod readme;

#[path = "scenarios/faults.rs"]
mod faults;

#[path = "scenarios/gpu_evidence.rs"]
mod gpu_evidence;

#[path = "scenarios/location.rs"]
mod location;

#[path = "scenarios/attacks.rs"]
mod attacks;

#[path = "scenarios/books.rs"]
mod books;

#[path = "scenarios/replicas.rs"]
mod replicas;

#[path = "scenarios/deploy.rs"]
mod deploy;

#[path = "scenarios/witness.rs"]
mod witness;

#[path = "scenarios/renewal.rs"]
mod renewal;

#[path = "scenarios/version.rs"]
mod version;

mod architecture {
    use std::path::Path;

    use system_tests::architecture::Graph;

    #[test]
    fn the_workspace_follows_its_dependency_rules() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let graph = Graph::load(&workspace).unwrap();
        let pure = graph.pure_crates();
        assert!(
            pure.contains(&"proto-accounting") && pure.contains(&"proto-evidence"),
            "the contract's pure crates must be checked: {pure:?}"
        );
        assert!(graph.members.len() >= 6, "{:?}", graph.members);
        assert!(
            graph.members.contains("collector-app"),
            "the collector's application crate must be checked: {:?}",
            graph.members
        );
        let violations = graph.violations();
        assert!(
            violations.is_empty(),
            "dependency rules broken:\n{}",
            violations.join("\n")
        );
    }
}
