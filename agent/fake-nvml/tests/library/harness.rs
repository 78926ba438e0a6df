//! Loads the built `libveu_fake_nvml.so` through nvml-wrapper-sys, as nvml-wrapper does, and
//! wraps its functions in safe calls that return `Result<T, nvmlReturn_t>`.
//!
//! The library reads its fixture from the process environment and keeps one global state, so
//! tests take turns: `Nvml::load` holds `TURN` for the test's lifetime.

use std::cell::Cell;
use std::ffi::{CStr, c_char, c_uint};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::{env, fs, mem, process, ptr};

use nvml_wrapper_sys::bindings::*;
use veu_fake_nvml::{FIXTURE_VAR, LIBRARY_FILE};

pub const SUCCESS: nvmlReturn_t = nvmlReturn_enum_NVML_SUCCESS;
pub const UNINITIALIZED: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
pub const INVALID_ARGUMENT: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
pub const NOT_SUPPORTED: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
pub const NO_PERMISSION: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_NO_PERMISSION;
pub const NOT_FOUND: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_NOT_FOUND;
pub const INSUFFICIENT_SIZE: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE;
pub const DRIVER_NOT_LOADED: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED;
pub const GPU_IS_LOST: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST;
pub const ARGUMENT_VERSION_MISMATCH: nvmlReturn_t =
    nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
pub const UNKNOWN: nvmlReturn_t = nvmlReturn_enum_NVML_ERROR_UNKNOWN;

/// `NVML_STRUCT_VERSION(Memory, 2)`, as nvml-wrapper sets it.
pub const MEMORY_V2: c_uint = (size_of::<nvmlMemory_v2_t>() as c_uint) | 2 << 24;
/// `NVML_STRUCT_VERSION(SystemConfComputeSettings, 1)`, as nvml-wrapper sets it.
pub const CONF_COMPUTE_SETTINGS_V1: c_uint =
    (size_of::<nvmlSystemConfComputeSettings_v1_t>() as c_uint) | 1 << 24;

/// The buffer sizes nvml-wrapper passes.
pub const UUID_BUFFER: c_uint = NVML_DEVICE_UUID_V2_BUFFER_SIZE;
pub const NAME_BUFFER: c_uint = NVML_DEVICE_NAME_V2_BUFFER_SIZE;

type StringQuery = unsafe extern "C" fn(nvmlDevice_t, *mut c_char, c_uint) -> nvmlReturn_t;

static TURN: Mutex<()> = Mutex::new(());

thread_local! {
    static HOLDING: Cell<bool> = const { Cell::new(false) };
}

/// The one turn every test that touches the environment or the library needs.
pub struct Turn(#[allow(dead_code, reason = "held, not read")] MutexGuard<'static, ()>);

/// Waits for the turn. Taking it twice on one thread would deadlock: that panics instead (drop
/// the first `Nvml` before loading the next).
pub fn turn() -> Turn {
    assert!(
        !HOLDING.get(),
        "this thread already holds the turn: drop the earlier Nvml first"
    );
    let guard = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    HOLDING.set(true);
    Turn(guard)
}

impl Drop for Turn {
    fn drop(&mut self) {
        HOLDING.set(false);
    }
}

/// The library cargo built for this test: `target/debug/deps/libveu_fake_nvml.so`, found from
/// this test binary in the same directory. `target/debug/libveu_fake_nvml.so` is only the
/// fallback: `cargo test` does not refresh that copy, so it can be older than the code.
pub fn library_path() -> PathBuf {
    let exe = env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let candidates = [
        deps.join(LIBRARY_FILE),
        deps.parent().unwrap().join(LIBRARY_FILE),
    ];
    candidates
        .iter()
        .find(|path| path.exists())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{LIBRARY_FILE} not found at {candidates:?}: run `cargo build -p agent-fake-nvml`"
            )
        })
}

/// A committed fixture in `tests/fixtures/nvml/`.
pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/nvml")
}

/// A committed fixture, parsed, to edit into a new one.
pub fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// The library, loaded afresh, with the fixture variable set to `fixture` (unset for `None`).
pub struct Nvml {
    lib: NvmlLib,
    _turn: Turn,
}

impl Nvml {
    /// Loaded, not initialised.
    pub fn load(fixture: Option<&Path>) -> Self {
        let turn = turn();
        // SAFETY: the environment is only touched, and read, by tests holding `turn`, and the
        // library reads it only during calls made by the test holding it.
        unsafe {
            match fixture {
                Some(path) => env::set_var(FIXTURE_VAR, path),
                None => env::remove_var(FIXTURE_VAR),
            }
        }
        Self::load_holding(turn)
    }

    /// Loaded with the environment as the process received it (for child processes).
    pub fn load_inherited() -> Self {
        Self::load_holding(turn())
    }

    /// Loaded and initialised with a fixture.
    pub fn started(fixture: &Path) -> Self {
        let nvml = Self::load(Some(fixture));
        assert_eq!(
            nvml.init(),
            SUCCESS,
            "nvmlInit_v2 with {}",
            fixture.display()
        );
        nvml
    }

    fn load_holding(turn: Turn) -> Self {
        // SAFETY: the library is this crate's cdylib; loading it runs no initialiser beyond
        // Rust's own, and its state is a const-initialised mutex.
        let lib = unsafe { NvmlLib::new(library_path()) }.unwrap();
        let nvml = Self { lib, _turn: turn };
        // The library stays loaded once loaded (`-z nodelete`), with its state: start from
        // uninitialised whatever an earlier test left.
        nvml.shut_down_fully();
        nvml
    }

    /// The raw bindings, for calls with deliberately bad arguments.
    pub fn lib(&self) -> &NvmlLib {
        &self.lib
    }

    pub fn init(&self) -> nvmlReturn_t {
        // SAFETY: no arguments.
        unsafe { self.lib.nvmlInit_v2() }
    }

    pub fn init_with_flags(&self, flags: c_uint) -> nvmlReturn_t {
        // SAFETY: no pointer arguments.
        unsafe { self.lib.nvmlInitWithFlags(flags) }
    }

    pub fn shutdown(&self) -> nvmlReturn_t {
        // SAFETY: no arguments.
        unsafe { self.lib.nvmlShutdown() }
    }

    fn shut_down_fully(&self) {
        while self.shutdown() == SUCCESS {}
    }

    pub fn error_string(&self, code: nvmlReturn_t) -> String {
        // SAFETY: NVML returns a static, NUL-terminated string.
        unsafe { CStr::from_ptr(self.lib.nvmlErrorString(code)) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    pub fn count(&self) -> Result<u32, nvmlReturn_t> {
        let mut count = 0;
        // SAFETY: a valid out-pointer.
        check(unsafe { self.lib.nvmlDeviceGetCount_v2(&mut count) }).map(|()| count)
    }

    pub fn handle(&self, index: u32) -> Result<nvmlDevice_t, nvmlReturn_t> {
        let mut device = ptr::null_mut();
        // SAFETY: a valid out-pointer.
        check(unsafe { self.lib.nvmlDeviceGetHandleByIndex_v2(index, &mut device) })?;
        assert!(!device.is_null());
        Ok(device)
    }

    pub fn driver_version(&self) -> Result<String, nvmlReturn_t> {
        let mut buffer = [0 as c_char; NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE as usize];
        // SAFETY: the buffer holds the length passed.
        let code = unsafe {
            self.lib.nvmlSystemGetDriverVersion(
                buffer.as_mut_ptr(),
                NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE,
            )
        };
        check(code).map(|()| text(&buffer))
    }

    pub fn cuda_driver_version(&self) -> Result<(i32, i32), nvmlReturn_t> {
        let (mut v1, mut v2) = (0, 0);
        // SAFETY: valid out-pointers.
        check(unsafe { self.lib.nvmlSystemGetCudaDriverVersion(&mut v1) })?;
        // SAFETY: as above.
        check(unsafe { self.lib.nvmlSystemGetCudaDriverVersion_v2(&mut v2) })?;
        Ok((v1, v2))
    }

    pub fn uuid(&self, device: nvmlDevice_t) -> Result<String, nvmlReturn_t> {
        self.string(&self.lib.nvmlDeviceGetUUID, device, UUID_BUFFER)
    }

    pub fn serial(&self, device: nvmlDevice_t) -> Result<String, nvmlReturn_t> {
        self.string(
            &self.lib.nvmlDeviceGetSerial,
            device,
            NVML_DEVICE_SERIAL_BUFFER_SIZE,
        )
    }

    pub fn board_part_number(&self, device: nvmlDevice_t) -> Result<String, nvmlReturn_t> {
        let size = NVML_DEVICE_PART_NUMBER_BUFFER_SIZE;
        self.string(&self.lib.nvmlDeviceGetBoardPartNumber, device, size)
    }

    pub fn name(&self, device: nvmlDevice_t) -> Result<String, nvmlReturn_t> {
        self.string(&self.lib.nvmlDeviceGetName, device, NAME_BUFFER)
    }

    pub fn vbios_version(&self, device: nvmlDevice_t) -> Result<String, nvmlReturn_t> {
        let size = NVML_DEVICE_VBIOS_VERSION_BUFFER_SIZE;
        self.string(&self.lib.nvmlDeviceGetVbiosVersion, device, size)
    }

    /// A string query with a buffer of `length` bytes.
    pub fn string(
        &self,
        symbol: &Result<StringQuery, impl Debug>,
        device: nvmlDevice_t,
        length: c_uint,
    ) -> Result<String, nvmlReturn_t> {
        let query = symbol.as_ref().unwrap();
        let mut buffer = vec![0 as c_char; length as usize];
        // SAFETY: the buffer holds `length` bytes; the handle is only passed back.
        check(unsafe { query(device, buffer.as_mut_ptr(), length) }).map(|()| text(&buffer))
    }

    pub fn index(&self, device: nvmlDevice_t) -> Result<u32, nvmlReturn_t> {
        let mut index = 0;
        // SAFETY: a valid out-pointer.
        check(unsafe { self.lib.nvmlDeviceGetIndex(device, &mut index) }).map(|()| index)
    }

    pub fn pci(&self, device: nvmlDevice_t) -> Result<nvmlPciInfo_t, nvmlReturn_t> {
        // SAFETY: all-zero is a valid nvmlPciInfo_t (integers and byte arrays).
        let mut info: nvmlPciInfo_t = unsafe { mem::zeroed() };
        // SAFETY: a valid out-pointer.
        check(unsafe { self.lib.nvmlDeviceGetPciInfo_v3(device, &mut info) }).map(|()| info)
    }

    pub fn architecture(&self, device: nvmlDevice_t) -> Result<u32, nvmlReturn_t> {
        let mut architecture = 0;
        // SAFETY: a valid out-pointer.
        let code = unsafe {
            self.lib
                .nvmlDeviceGetArchitecture(device, &mut architecture)
        };
        check(code).map(|()| architecture)
    }

    pub fn compute_capability(&self, device: nvmlDevice_t) -> Result<(i32, i32), nvmlReturn_t> {
        let (mut major, mut minor) = (0, 0);
        // SAFETY: valid out-pointers.
        let code = unsafe {
            self.lib
                .nvmlDeviceGetCudaComputeCapability(device, &mut major, &mut minor)
        };
        check(code).map(|()| (major, minor))
    }

    /// `nvmlDeviceGetMemoryInfo_v2` with the version nvml-wrapper sets.
    pub fn memory(&self, device: nvmlDevice_t) -> Result<nvmlMemory_v2_t, nvmlReturn_t> {
        self.memory_with_version(device, MEMORY_V2)
    }

    pub fn memory_with_version(
        &self,
        device: nvmlDevice_t,
        version: c_uint,
    ) -> Result<nvmlMemory_v2_t, nvmlReturn_t> {
        let mut memory = nvmlMemory_v2_t {
            version,
            total: 0,
            reserved: 0,
            free: 0,
            used: 0,
        };
        // SAFETY: a valid, initialised struct.
        check(unsafe { self.lib.nvmlDeviceGetMemoryInfo_v2(device, &mut memory) }).map(|()| memory)
    }

    pub fn memory_v1(&self, device: nvmlDevice_t) -> Result<nvmlMemory_t, nvmlReturn_t> {
        let mut memory = nvmlMemory_t {
            total: 0,
            free: 0,
            used: 0,
        };
        // SAFETY: a valid out-pointer.
        check(unsafe { self.lib.nvmlDeviceGetMemoryInfo(device, &mut memory) }).map(|()| memory)
    }

    pub fn max_clock(&self, device: nvmlDevice_t, clock: c_uint) -> Result<u32, nvmlReturn_t> {
        let mut mhz = 0;
        // SAFETY: a valid out-pointer.
        check(unsafe { self.lib.nvmlDeviceGetMaxClockInfo(device, clock, &mut mhz) }).map(|()| mhz)
    }

    pub fn mig_mode(&self, device: nvmlDevice_t) -> Result<(u32, u32), nvmlReturn_t> {
        let (mut current, mut pending) = (9, 9);
        // SAFETY: valid out-pointers.
        let code = unsafe {
            self.lib
                .nvmlDeviceGetMigMode(device, &mut current, &mut pending)
        };
        check(code).map(|()| (current, pending))
    }

    pub fn max_mig_devices(&self, device: nvmlDevice_t) -> Result<u32, nvmlReturn_t> {
        let mut count = 0;
        // SAFETY: a valid out-pointer.
        check(unsafe { self.lib.nvmlDeviceGetMaxMigDeviceCount(device, &mut count) })
            .map(|()| count)
    }

    pub fn mig_handle(
        &self,
        device: nvmlDevice_t,
        index: u32,
    ) -> Result<nvmlDevice_t, nvmlReturn_t> {
        let mut mig = ptr::null_mut();
        // SAFETY: a valid out-pointer.
        let code = unsafe {
            self.lib
                .nvmlDeviceGetMigDeviceHandleByIndex(device, index, &mut mig)
        };
        check(code)?;
        assert!(!mig.is_null());
        Ok(mig)
    }

    pub fn conf_compute_settings(
        &self,
        version: c_uint,
    ) -> Result<nvmlSystemConfComputeSettings_t, nvmlReturn_t> {
        let mut settings = nvmlSystemConfComputeSettings_t {
            version,
            environment: 9,
            ccFeature: 9,
            devToolsMode: 9,
            multiGpuMode: 9,
        };
        // SAFETY: a valid, initialised struct.
        let code = unsafe { self.lib.nvmlSystemGetConfComputeSettings(&mut settings) };
        check(code).map(|()| settings)
    }

    pub fn conf_compute_state(&self) -> Result<nvmlConfComputeSystemState_t, nvmlReturn_t> {
        let mut state = nvmlConfComputeSystemState_t {
            environment: 9,
            ccFeature: 9,
            devToolsMode: 9,
        };
        // SAFETY: a valid out-pointer.
        check(unsafe { self.lib.nvmlSystemGetConfComputeState(&mut state) }).map(|()| state)
    }
}

impl Drop for Nvml {
    fn drop(&mut self) {
        self.shut_down_fully();
    }
}

pub fn check(code: nvmlReturn_t) -> Result<(), nvmlReturn_t> {
    if code == SUCCESS { Ok(()) } else { Err(code) }
}

/// A C string in a buffer, up to its terminator.
pub fn text(buffer: &[c_char]) -> String {
    let bytes: Vec<u8> = buffer.iter().map(|&byte| byte.to_ne_bytes()[0]).collect();
    CStr::from_bytes_until_nul(&bytes)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// A directory for fixtures this test writes, removed afterwards.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "veu-fake-nvml-{}-{}",
            process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = env::temp_dir().join(name);
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// Where `name` is (or would be) in this directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `contents` to `name` by renaming a complete file over it, as a careful test does,
    /// so the library never reads half a file.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        let partial = self.0.join(format!("{name}.partial"));
        fs::write(&partial, contents).unwrap();
        fs::rename(&partial, &path).unwrap();
        path
    }

    pub fn write_json(&self, name: &str, fixture: &serde_json::Value) -> PathBuf {
        self.write(name, &serde_json::to_string_pretty(fixture).unwrap())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
