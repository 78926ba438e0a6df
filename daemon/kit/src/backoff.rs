//! The delays between a failed attempt and the next: doubling from a first delay up to a
//! largest one.

use std::time::Duration;

/// Exponential backoff: the bounds of the delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay (with jitter: its upper bound).
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
}

/// A reconnecting client's: from half a second up to a minute.
impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// A fresh sequence of delays.
    pub fn start(&self) -> BackoffState {
        BackoffState {
            config: *self,
            attempt: 0,
        }
    }
}

/// Where a backoff sequence stands.
#[derive(Debug, Clone, Copy)]
pub struct BackoffState {
    config: Backoff,
    attempt: u32,
}

impl BackoffState {
    /// The next delay, with full jitter: uniform in [ceiling / 2, ceiling] where the ceiling
    /// doubles each attempt up to the maximum, so a fleet that lost its server does not
    /// reconnect in lockstep.
    pub fn next_delay(&mut self, random: u32) -> Duration {
        let initial = self.config.initial.as_millis() as u64;
        let ceiling = initial
            .saturating_mul(1u64 << self.attempt.min(20))
            .min(self.config.max.as_millis() as u64)
            .max(1);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        Duration::from_millis(half + u64::from(random) % (ceiling - half + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_jitter() {
        let mut state = Backoff::default().start();
        let ceilings = [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000];
        for ceiling in ceilings {
            let low = state.clone().next_delay(0);
            let delay = state.next_delay(u32::MAX);
            assert_eq!(low, Duration::from_millis(ceiling / 2));
            assert!(
                delay <= Duration::from_millis(ceiling),
                "{delay:?} > {ceiling}"
            );
        }
    }
}
