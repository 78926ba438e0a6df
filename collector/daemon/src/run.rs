//! `veu-collector run`: from a checked start, create what a first start needs, open the store,
//! rebuild the state, serve until a signal.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use collector_app::Collector;
use collector_app::log::LogKeeper;
use collector_app::metrics::Metrics;
use collector_app::nonce::NonceIssuer;
use collector_app::witnesses::Witnesses;
use collector_store::AttestationStore;
use collector_store_postgres::{PostgresOptions, PostgresStore};
use collector_store_sqlite::{SqliteOptions, SqliteStore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use veu_daemon_kit::now_unix_ms;
use veu_daemon_kit::{Hangup, shutdown_signal};

use crate::config::{Store, redacted};
use crate::startup::Startup;

/// Serves from a checked start: binds its addresses, then creates what a first start needs
/// (state directory, store, nonce secret, log key), rebuilds the state and serves until a
/// signal.
pub async fn run(startup: Startup) -> anyhow::Result<()> {
    for warning in startup.warnings() {
        tracing::warn!("{warning}");
    }
    let Startup {
        config,
        rules,
        tls,
        enrollment_ca,
        log_key,
        nonce_secret,
        creates: _,
        gpu_trust,
        landmarks,
        path,
    } = startup;
    // Binding needs nothing on disk: an address that cannot be had fails the start before
    // anything is created. Connections are accepted only once serving starts (`listen`).
    let socket = proto_config::bind(&path, "listen", config.listen)?;
    raise_file_limit(config.limits.connections.max_connections);
    let metrics_socket = config
        .metrics_listen
        .map(|listen| proto_config::bind(&path, "metrics.listen", listen))
        .transpose()?;
    veu_daemon_kit::create_state_dir(&config.state_dir)
        .with_context(|| format!("cannot create {}", config.state_dir.display()))?;
    tracing::info!(
        policy = rules.policy.id,
        sites = rules.sites.len(),
        "rules loaded"
    );

    let store: Arc<dyn AttestationStore> = match &config.store {
        Store::Sqlite(path) => Arc::new(
            SqliteStore::open(path, SqliteOptions::default())
                .with_context(|| format!("cannot open the store {}", path.display()))?,
        ),
        Store::Postgres(url) => {
            let store = PostgresStore::connect(url, PostgresOptions::default())
                .with_context(|| format!("cannot open the store {}", redacted(url)))?;
            tracing::info!(schema = store.schema(), "PostgreSQL store opened");
            Arc::new(store)
        }
    };
    let secret = match nonce_secret {
        Some(secret) => secret,
        None => new_nonce_secret(&config.state_dir.join("nonce.key"))?,
    };
    let log_key = open_log_key(&config.log_key, log_key)?;
    let metrics = Arc::new(Metrics::new());
    metrics.build(env!("CARGO_PKG_VERSION"), env!("VEU_COMMIT"));
    let log = Arc::new(
        LogKeeper::new(
            Arc::clone(&store),
            log_key,
            config.log_origin.as_deref(),
            now_unix_ms,
        )
        .context("audit.origin")?,
    );
    tracing::info!(
        key = %log.public_key().key_id(),
        leaves = store.log_size().context("cannot read the log")?,
        "transparency log opened"
    );
    let collector = Arc::new(
        Collector::open(
            store,
            rules,
            NonceIssuer::new(&secret, millis(config.nonce_validity)),
            Arc::clone(&metrics),
            millis(config.freshness_window),
            now_unix_ms,
        )
        .context("cannot rebuild the collector's state from the store")?
        .with_organisation(config.organisation.clone())
        .with_gpu_trust(gpu_trust)
        .with_landmarks(landmarks)
        .context("cannot rebuild the location book from the store")?,
    );
    {
        let mut state = collector.state();
        tracing::info!(
            agents = state.agents.len(),
            hosts = state.ledger.live().len(),
            "state rebuilt from the store"
        );
        let located = state.location_sums(&collector.rules.sites, now_unix_ms());
        metrics.observe_location(&located, &collector.rules.policy);
        metrics.observe(state.ledger.live(), &collector.rules.policy);
    }
    let ca = enrollment_ca.map(Arc::new);

    if let Some(expiry) = veu_daemon_kit::exposition::certificate::not_after(&tls.certificate_pem) {
        metrics.server_certificate_expires(expiry);
    }
    let serving = Arc::new(AtomicBool::new(false));
    let shutdown = CancellationToken::new();
    // Every background task, so that shutdown can wait for them to finish.
    let tasks = TaskTracker::new();
    let checkpoint: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let witnesses = Arc::new(Witnesses::new(
        config.witnesses.clone(),
        Arc::clone(&metrics),
    ));
    if let Some(socket) = metrics_socket {
        let listener = socket.listen(BACKLOG)?;
        tracing::info!(listen = %listener.local_addr()?, "serving /metrics and /checkpoint");
        let source = Arc::clone(&metrics);
        let published = Arc::clone(&checkpoint);
        tasks.spawn(veu_daemon_kit::exposition::serve_probes(
            listener,
            Arc::new(move || source.render()),
            // The latest checkpoint, cosignatures included, for anyone who can reach the
            // port: C2SP tlog-checkpoint text that any client (or a witness) can read.
            Arc::new(move |path: &str| {
                (path == "/checkpoint")
                    .then(|| {
                        published
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .clone()
                    })
                    .flatten()
            }),
            Arc::new(readiness(Arc::clone(&collector), Arc::clone(&serving))),
            shutdown.clone(),
        ));
    }
    // Hosts going silent leave the verified view on their own clock, not only on the next
    // attestation.
    let sweeper = Arc::clone(&collector);
    let sweep_stop = shutdown.clone();
    // Replicas on one database see each other's agents, chains and hosts within a sweep.
    let shared_store = matches!(config.store, Store::Postgres(_));
    tasks.spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                () = sweep_stop.cancelled() => return,
                _ = ticker.tick() => {
                    if shared_store {
                        let refresher = Arc::clone(&sweeper);
                        match tokio::task::spawn_blocking(move || refresher.refresh_from_store()).await {
                            Ok(Ok(())) => {}
                            Ok(Err(error)) => tracing::warn!(%error, "cannot refresh from the shared store"),
                            Err(error) => tracing::warn!(%error, "refresh task failed"),
                        }
                    }
                    sweeper.flush_refusals(false).await;
                    let mut state = sweeper.state();
                    for host in state.ledger.sweep(now_unix_ms()) {
                        tracing::warn!(host, "host is stale: no attestation within the freshness window");
                    }
                    let located = state.location_sums(&sweeper.rules.sites, now_unix_ms());
                    sweeper.metrics.observe_location(&located, &sweeper.rules.policy);
                    sweeper.metrics.observe(state.ledger.live(), &sweeper.rules.policy);
                    drop(state);
                }
            }
        }
    });

    // Signed tree heads on an interval (only when the log grew), so auditors always find a
    // recent one; each as a checkpoint, published and submitted to the witnesses.
    let signer = Arc::clone(&log);
    let sign_stop = shutdown.clone();
    let every = config.tree_head_every;
    tracing::info!(
        origin = log.origin(),
        key = %log.verifier_key(),
        witnesses = config.witnesses.len(),
        "log checkpoints"
    );
    tasks.spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                () = sign_stop.cancelled() => return,
                _ = ticker.tick() => {
                    let keeper = Arc::clone(&signer);
                    let head = match tokio::task::spawn_blocking(move || keeper.sign()).await {
                        Ok(Ok(head)) => head,
                        Ok(Err(error)) => { tracing::error!(%error, "cannot sign a tree head"); continue }
                        Err(error) => { tracing::error!(%error, "tree head task failed"); continue }
                    };
                    tracing::debug!(size = head.tree_size, "tree head signed");
                    witnesses.submit(&signer, &head).await;
                    let keeper = Arc::clone(&signer);
                    match tokio::task::spawn_blocking(move || keeper.checkpoint(&head)).await {
                        Ok(Ok(note)) => {
                            *checkpoint.lock().unwrap_or_else(PoisonError::into_inner) = Some(note.to_string());
                        }
                        Ok(Err(error)) => tracing::error!(%error, "cannot make the checkpoint"),
                        Err(error) => tracing::error!(%error, "checkpoint task failed"),
                    }
                }
            }
        }
    });

    let listener = socket.listen(BACKLOG)?;
    tracing::info!(listen = %listener.local_addr()?, enrollment = ca.is_some(), "collector serving");
    serving.store(true, Ordering::Relaxed);
    // Not tracked: tonic's graceful shutdown would wait for every agent's stream to end; the
    // streams end with the process, and agents reconnect to a replica or after the restart.
    let mut server = tokio::spawn(collector_server::serve(
        listener,
        tls,
        Arc::clone(&collector),
        log,
        ca,
        config.challenge_every,
        config.limits.clone(),
        shutdown.clone(),
    ));
    tokio::select! {
        signal = shutdown_signal("collector", Hangup::Ignored) => {
            tracing::info!(signal, "shutting down");
        }
        result = &mut server => {
            result.context("server task failed")?.context("server failed")?;
        }
    }
    shutdown.cancel();
    tasks.close();
    // The sweeper and the signer stop between ticks, the probe server at once; a task still
    // busy after the drain window (a store that hangs) is left to the process's exit.
    if tokio::time::timeout(DRAIN, tasks.wait()).await.is_err() {
        tracing::warn!(
            still_running = tasks.len(),
            "background tasks did not finish within {DRAIN:?}; exiting anyway"
        );
    }
    // The counts of repeated refusals still in their window.
    collector.flush_refusals(true).await;
    Ok(())
}

/// The collector's `/readyz`: ready once its gRPC port is bound (the books were loaded from
/// the store before that) and while the store answers a read.
fn readiness(
    collector: Arc<Collector>,
    serving: Arc<AtomicBool>,
) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
    move || {
        if !serving.load(Ordering::Relaxed) {
            return Err("the gRPC listener is not bound yet".to_owned());
        }
        collector
            .store
            .log_size()
            .map(|_| ())
            .map_err(|error| format!("the store does not answer: {error}"))
    }
}

/// How long shutdown waits for the background tasks to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// Connections waiting to be accepted, as many as the standard library's listener allows.
const BACKLOG: u32 = 1024;

/// Makes the secret nonces are authenticated with (mode 0600), kept across restarts so that
/// nonces issued before a restart still check.
fn new_nonce_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut secret = vec![0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    proto_seal::keyfile::write_secret(path, &secret)?;
    Ok(secret)
}

/// The log key (PKCS#8, 0600, by default `<state_dir>/log.key`): the checked one, or one made
/// now, kept across restarts since auditors pin its public half, which is (re)written beside
/// it as `log.pub` (hex). Replicas of one log share one key file.
fn open_log_key(
    path: &Path,
    existing: Option<Vec<u8>>,
) -> anyhow::Result<proto_seal::Ed25519Signer> {
    let pkcs8 = match existing {
        Some(pkcs8) => pkcs8,
        None => {
            let pkcs8 = proto_seal::Ed25519Signer::generate_pkcs8()?;
            proto_seal::keyfile::write_secret(path, &pkcs8)?;
            tracing::info!(path = %path.display(), "new log key");
            pkcs8
        }
    };
    let signer = proto_seal::Ed25519Signer::from_pkcs8(&pkcs8)
        .with_context(|| format!("{} is not an Ed25519 key", path.display()))?;
    let public = veu_daemon_kit::hex(signer.public_key().as_bytes());
    let public_path = path.with_extension("pub");
    std::fs::write(&public_path, format!("{public}\n"))
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    Ok(signer)
}

/// File descriptors the collector needs beside its connections: store, metrics, listeners.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the soft file-descriptor limit to the hard one (every connection holds one), and
/// warns when `max_connections` does not fit under it: past the limit, accepting fails
/// (EMFILE) before the connection caps are reached.
fn raise_file_limit(max_connections: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(%error, "cannot raise the file-descriptor limit to its hard limit");
        }
    }
    // `None` is no limit.
    if let Some(open) = getrlimit(Resource::Nofile).current {
        let needed = max_connections as u64 + RESERVED_DESCRIPTORS;
        if open < needed {
            tracing::warn!(
                limit = open,
                max_connections,
                "the file-descriptor limit is below connections.max_connections + {RESERVED_DESCRIPTORS}: raise LimitNOFILE (or the container's nofile limit) or lower max_connections"
            );
        } else {
            tracing::debug!(limit = open, max_connections, "file-descriptor limit");
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
