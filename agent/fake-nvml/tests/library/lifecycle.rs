//! Initialisation, reference counting, unreadable fixtures and re-reading a fixture that changes.

use std::env;
use std::fs;
use std::process::Command;

use serde_json::json;
use veu_fake_nvml::FIXTURE_VAR;

use crate::harness::{
    DRIVER_NOT_LOADED, GPU_IS_LOST, INVALID_ARGUMENT, NOT_SUPPORTED, Nvml, SUCCESS, Scratch,
    UNINITIALIZED, UNKNOWN, fixture, fixture_json, turn,
};

/// Set in the environment of a child process that `child_initialises_once` should run in.
const CHILD_VAR: &str = "VEU_FAKE_NVML_TEST_CHILD";

#[test]
fn calls_before_init_and_after_shutdown_are_uninitialized() {
    let nvml = Nvml::load(Some(&fixture("dgx-h100.json")));
    assert_eq!(nvml.count(), Err(UNINITIALIZED));
    assert_eq!(nvml.driver_version(), Err(UNINITIALIZED));
    assert_eq!(nvml.handle(0), Err(UNINITIALIZED));
    assert_eq!(nvml.shutdown(), UNINITIALIZED);

    assert_eq!(nvml.init(), SUCCESS);
    let device = nvml.handle(0).unwrap();
    assert_eq!(nvml.shutdown(), SUCCESS);
    assert_eq!(nvml.count(), Err(UNINITIALIZED));
    assert_eq!(nvml.uuid(device), Err(UNINITIALIZED));
    assert_eq!(nvml.memory(device).unwrap_err(), UNINITIALIZED);
    assert_eq!(nvml.conf_compute_state().unwrap_err(), UNINITIALIZED);
    assert_eq!(
        nvml.error_string(UNINITIALIZED),
        "Uninitialized",
        "works uninitialised"
    );
}

#[test]
fn init_is_reference_counted() {
    let nvml = Nvml::load(Some(&fixture("dgx-h100.json")));
    assert_eq!(nvml.init(), SUCCESS);
    assert_eq!(nvml.init_with_flags(1), SUCCESS);
    assert_eq!(nvml.shutdown(), SUCCESS);
    assert_eq!(nvml.count(), Ok(8), "one init still outstanding");
    assert_eq!(nvml.shutdown(), SUCCESS);
    assert_eq!(nvml.count(), Err(UNINITIALIZED));
    assert_eq!(nvml.shutdown(), UNINITIALIZED);
}

#[test]
fn an_unusable_fixture_is_driver_not_loaded() {
    let scratch = Scratch::new();
    let cases = [
        ("unset", None),
        ("missing", Some(scratch.path("missing.json"))),
        (
            "not JSON",
            Some(scratch.write("broken.json", "{\"devices\": [")),
        ),
        (
            "unknown field",
            Some(scratch.write("field.json", r#"{"gpus": []}"#)),
        ),
        (
            "bad value",
            Some(scratch.write("value.json", r#"{"devices": [{"fail_all": "OOPS"}]}"#)),
        ),
        ("directory", Some(env::temp_dir())),
    ];
    for (case, path) in cases {
        let nvml = Nvml::load(path.as_deref());
        assert_eq!(nvml.init(), DRIVER_NOT_LOADED, "{case}");
        assert_eq!(nvml.count(), Err(UNINITIALIZED), "{case}");
    }
}

#[test]
fn the_problem_is_named_on_stderr_in_one_line() {
    let scratch = Scratch::new();
    let broken = scratch.write("broken.json", "{\"devices\": [");
    let missing = scratch.path("missing.json");
    let cases = [
        (
            None,
            "veu-fake-nvml: cannot read fixture: VEU_FAKE_NVML_FIXTURE is not set".to_owned(),
        ),
        (
            Some(&missing),
            format!(
                "veu-fake-nvml: cannot read fixture {}: No such file or directory (os error 2)",
                missing.display()
            ),
        ),
        (
            Some(&broken),
            format!(
                "veu-fake-nvml: cannot read fixture {}: EOF while parsing a list at line 1 column 13",
                broken.display()
            ),
        ),
    ];
    let _turn = turn();
    for (path, expected) in cases {
        let mut child = Command::new(env::current_exe().unwrap());
        child.args([
            "--exact",
            "lifecycle::child_initialises_once",
            "--test-threads=1",
        ]);
        child.env(CHILD_VAR, "1");
        match path {
            Some(path) => child.env(FIXTURE_VAR, path),
            None => child.env_remove(FIXTURE_VAR),
        };
        let output = child.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "child failed: {stdout}");
        assert!(stdout.contains("1 passed"), "{stdout}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<_> = stderr
            .lines()
            .filter(|line| line.starts_with("veu-fake-nvml"))
            .collect();
        assert_eq!(lines, [expected.as_str()]);
    }
}

/// Runs only as the child of `the_problem_is_named_on_stderr_in_one_line`.
#[test]
fn child_initialises_once() {
    if env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let nvml = Nvml::load_inherited();
    assert_eq!(nvml.init(), DRIVER_NOT_LOADED);
}

#[test]
fn the_fixture_is_reread_when_it_changes() {
    let scratch = Scratch::new();
    let mut host = fixture_json("dgx-h100.json");
    let all = host["devices"].as_array().unwrap().clone();
    host["devices"] = json!(all[..2]);
    let path = scratch.write_json("host.json", &host);
    let nvml = Nvml::started(&path);
    assert_eq!(nvml.count(), Ok(2));
    let second = nvml.handle(1).unwrap();

    // A device added.
    host["devices"] = json!(all[..3]);
    scratch.write_json("host.json", &host);
    assert_eq!(nvml.count(), Ok(3));
    assert_eq!(
        nvml.uuid(nvml.handle(2).unwrap()).unwrap(),
        all[2]["uuid"].as_str().unwrap()
    );

    // A device broken.
    host["devices"][0]["fail_all"] = json!("GPU_IS_LOST");
    scratch.write_json("host.json", &host);
    assert_eq!(nvml.count(), Ok(3));
    assert_eq!(nvml.name(nvml.handle(0).unwrap()), Err(GPU_IS_LOST));

    // A device removed: a handle kept from before names a GPU that fell off the bus.
    host["devices"] = json!(all[..1]);
    scratch.write_json("host.json", &host);
    assert_eq!(nvml.count(), Ok(1));
    assert_eq!(nvml.name(second), Err(GPU_IS_LOST));

    // The file broken: counting fails, queries keep answering from the last good fixture.
    scratch.write("host.json", "{\"devices\": [");
    assert_eq!(nvml.count(), Err(UNKNOWN));
    assert_eq!(nvml.count(), Err(UNKNOWN));
    assert!(nvml.name(nvml.handle(0).unwrap()).is_ok());
    assert_eq!(
        nvml.handle(1),
        Err(INVALID_ARGUMENT),
        "still the one-device fixture"
    );

    // Mended, then gone.
    host["devices"] = json!(all);
    scratch.write_json("host.json", &host);
    assert_eq!(nvml.count(), Ok(8));
    fs::remove_file(&path).unwrap();
    assert_eq!(nvml.count(), Err(UNKNOWN));
    scratch.write_json("host.json", &host);
    assert_eq!(nvml.count(), Ok(8));
}

#[test]
fn a_rewrite_of_the_same_size_at_once_is_noticed() {
    let scratch = Scratch::new();
    let path = scratch.write("host.json", r#"{"devices": [{"name": "a"}]}"#);
    let nvml = Nvml::started(&path);
    let device = nvml.handle(0).unwrap();
    assert_eq!(nvml.name(device).unwrap(), "a");
    // In place, same length, most likely within one modification-time tick.
    for name in ["b", "c", "d"] {
        fs::write(&path, format!(r#"{{"devices": [{{"name": "{name}"}}]}}"#)).unwrap();
        assert_eq!(nvml.count(), Ok(1));
        assert_eq!(nvml.name(device).unwrap(), name);
    }
    assert_eq!(nvml.name(nvml.handle(0).unwrap()).unwrap(), "d");
    fs::write(&path, r#"{"devices": [{}, {}]}"#).unwrap();
    assert_eq!(nvml.count(), Ok(2));
    assert_eq!(nvml.name(device), Err(NOT_SUPPORTED));
}
