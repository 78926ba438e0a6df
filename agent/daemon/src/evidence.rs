//! Collecting GPU hardware evidence off the executor: one device at a time on the blocking
//! pool, all of them within one deadline. A device that does not answer in time, or whose NVML
//! call panics, becomes that device's fault; the attestation always goes on.

use std::sync::Arc;
use std::time::Duration;

use agent_core::{Challenges, GpuSource};
use proto_evidence::{GpuEvidence, GpuEvidenceFault, KeyId};
use tokio::time::Instant;

pub use crate::config::GpuEvidenceSettings as Settings;

/// The evidence the attestation about to be made for `collector_nonce` carries: each of
/// `indices`' report over its own nonce when collection is on and the challenge is new, else
/// `None` (every device `NotCollected`).
pub async fn for_attestation(
    settings: Settings,
    challenges: &Challenges,
    source: &Arc<dyn GpuSource>,
    key_id: &KeyId,
    collector_nonce: &[u8],
    indices: impl IntoIterator<Item = u32>,
) -> Option<Vec<(u32, GpuEvidence)>> {
    if !settings.enabled || !challenges.due(collector_nonce) {
        return None;
    }
    let requests = agent_core::evidence::requests_for(collector_nonce, key_id, indices);
    let collected = collect(Arc::clone(source), requests, settings.timeout).await;
    log(&collected);
    Some(collected)
}

/// Asks `source` for each request's evidence, in order, one device at a time (a hung NVML
/// call then holds one blocking thread, not one per device), all before `timeout` has passed.
/// Once a device misses the deadline the devices after it are not asked: they get a `Timeout`
/// fault naming the device that was still answering.
pub async fn collect(
    source: Arc<dyn GpuSource>,
    requests: Vec<(u32, [u8; 32])>,
    timeout: Duration,
) -> Vec<(u32, GpuEvidence)> {
    let deadline = Instant::now() + timeout;
    let mut collected = Vec::with_capacity(requests.len());
    let mut stuck: Option<u32> = None;
    for (index, nonce) in requests {
        if let Some(stuck) = stuck {
            collected.push((
                index,
                GpuEvidence::unavailable(
                    GpuEvidenceFault::Timeout,
                    format!(
                        "not asked: device {stuck} was still answering when the {} deadline for all devices passed",
                        seconds(timeout)
                    ),
                ),
            ));
            continue;
        }
        let source = Arc::clone(&source);
        let task = tokio::task::spawn_blocking(move || source.gpu_evidence(index, nonce));
        let evidence = match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(evidence)) => evidence,
            Ok(Err(error)) => GpuEvidence::unavailable(
                GpuEvidenceFault::NvmlError,
                match error.try_into_panic() {
                    Ok(panic) => format!("the NVML call panicked: {}", panic_text(&*panic)),
                    Err(error) => format!("the NVML call did not finish: {error}"),
                },
            ),
            Err(_) => {
                stuck = Some(index);
                GpuEvidence::unavailable(
                    GpuEvidenceFault::Timeout,
                    format!(
                        "no report within the {} deadline for all devices",
                        seconds(timeout)
                    ),
                )
            }
        };
        collected.push((index, evidence));
    }
    collected
}

/// One line per device for the log: what was collected, or which fault.
pub fn log(collected: &[(u32, GpuEvidence)]) {
    for (index, evidence) in collected {
        match evidence {
            GpuEvidence::NotCollected => {}
            GpuEvidence::Report {
                report,
                certificate_chain,
            } => tracing::info!(
                device = index,
                report_bytes = report.len(),
                chain_bytes = certificate_chain.len(),
                "GPU attestation report collected"
            ),
            GpuEvidence::Unavailable { fault, message } => match fault {
                // The GPU's mode or model: nothing an operator must fix for the agent's sake.
                GpuEvidenceFault::NotSupported | GpuEvidenceFault::ConfidentialComputeOff => {
                    tracing::info!(device = index, fault = fault.code(), %message, "no GPU attestation report")
                }
                GpuEvidenceFault::NvmlError
                | GpuEvidenceFault::Timeout
                | GpuEvidenceFault::TooLarge => {
                    tracing::warn!(device = index, fault = fault.code(), %message, "no GPU attestation report")
                }
            },
        }
    }
}

fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("no message")
}

#[cfg(test)]
mod tests {
    use agent_core::{FakeEvidence, FakeGpuSource};

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn requests(count: u32) -> Vec<(u32, [u8; 32])> {
        (0..count).map(|i| (i, [i as u8; 32])).collect()
    }

    fn fault(evidence: &GpuEvidence) -> (GpuEvidenceFault, &str) {
        match evidence {
            GpuEvidence::Unavailable { fault, message } => (*fault, message),
            other => panic!("expected a fault, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reports_are_collected_once_per_new_challenge_and_only_when_enabled() {
        let fake = Arc::new(FakeGpuSource::confidential(2));
        let source: Arc<dyn GpuSource> = fake.clone();
        let key_id = KeyId(proto_evidence::Sha256::of(b"agent key"));
        let on = Settings {
            enabled: true,
            timeout: TIMEOUT,
        };
        let mut challenges = Challenges::default();
        let ask = |challenges: &Challenges, settings, nonce: &'static [u8]| {
            let source = Arc::clone(&source);
            let challenges = challenges.clone();
            async move { for_attestation(settings, &challenges, &source, &key_id, nonce, [0, 1]).await }
        };

        assert_eq!(ask(&challenges, on, b"").await, None, "no challenge yet");
        let first = ask(&challenges, on, b"n1").await.unwrap();
        assert_eq!(
            first[1],
            (
                1,
                GpuEvidence::Report {
                    report: FakeGpuSource::report_for(proto_evidence::report_nonce(
                        b"n1", &key_id, 1
                    )),
                    certificate_chain: FakeGpuSource::CHAIN.to_vec(),
                }
            )
        );
        challenges.answered(b"n1");
        let asked = fake.evidence_requests().len();
        assert_eq!(asked, 2);
        assert_eq!(ask(&challenges, on, b"n1").await, None, "same challenge");
        assert_eq!(fake.evidence_requests().len(), asked, "no GPU was asked");
        let off = Settings {
            enabled: false,
            ..on
        };
        assert_eq!(ask(&challenges, off, b"n2").await, None, "collection off");
        assert_eq!(fake.evidence_requests().len(), asked);
        assert!(
            ask(&challenges, on, b"n2").await.is_some(),
            "a new challenge"
        );
        assert_eq!(fake.evidence_requests().len(), asked + 2);
    }

    #[tokio::test(start_paused = true)]
    async fn every_device_signs_its_own_nonce() {
        let source = Arc::new(FakeGpuSource::confidential(3));
        let collected = collect(source.clone(), requests(3), TIMEOUT).await;
        assert_eq!(source.evidence_requests(), requests(3));
        for (index, evidence) in collected {
            assert_eq!(
                evidence,
                GpuEvidence::Report {
                    report: FakeGpuSource::report_for([index as u8; 32]),
                    certificate_chain: FakeGpuSource::CHAIN.to_vec(),
                }
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn faults_and_panics_stay_with_their_device() {
        let source = Arc::new(FakeGpuSource::confidential(4));
        source.set_evidence(
            1,
            FakeEvidence::Fault(GpuEvidenceFault::NvmlError, "GPU is lost".into()),
        );
        source.set_evidence(2, FakeEvidence::Panic);
        let collected = collect(source.clone(), requests(4), TIMEOUT).await;
        assert!(matches!(collected[0].1, GpuEvidence::Report { .. }));
        assert_eq!(
            fault(&collected[1].1),
            (GpuEvidenceFault::NvmlError, "GPU is lost")
        );
        let (class, message) = fault(&collected[2].1);
        assert_eq!(class, GpuEvidenceFault::NvmlError);
        assert!(
            message.contains("panicked: fake NVML panicked for device 2"),
            "{message}"
        );
        assert!(
            matches!(collected[3].1, GpuEvidence::Report { .. }),
            "the device after a panic is still asked"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_device_that_never_answers_is_a_timeout_and_the_rest_are_not_asked() {
        let source = Arc::new(FakeGpuSource::confidential(3));
        source.set_evidence(1, FakeEvidence::Hang);
        let collection = tokio::spawn(collect(source.clone(), requests(3), TIMEOUT));
        // Device 0 answered and device 1 holds its blocking thread: only now may time pass.
        let waiting = Arc::clone(&source);
        tokio::task::spawn_blocking(move || waiting.wait_until_hanging())
            .await
            .unwrap();
        tokio::time::advance(TIMEOUT).await;
        let collected = collection.await.unwrap();
        source.release();

        assert!(matches!(collected[0].1, GpuEvidence::Report { .. }));
        let (class, message) = fault(&collected[1].1);
        assert_eq!(class, GpuEvidenceFault::Timeout);
        assert!(message.contains("within the 10s deadline"), "{message}");
        let (class, message) = fault(&collected[2].1);
        assert_eq!(class, GpuEvidenceFault::Timeout);
        assert!(
            message.contains("device 1 was still answering"),
            "{message}"
        );
        assert_eq!(
            source.evidence_requests().len(),
            2,
            "device 2 was never asked"
        );
    }
}
