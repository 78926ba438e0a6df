//! A closed output pipe ends veuctl quietly, as it ends other Unix tools.
//!
//! Rust ignores SIGPIPE, so `println!` to a pipe whose reader has gone (`veuctl … | head`)
//! panics. Restoring the default signal disposition needs unsafe code, which this workspace does
//! not allow; instead a panic hook recognises the standard library's "failed printing" panic on a
//! broken pipe and exits with status 141, what a shell reports for a process SIGPIPE ended. Any
//! other panic goes to the default hook.

use std::process;

/// The status a shell reports for a process ended by SIGPIPE (128 + 13).
pub const EXIT_BROKEN_PIPE: i32 = 141;

/// Installs the hook; call once, first thing in `main`.
pub fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_broken_pipe(message) {
            process::exit(EXIT_BROKEN_PIPE);
        }
        default(info);
    }));
}

/// Whether a panic message is the standard library's report of a write to a closed pipe.
fn is_broken_pipe(message: &str) -> bool {
    (message.starts_with("failed printing to stdout")
        || message.starts_with("failed printing to stderr"))
        && message.contains("Broken pipe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_print_to_a_closed_pipe_is_recognised() {
        assert!(is_broken_pipe(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(is_broken_pipe(
            "failed printing to stderr: Broken pipe (os error 32)"
        ));
        assert!(!is_broken_pipe(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!is_broken_pipe("index out of bounds"));
    }
}
