//! `veu-landmark run`: bind, start the submitter, serve agents until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Loaded;
use crate::session::Identity;
use crate::submit;

/// How long the submitter may take to stop after shutdown begins: its drain, and a little.
const SHUTDOWN_GRACE: Duration = submit::DRAIN.saturating_add(Duration::from_secs(1));

/// Runs the landmark of a loaded configuration until `shutdown`; `ready` is called with the
/// bound address once it accepts connections. An address that cannot be had is a
/// configuration error (exit status 78, `proto_config::exit_status`).
pub async fn run(
    loaded: Loaded,
    shutdown: CancellationToken,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let Loaded {
        config,
        signer,
        tls,
        path,
    } = loaded;
    let endpoint = submit::endpoint(&config.collector, &tls)?;
    let socket = proto_config::bind(&path, "listen", config.listen)?;
    let listener = socket
        .listen(1024)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        id = %config.id,
        at = %config.at,
        key_id = %signer.key_id(),
        rounds = config.limits.rounds,
        collector = %config.collector.endpoint,
        "listening for agents"
    );
    ready(address);

    let (queue, receiver) = mpsc::channel(submit::QUEUE);
    let submitter = tokio::spawn(submit::run(
        endpoint.connect_lazy(),
        receiver,
        submit::BACKOFF,
        shutdown.clone(),
    ));
    let identity = Arc::new(Identity {
        id: config.id,
        at: config.at,
        signer,
    });
    crate::server::serve(listener, identity, config.limits, queue, shutdown).await;
    if tokio::time::timeout(SHUTDOWN_GRACE, submitter)
        .await
        .is_err()
    {
        tracing::warn!("the submitter did not stop within the grace period");
    }
    tracing::info!("stopped");
    Ok(())
}
