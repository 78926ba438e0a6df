//! How a daemon's `run` and `check-config` begin, the same for every daemon.

use std::future::Future;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;

use proto_config::files::Creates;
use tracing::Level;

/// `run`'s start: end with the supervisor that started the process where it asks
/// (`VEU_EXIT_WITH_PARENT`), read and check everything with `load` before anything is
/// created, install the log output `logging` names (the level, and JSON or not), then run
/// `daemon` on `runtime` to its end.
pub fn start<S, F, E>(
    load: impl FnOnce() -> anyhow::Result<S>,
    logging: impl FnOnce(&S) -> (Level, bool),
    runtime: &mut tokio::runtime::Builder,
    daemon: impl FnOnce(S) -> F,
) -> anyhow::Result<()>
where
    F: Future<Output = Result<(), E>>,
    anyhow::Error: From<E>,
{
    proto_config::parent::exit_with_parent().map_err(anyhow::Error::msg)?;
    let loaded = load()?;
    let (level, json) = logging(&loaded);
    crate::init_logging(level, json);
    Ok(runtime.enable_all().build()?.block_on(daemon(loaded))?)
}

/// Creates the state directory `dir` and its missing parents, mode 0700; one that exists is
/// left as it is.
pub fn create_state_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// `check-config`'s list of what a first `run` will create, on stdout; nothing when it
/// creates nothing.
pub fn print_creates(creates: &Creates) {
    let lines = creates.lines();
    if !lines.is_empty() {
        println!("run will create:");
        for line in lines {
            println!("  {line}");
        }
    }
}
