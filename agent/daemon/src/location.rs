//! Round-trip probes of the configured landmarks: each landmark once soon after start, then
//! every interval (with jitter, so a fleet does not probe in step); and `veu-agent probe`, one
//! probe of each at once. A failed probe is logged and never stops the agent; the landmark
//! submits what it measured to the collector itself.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_uplink::{ProbeOutcome, probe_landmark};
use anyhow::Context as _;
use proto_seal::Ed25519Signer;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, LocationSettings};

/// Deadline of one probe: connect, hello, every round, done.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(30);

/// The first probes start within this long of the agent's start.
const FIRST_PROBE_WITHIN: Duration = Duration::from_secs(30);

/// Probes every configured landmark until `shutdown`: first within [`FIRST_PROBE_WITHIN`],
/// then every interval.
pub async fn run(
    settings: LocationSettings,
    host: String,
    signer: Arc<Ed25519Signer>,
    shutdown: CancellationToken,
) {
    probe_every(settings, host, signer, FIRST_PROBE_WITHIN, shutdown).await;
}

async fn probe_every(
    settings: LocationSettings,
    host: String,
    signer: Arc<Ed25519Signer>,
    first_within: Duration,
    shutdown: CancellationToken,
) {
    if settings.landmarks.is_empty() {
        return;
    }
    let mut wait = jittered(first_within / 2, 100);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        for landmark in &settings.landmarks {
            let probe = probe_landmark(landmark, &host, &signer, PROBE_DEADLINE);
            let outcome = tokio::select! {
                () = shutdown.cancelled() => return,
                outcome = probe => outcome,
            };
            match outcome {
                Ok(ProbeOutcome::Measured { min_rtt_us, rounds }) => tracing::info!(
                    landmark = %landmark,
                    min_rtt_us,
                    rounds,
                    within_km = proto_location::radius_km(min_rtt_us, proto_location::LIGHT_KM_PER_MS) as u64,
                    "measured by a landmark"
                ),
                Ok(ProbeOutcome::Refused(reason)) => tracing::warn!(
                    landmark = %landmark,
                    %reason,
                    "a landmark refused to measure this host"
                ),
                Err(error) => tracing::warn!(landmark = %landmark, %error, "landmark probe failed"),
            }
        }
        wait = jittered(settings.interval, 10);
    }
}

/// `base` spread uniformly by ± `percent`.
fn jittered(base: Duration, percent: u32) -> Duration {
    let base_ms = base.as_millis() as u64;
    let spread = base_ms * u64::from(percent.min(100)) / 100;
    let random = u64::from(agent_uplink::random_u32());
    Duration::from_millis(base_ms - spread + random % (2 * spread + 1))
}

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Configuration file: its host_id, its signing key (state_dir) and [location] landmarks.
    #[arg(long, value_name = "FILE", default_value = "/etc/veu-agent/agent.toml")]
    config: PathBuf,
    /// Probe this landmark (`host:port`) instead of the configured ones.
    #[arg(long, value_name = "HOST:PORT")]
    landmark: Option<String>,
}

/// `veu-agent probe`: one probe of each landmark, printed; an error when any failed.
pub async fn probe(args: &ProbeArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read {}", args.config.display()))?;
    let config = Config::parse(&text, &args.config)?;
    let landmarks = match &args.landmark {
        Some(landmark) => vec![landmark.clone()],
        None if config.location.landmarks.is_empty() => anyhow::bail!(
            "{} lists no [location] landmarks; give one with --landmark HOST:PORT",
            args.config.display()
        ),
        None => config.location.landmarks.clone(),
    };
    let key = config.state_dir.join(crate::startup::SIGNING_KEY);
    let signer = agent_sign::load(&key).with_context(|| {
        format!(
            "the signing key {} (made by the first `veu-agent run`)",
            key.display()
        )
    })?;
    let mut failed = 0;
    for landmark in &landmarks {
        match probe_landmark(landmark, &config.host_id, &signer, PROBE_DEADLINE).await {
            Ok(ProbeOutcome::Measured { min_rtt_us, rounds }) => println!(
                "{landmark}: min RTT {:.3} ms over {rounds} rounds: within {:.0} km at the speed of light",
                min_rtt_us as f64 / 1000.0,
                proto_location::radius_km(min_rtt_us, proto_location::LIGHT_KM_PER_MS)
            ),
            Ok(ProbeOutcome::Refused(reason)) => {
                failed += 1;
                println!("{landmark}: refused: {reason}");
            }
            Err(error) => {
                failed += 1;
                println!("{landmark}: failed: {error}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} landmark probes failed", landmarks.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto_evidence::Coordinates;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;
    use veu_landmark::{Identity, Limits};

    use super::*;

    #[tokio::test]
    async fn every_landmark_is_probed_at_start_and_a_dead_one_does_not_stop_the_rest() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (sink, mut statements) = mpsc::channel(4);
        let shutdown = CancellationToken::new();
        tokio::spawn(veu_landmark::serve(
            listener,
            Arc::new(Identity {
                id: "fra-1".into(),
                at: Coordinates::from_degrees(50.1, 8.7).unwrap(),
                signer: Ed25519Signer::from_seed(&[42; 32]).unwrap(),
            }),
            Limits::default(),
            sink,
            shutdown.clone(),
        ));
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_address = dead.local_addr().unwrap();
        drop(dead);
        let settings = LocationSettings {
            landmarks: vec![dead_address.to_string(), address.to_string()],
            interval: Duration::from_secs(3600),
        };
        let signer = Arc::new(Ed25519Signer::from_seed(&[7; 32]).unwrap());
        let task = tokio::spawn(probe_every(
            settings,
            "gpu-node-5".into(),
            Arc::clone(&signer),
            Duration::ZERO,
            shutdown.clone(),
        ));
        let signed = tokio::time::timeout(Duration::from_secs(10), statements.recv())
            .await
            .unwrap()
            .unwrap();
        let measurement = proto_evidence::Measurement::decode(&signed.statement).unwrap();
        assert_eq!(measurement.host, "gpu-node-5");
        assert_eq!(measurement.agent_key, *signer.public_key().as_bytes());
        // Waiting an hour for the next round, it stops at once on shutdown.
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_secs(100), 10);
            assert!(wait >= Duration::from_secs(90) && wait <= Duration::from_secs(110));
        }
        assert_eq!(jittered(Duration::ZERO, 10), Duration::ZERO);
    }
}
