//! The library's one piece of process state: whether NVML is initialised, the fixture it answers
//! from, and how many queries each device has answered (for `lost_after_queries`).
//!
//! Everything lives behind one mutex; every exported function takes it for its whole call, so
//! a re-read of the fixture never interleaves with a query.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use nvml_wrapper_sys::bindings::{nvmlDevice_t, nvmlReturn_t};

use crate::FIXTURE_VAR;
use crate::code::{
    DRIVER_NOT_LOADED, GPU_IS_LOST, INVALID_ARGUMENT, NOT_SUPPORTED, UNINITIALIZED, UNKNOWN,
};
use crate::fixture::{self, Device, Fixture, Query};
use crate::handle::Handle;

static STATE: Mutex<State> = Mutex::new(State::new());

/// Runs `call` with the state locked. Updates are plain assignments with nothing that can panic
/// between them, so a lock poisoned by a panic elsewhere guards consistent state: take it over.
pub(crate) fn with<R>(call: impl FnOnce(&mut State) -> R) -> R {
    let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
    call(&mut state)
}

#[derive(Debug)]
pub(crate) struct State {
    /// Balanced `nvmlInit*` calls not yet matched by `nvmlShutdown`, as NVML counts them.
    references: u32,
    /// The fixture, while initialised.
    session: Option<Session>,
    /// Successful queries per (fixture path, device key), kept for the life of the process so
    /// that "lost after N queries" spans re-initialisation and re-reads.
    answered: BTreeMap<(PathBuf, String), u64>,
}

#[derive(Debug)]
struct Session {
    path: PathBuf,
    /// The file's bytes when last read; `None` when it could not be read.
    seen: Option<Vec<u8>>,
    fixture: Fixture,
    /// Why the latest version of the file could not be used; the device count fails meanwhile.
    broken: Option<String>,
}

impl State {
    const fn new() -> Self {
        Self {
            references: 0,
            session: None,
            answered: BTreeMap::new(),
        }
    }

    /// `nvmlInit_v2`: the first call reads the fixture, later ones only count.
    pub(crate) fn init(&mut self) -> Result<(), nvmlReturn_t> {
        if self.references > 0 {
            self.references = self.references.saturating_add(1);
            return Ok(());
        }
        let Some(path) = std::env::var_os(FIXTURE_VAR).map(PathBuf::from) else {
            report(format_args!(
                "cannot read fixture: {FIXTURE_VAR} is not set"
            ));
            return Err(DRIVER_NOT_LOADED);
        };
        let parsed = fs::read(&path)
            .map_err(|error| error.to_string())
            .and_then(|text| Ok((fixture::parse(&text, &fixture_dir(&path))?, text)));
        let (fixture, seen) = match parsed {
            Ok(parsed) => parsed,
            Err(reason) => {
                report_fixture(&path, &reason);
                return Err(DRIVER_NOT_LOADED);
            }
        };
        if let Some(code) = fixture.init_error {
            return Err(code);
        }
        self.session = Some(Session {
            path,
            seen: Some(seen),
            fixture,
            broken: None,
        });
        self.references = 1;
        Ok(())
    }

    /// `nvmlShutdown`: the last balanced call forgets the fixture.
    pub(crate) fn shutdown(&mut self) -> Result<(), nvmlReturn_t> {
        if self.references == 0 {
            return Err(UNINITIALIZED);
        }
        self.references -= 1;
        if self.references == 0 {
            self.session = None;
        }
        Ok(())
    }

    /// The fixture, or `NVML_ERROR_UNINITIALIZED`.
    pub(crate) fn fixture(&self) -> Result<&Fixture, nvmlReturn_t> {
        self.session
            .as_ref()
            .map(|session| &session.fixture)
            .ok_or(UNINITIALIZED)
    }

    /// Re-reads the fixture if its file changed since it was last read. The bytes are compared,
    /// not the modification time, which two writes within the kernel's timestamp granularity
    /// share. While the file cannot be read or parsed this fails with `NVML_ERROR_UNKNOWN`
    /// (said once on stderr per problem), and queries keep answering from the last good fixture.
    pub(crate) fn refresh(&mut self) -> Result<(), nvmlReturn_t> {
        let session = self.session.as_mut().ok_or(UNINITIALIZED)?;
        let outcome = match fs::read(&session.path) {
            Ok(text) if session.seen.as_ref() == Some(&text) => None,
            Ok(text) => {
                let parsed = fixture::parse(&text, &fixture_dir(&session.path));
                session.seen = Some(text);
                Some(parsed)
            }
            Err(error) => {
                session.seen = None;
                Some(Err(error.to_string()))
            }
        };
        match outcome {
            None => {}
            Some(Ok(fixture)) => {
                session.fixture = fixture;
                session.broken = None;
            }
            Some(Err(reason)) => {
                if session.broken.as_ref() != Some(&reason) {
                    report_fixture(&session.path, &reason);
                }
                session.broken = Some(reason);
            }
        }
        match session.broken {
            Some(_) => Err(UNKNOWN),
            None => Ok(()),
        }
    }

    /// The index of the device `handle` names, for handle-level calls (not counted as queries).
    pub(crate) fn device_index(&self, handle: nvmlDevice_t) -> Result<usize, nvmlReturn_t> {
        let fixture = self.fixture()?;
        match Handle::decode(handle) {
            // A handle from before a re-read that removed its device: the GPU fell off the bus.
            Some(Handle::Device(index)) if index >= fixture.devices.len() => Err(GPU_IS_LOST),
            Some(Handle::Device(index)) => Ok(index),
            // A MIG instance is not a full device: the physical-device queries do not apply.
            Some(Handle::Mig { .. }) => Err(NOT_SUPPORTED),
            None => Err(INVALID_ARGUMENT),
        }
    }

    /// Runs one per-device query: checks the handle, applies the device's injected failures
    /// (`fail_all`, then `lost_after_queries`, then `fail`), then lets `answer` read the device.
    /// Only a successful answer counts towards `lost_after_queries`.
    pub(crate) fn query(
        &mut self,
        handle: nvmlDevice_t,
        query: Query,
        answer: impl FnOnce(usize, &Device) -> Result<(), nvmlReturn_t>,
    ) -> Result<(), nvmlReturn_t> {
        let index = self.device_index(handle)?;
        let session = self.session.as_ref().ok_or(UNINITIALIZED)?;
        let device = session.fixture.devices.get(index).ok_or(GPU_IS_LOST)?;
        if let Some(code) = device.fail_all {
            return Err(code);
        }
        let key = (session.path.clone(), device.key(index));
        let answered = self.answered.get(&key).copied().unwrap_or(0);
        if device
            .lost_after_queries
            .is_some_and(|limit| answered >= limit)
        {
            return Err(GPU_IS_LOST);
        }
        if let Some(&code) = device.fail.get(&query) {
            return Err(code);
        }
        answer(index, device)?;
        if device.lost_after_queries.is_some() {
            self.answered.insert(key, answered.saturating_add(1));
        }
        Ok(())
    }
}

/// The directory a fixture's relative file names are read from: the fixture's own.
fn fixture_dir(path: &Path) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn report_fixture(path: &Path, reason: &str) {
    report(format_args!(
        "cannot read fixture {}: {reason}",
        path.display()
    ));
}

/// One line on stderr. `eprintln!` would panic if stderr were closed; this library must not.
pub(crate) fn report(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "veu-fake-nvml: {message}");
}
