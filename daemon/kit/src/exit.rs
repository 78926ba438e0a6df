//! How a daemon's `main` ends.

use std::process::ExitCode;

/// The exit status of `result`: success, or the error printed on stderr as `error: a: b: c`
/// and the status [`proto_config::exit_status`] decides (78 for a configuration problem, else
/// 1).
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(proto_config::exit_status(&error))
        }
    }
}
