//! Counting: live counters every agent task bumps (read once a second for progress), a
//! send-to-ack latency histogram per agent, merged at the end, and the run's JSON summary.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

/// Counters shared by every agent of a run.
#[derive(Debug, Default)]
pub struct Counters {
    /// Attestations sent.
    pub sent: AtomicU64,
    /// Acknowledged.
    pub acked: AtomicU64,
    /// Rejected.
    pub rejected: AtomicU64,
    /// Streams open now.
    pub streams: AtomicU64,
    reasons: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    /// Counts a rejection under its reason code (`stale_nonce`, …).
    pub fn reject(&self, reason: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        *self
            .reasons
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(reason.to_owned())
            .or_default() += 1;
    }

    /// Rejections so far, by reason.
    pub fn reasons(&self) -> BTreeMap<String, u64> {
        self.reasons
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `(sent, acked, rejected, streams)` now.
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.acked.load(Ordering::Relaxed),
            self.rejected.load(Ordering::Relaxed),
            self.streams.load(Ordering::Relaxed),
        )
    }
}

/// Sub-buckets per power of two: values are kept within 1/64 (1.6 %).
const SUB: u64 = 64;

/// A log-linear histogram of microseconds: exact below 128 µs, within 1.6 % above.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; bucket(u64::MAX) + 1],
            count: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket(micros)] += 1;
        self.count += 1;
        self.max = self.max.max(micros);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at quantile `q` (0 to 1), in microseconds; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        // Rank of the wanted value, 1-based; the float is a display quantile, not a count.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (index, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return representative(index).min(self.max);
            }
        }
        self.max
    }

    /// The largest value, in microseconds.
    pub fn max(&self) -> u64 {
        self.max
    }
}

fn bucket(micros: u64) -> usize {
    if micros < 2 * SUB {
        return micros as usize;
    }
    let msb = 63 - u64::from(micros.leading_zeros());
    let shift = msb - 6;
    let mantissa = micros >> shift;
    // At most 128 + 57 * 64: far below usize::MAX.
    (2 * SUB + (shift - 1) * SUB + (mantissa - SUB)) as usize
}

/// The middle of bucket `index`.
fn representative(index: usize) -> u64 {
    let index = index as u64;
    if index < 2 * SUB {
        return index;
    }
    let shift = (index - 2 * SUB) / SUB + 1;
    let mantissa = (index - 2 * SUB) % SUB + SUB;
    (mantissa << shift) + (1 << shift) / 2
}

/// Send-to-ack latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub fn of(histogram: &Histogram) -> Self {
        let ms = |micros: u64| (micros as f64 / 10.0).round() / 100.0;
        Self {
            p50: ms(histogram.quantile(0.50)),
            p90: ms(histogram.quantile(0.90)),
            p99: ms(histogram.quantile(0.99)),
            max: ms(histogram.max()),
        }
    }
}

/// What a run did: printed as one JSON object on stdout.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Agents that took part.
    pub agents: usize,
    /// Attestations sent.
    pub sent: u64,
    /// Acknowledged after the collector's durable commit.
    pub acked: u64,
    /// Rejected.
    pub rejected: u64,
    /// Rejected, by the collector's reason code.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// From the start of streaming to the last answer.
    pub seconds: f64,
    /// `acked / seconds`.
    pub acked_per_second: f64,
    /// Send to ack.
    pub latency_ms: Latency,
    /// Agents whose stream failed.
    pub failed_agents: usize,
    /// The first failures, in words.
    pub errors: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for micros in (0..2_000_000u64).step_by(7).chain([u64::MAX / 2, u64::MAX]) {
            let index = bucket(micros);
            assert!(index >= last, "{micros}");
            last = index;
            let middle = representative(index);
            let error = middle.abs_diff(micros) as f64 / micros.max(1) as f64;
            assert!(error <= 1.0 / SUB as f64, "{micros} -> {middle}");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let mut histogram = Histogram::default();
        for ms in 1..=1000u64 {
            histogram.record(Duration::from_millis(ms));
        }
        let latency = Latency::of(&histogram);
        assert!((latency.p50 - 500.0).abs() <= 8.0, "{latency:?}");
        assert!((latency.p99 - 990.0).abs() <= 16.0, "{latency:?}");
        assert_eq!(latency.max, 1000.0);
        let mut merged = Histogram::default();
        merged.merge(&histogram);
        merged.merge(&histogram);
        assert_eq!(merged.count(), 2000);
        assert_eq!(Latency::of(&merged), latency);
    }

    #[test]
    fn an_empty_histogram_reports_zeros() {
        let latency = Latency::of(&Histogram::default());
        assert_eq!((latency.p50, latency.max), (0.0, 0.0));
    }
}
