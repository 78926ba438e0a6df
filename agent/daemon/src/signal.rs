//! The one place signals are awaited.

use tokio::signal::unix::{SignalKind, signal};

/// Resolves on SIGTERM or SIGINT, naming which. SIGHUP reloads nothing (every setting is read
/// at start): it is logged and the agent goes on, rather than dying by the default action.
pub async fn shutdown() -> &'static str {
    let (Ok(mut terminate), Ok(mut interrupt), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the agent with SIGKILL");
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = terminate.recv() => return "SIGTERM",
            _ = interrupt.recv() => return "SIGINT",
            _ = hangup.recv() => tracing::info!(
                "SIGHUP is not handled: restart the agent to apply configuration changes"
            ),
        }
    }
}
