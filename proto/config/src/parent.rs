//! `VEU_EXIT_WITH_PARENT=<pid>`: a daemon started by a supervising process (`veuctl demo`)
//! asks the kernel for SIGTERM when that process ends, however it ends (SIGKILL included), so
//! that no daemon outlives what started it. Linux's `PR_SET_PDEATHSIG`, through rustix's safe
//! call: the daemon sets it on itself at start, since setting it between fork and exec would
//! take unsafe code (`pre_exec`).

use rustix::process::{Signal, getppid, set_parent_process_death_signal};

/// The environment variable a supervisor sets to its own process id.
pub const VARIABLE: &str = "VEU_EXIT_WITH_PARENT";

/// Without the variable, nothing. With it, SIGTERM on the parent's end; an error when the
/// parent is not the process named (it ended before this call, and this process was handed to
/// another), in which case the caller should exit at once.
pub fn exit_with_parent() -> Result<(), String> {
    let Some(value) = std::env::var_os(VARIABLE) else {
        return Ok(());
    };
    let expected: i32 = value
        .to_str()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("{VARIABLE}={value:?} is not a process id"))?;
    set_parent_process_death_signal(Some(Signal::TERM))
        .map_err(|error| format!("cannot ask to end with the parent process: {error}"))?;
    match getppid() {
        Some(parent) if parent.as_raw_nonzero().get() == expected => Ok(()),
        _ => Err(format!(
            "the process that started this one ({expected}) has ended"
        )),
    }
}
