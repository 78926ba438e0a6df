//! The daemons' log output: on stderr, colours only on a terminal, no module names.

use tracing::Level;

/// Installs the process's log subscriber: events at `level` and above on stderr, one JSON
/// object a line where `json`, else text.
pub fn init_logging(level: Level, json: bool) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
