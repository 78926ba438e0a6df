//! `veu-witness run`: open the state, bind, serve until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use proto_note::{Cosigner, KeyError, SignerKey};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::server::serve;
use crate::state::{StateDir, StateError};
use crate::witness::Witness;

/// Runs the witness of `config` with `key` until `shutdown` is cancelled; `ready` is called
/// with the bound address once it accepts connections.
pub async fn run(
    config: Config,
    key: SignerKey,
    shutdown: CancellationToken,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), RunError> {
    let state = StateDir::open(&config.state_dir)?;
    let cosigner = Cosigner::from_signer_key(&key)?;
    let witness = Arc::new(Witness::open(cosigner, config.logs, state)?);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| RunError::Bind {
            address: config.listen,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| RunError::Bind {
        address: config.listen,
        source,
    })?;
    for (origin, size) in witness.sizes() {
        tracing::info!(origin, size, "witnessing a log");
    }
    tracing::info!(
        %address,
        verifier_key = %witness.verifier_key(),
        state_dir = %config.state_dir.display(),
        "listening"
    );
    ready(address);
    serve(listener, witness, config.limits, shutdown).await;
    tracing::info!("stopped");
    Ok(())
}

/// Why the witness could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The state directory cannot be used.
    #[error(transparent)]
    State(#[from] StateError),
    /// The key cannot sign.
    #[error("the witness key: {0}")]
    Key(#[from] KeyError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}
