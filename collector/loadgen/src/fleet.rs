//! A fleet's streaming run: every agent connects (at most `concurrency` at once), the clock
//! starts when the first wave is connected so that connection set-up is not counted as ingest,
//! and the summary adds up every agent's counts and latencies.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::enroll::EnrolledAgent;
use crate::stats::{Counters, Histogram, Latency, Summary};
use crate::stream::{ReadyGuard, Shared, StreamPlan, run_agent};
use crate::transport::Target;

/// Failures quoted in the summary at most.
const MAX_ERRORS: usize = 10;

/// Streams every agent to the end of `plan` (or until `shutdown`, after which agents stop
/// sending and wait for their answers). Prints progress to stderr once a second when
/// `progress` is set.
pub async fn stream_fleet(
    target: &Target,
    agents: Vec<EnrolledAgent>,
    plan: &StreamPlan,
    shutdown: CancellationToken,
    progress: bool,
) -> Summary {
    let total = agents.len();
    let first_wave = plan.concurrency.clamp(1, total.max(1)).min(total);
    let counters = Arc::new(Counters::default());
    let (go, start) = watch::channel(None);
    let (ready_sender, mut ready) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        target: target.clone(),
        plan: plan.clone(),
        counters: Arc::clone(&counters),
        permits: Semaphore::new(first_wave.max(1)),
        start,
        shutdown: shutdown.clone(),
    });
    let mut tasks = JoinSet::new();
    for agent in agents {
        let guard = ReadyGuard::new(ready_sender.clone());
        tasks.spawn(run_agent(agent, Arc::clone(&shared), guard));
    }
    drop(ready_sender);
    let mut connected = 0;
    while connected < first_wave {
        tokio::select! {
            message = ready.recv() => match message {
                Some(()) => connected += 1,
                None => break,
            },
            () = shutdown.cancelled() => break,
        }
    }
    let start = Instant::now();
    go.send_replace(Some(start));

    let reporting = CancellationToken::new();
    if progress {
        tokio::spawn(report(Arc::clone(&counters), start, reporting.clone()));
    }
    let mut histogram = Histogram::default();
    let mut last_answer: Option<Instant> = None;
    let mut errors = Vec::new();
    let mut failed_agents = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(outcome) => {
                histogram.merge(&outcome.histogram);
                last_answer = last_answer.max(outcome.last_answer);
                if let Some(error) = outcome.error {
                    failed_agents += 1;
                    if errors.len() < MAX_ERRORS {
                        errors.push(error);
                    }
                }
            }
            Err(error) => {
                failed_agents += 1;
                if errors.len() < MAX_ERRORS {
                    errors.push(format!("an agent task failed: {error}"));
                }
            }
        }
    }
    reporting.cancel();

    let (sent, acked, rejected, _) = counters.snapshot();
    let seconds = last_answer.map_or(0.0, |last| last.duration_since(start).as_secs_f64());
    let acked_per_second = if seconds > 0.0 {
        acked as f64 / seconds
    } else {
        0.0
    };
    Summary {
        agents: total,
        sent,
        acked,
        rejected,
        rejected_by_reason: counters.reasons(),
        seconds: (seconds * 1000.0).round() / 1000.0,
        acked_per_second: (acked_per_second * 10.0).round() / 10.0,
        latency_ms: Latency::of(&histogram),
        failed_agents,
        errors,
    }
}

/// One progress line a second on stderr.
async fn report(counters: Arc<Counters>, start: Instant, stop: CancellationToken) {
    let mut ticker =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut previous = 0;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {
                let (sent, acked, rejected, streams) = counters.snapshot();
                eprintln!(
                    "veu-loadgen: {:>5.0} s  sent {sent:>9}  acked {acked:>9} ({:>6}/s)  rejected {rejected:>6}  streams {streams:>5}",
                    start.elapsed().as_secs_f64(),
                    acked - previous,
                );
                previous = acked;
            }
        }
    }
}
