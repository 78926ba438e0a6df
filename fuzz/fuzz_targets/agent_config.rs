//! The agent's configuration file, read by the daemon's own module (compiled in here from
//! agent/daemon/src/config.rs): every problem collected with its key, syntax errors with
//! line and caret, and their rendering, without touching the files it names.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use proto_config::{ConfigErrors, Problems};

#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../../agent/daemon/src/config.rs"]
mod config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/veu/agent.toml");
    let problems = Problems::new();
    match config::Config::read(text, path, &problems) {
        Ok(_) => {
            if let Some(errors) = ConfigErrors::of(path, &problems) {
                let _ = errors.to_string();
            }
        }
        Err(errors) => {
            let _ = errors.to_string();
        }
    }
});
