//! `veu-agent run`: the daemon. One cancellation token and task tracker; the attestation loop,
//! the uplink, the landmark probes and the metrics endpoint are tasks; SIGTERM or SIGINT drains within the grace.

use std::sync::Arc;

use agent_core::{Identity, Rules, Schedule};
use agent_nvml::NvmlSource;
use agent_spool::{Journal, SpoolLimits};
use anyhow::Context as _;
use proto_evidence::{HostId, SiteId};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use veu_daemon_kit::Hangup;

use crate::attest::Attestor;
use crate::metrics::Metrics;
use crate::outbox::JournalOutbox;
use crate::startup::{SIGNING_KEY, Startup};

/// Runs from a checked start until a signal or a fatal error: binds the metrics address, then
/// creates what a first start needs (state directory, signing key, spool).
pub async fn run(startup: Startup) -> anyhow::Result<()> {
    let Startup {
        config,
        catalogue,
        policy,
        tls,
        signing_key,
        creates: _,
        path,
    } = startup;
    // Binding needs nothing on disk: an address that cannot be had fails the start before
    // anything is created. Connections are accepted only once serving starts (`listen`).
    let metrics_socket = config
        .metrics_listen
        .map(|listen| proto_config::bind(&path, "metrics.listen", listen))
        .transpose()?;
    veu_daemon_kit::create_state_dir(&config.state_dir).with_context(|| {
        format!(
            "cannot create state directory {}",
            config.state_dir.display()
        )
    })?;
    // Two agents on one state directory would interleave two chains in one spool.
    let lock_path = config.state_dir.join("lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        anyhow::bail!(
            "another veu-agent is running with state directory {}",
            config.state_dir.display()
        );
    }
    let (signer, origin) = match signing_key {
        Some(signer) => (signer, agent_sign::KeyOrigin::Loaded),
        None => agent_sign::load_or_create(&config.state_dir.join(SIGNING_KEY))?,
    };
    let origin = match origin {
        agent_sign::KeyOrigin::Loaded => "loaded",
        agent_sign::KeyOrigin::Created => "created",
    };
    tracing::info!(key_id = %signer.key_id(), origin, "signing key ready");
    let signer = Arc::new(signer);

    let limits = SpoolLimits {
        max_entries: config.spool_max_entries,
        max_bytes: config.spool_max_bytes,
    };
    let (journal, recovery) = Journal::open(
        &config.state_dir.join("spool"),
        limits,
        &config.state_dir.join("chain.state"),
        |bytes| Ok(proto_seal::decode_envelope(bytes)?.chain_digest()),
    )?;
    for quarantined in &recovery.quarantined {
        tracing::warn!(?quarantined, "damaged spool entry moved aside");
    }
    if !recovery.removed_temp.is_empty() || !recovery.ignored.is_empty() {
        tracing::info!(removed = ?recovery.removed_temp, ignored = ?recovery.ignored, "spool recovered");
    }
    tracing::info!(entries = journal.spool().len(), "spool opened");
    if let Some(head) = journal.head() {
        tracing::info!(sequence = head.sequence, "chain resumed");
    }

    let source = NvmlSource::open(config.nvml_library.as_deref())?;
    let evidence = match source.evidence_source() {
        proto_evidence::EvidenceSource::Nvml => "nvml",
        proto_evidence::EvidenceSource::Simulated => "simulated",
    };
    tracing::info!(library = %source.library().display(), evidence, "NVML ready");

    let metrics = Metrics::new();
    let outbox = Arc::new(JournalOutbox::new(journal));
    let new_entry = Arc::new(Notify::new());
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (nonces, nonce_receiver) = mpsc::channel::<Vec<u8>>(8);

    if let Some(socket) = metrics_socket {
        let listener = socket.listen(64)?;
        tracing::info!(listen = %listener.local_addr()?, "serving /metrics");
        let source = Arc::clone(&metrics);
        let render = Arc::new(move || source.render());
        let ready = crate::metrics::readiness(Arc::clone(&metrics), limits);
        tracker.spawn(veu_daemon_kit::exposition::serve_probes(
            listener,
            render,
            Arc::new(|_: &str| None),
            Arc::new(ready),
            shutdown.clone(),
        ));
    }

    let identity = Identity {
        key_id: signer.key_id(),
        host_id: HostId(config.host_id.clone()),
        site_id: SiteId(config.site_id.clone()),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let attestor = Attestor {
        chain: agent_core::Chain::default(),
        identity,
        rules: Rules {
            catalogue_digest: catalogue.digest().to_string(),
            policy_digest: policy.digest().to_string(),
        },
        catalogue,
        policy,
        signer: Arc::clone(&signer),
        outbox: Arc::clone(&outbox),
        new_entry: Arc::clone(&new_entry),
        source: Arc::new(source),
        schedule: Schedule {
            interval: config.interval,
            jitter_per_mille: config.jitter_percent * 10,
        },
        watch_interval: config.watch_interval,
        nvml_timeout: config.nvml_timeout,
        metrics: Arc::clone(&metrics),
        fingerprint: None,
        gpu_evidence: config.gpu_evidence,
        challenges: agent_core::Challenges::default(),
    };
    tracker.spawn(attestor.run(nonce_receiver, shutdown.clone()));
    if !config.location.landmarks.is_empty() {
        tracing::info!(
            landmarks = ?config.location.landmarks,
            interval_s = config.location.interval.as_secs(),
            "probing landmarks"
        );
        tracker.spawn(crate::location::run(
            config.location.clone(),
            config.host_id.clone(),
            Arc::clone(&signer),
            shutdown.clone(),
        ));
    }

    let mut uplink_failed = None;
    let uplink = match (&config.collector, tls) {
        (None, _) | (Some(_), None) => {
            tracing::warn!("no [collector] configured: attestations are signed and spooled only");
            None
        }
        (Some(collector), Some(tls)) => Some(crate::link::start(
            collector,
            tls,
            &config,
            &tracker,
            crate::link::Shared {
                outbox,
                signer,
                new_entry,
                nonces,
                metrics,
            },
            shutdown.clone(),
        )?),
    };

    tokio::select! {
        signal = veu_daemon_kit::shutdown_signal("agent", Hangup::Ignored) => tracing::info!(signal, "shutting down"),
        result = async {
            match uplink {
                Some(task) => task.await,
                None => std::future::pending().await,
            }
        } => {
            if let Ok(Err(fatal)) = result {
                tracing::error!(%fatal, "stopping: the collector refuses this agent");
                uplink_failed = Some(fatal);
            }
        }
    }
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(config.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = config.shutdown_grace.as_millis() as u64,
            "tasks did not finish within the grace period"
        );
    }
    drop(lock);
    match uplink_failed {
        Some(fatal) => Err(fatal.into()),
        None => Ok(()),
    }
}
