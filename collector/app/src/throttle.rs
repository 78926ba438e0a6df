//! Token buckets per peer (an address, or a certificate's identity) and for everyone together:
//! how often a caller may make the collector work, or be refused.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use std::time::Instant;

/// The most peer buckets kept; past it, full buckets (peers quiet long enough to have
/// their whole burst back) are forgotten, which changes nothing they may do.
const MAX_PEERS: usize = 16_384;

/// A rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Calls per second, sustained.
    pub per_second: f64,
    /// Calls at once after a quiet spell.
    pub burst: u32,
}

/// Why a call was not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This peer called too often.
    Peer,
    /// Everyone together called too often.
    Global,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Self {
        Self {
            tokens: f64::from(rate.burst),
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(f64::from(rate.burst));
        self.at = now;
    }
}

/// Buckets per peer and one for all.
#[derive(Debug)]
pub struct Throttle<K = IpAddr> {
    peer: Rate,
    global: Rate,
    buckets: Mutex<(Bucket, HashMap<K, Bucket>)>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// Full buckets at `now`.
    pub fn new(peer: Rate, global: Rate, now: Instant) -> Self {
        Self {
            peer,
            global,
            buckets: Mutex::new((Bucket::full(global, now), HashMap::new())),
        }
    }

    /// Takes a token for a call from `ip` at `now` (from its bucket and the global one), or
    /// says which bucket is empty; a refused call takes nothing.
    pub fn allow(&self, ip: K, now: Instant) -> Result<(), Refusal> {
        // Every update leaves the buckets consistent; keep serving.
        let mut guard = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let (global, peers) = &mut *guard;
        if peers.len() >= MAX_PEERS && !peers.contains_key(&ip) {
            let rate = self.peer;
            peers.retain(|_, bucket| {
                bucket.refill(rate, now);
                bucket.tokens < f64::from(rate.burst)
            });
        }
        let bucket = peers
            .entry(ip)
            .or_insert_with(|| Bucket::full(self.peer, now));
        bucket.refill(self.peer, now);
        global.refill(self.global, now);
        if bucket.tokens < 1.0 {
            return Err(Refusal::Peer);
        }
        if global.tokens < 1.0 {
            return Err(Refusal::Global);
        }
        bucket.tokens -= 1.0;
        global.tokens -= 1.0;
        Ok(())
    }

    /// Gives back the token a call from `key` took (a call that turned out to cost nothing
    /// worth limiting, such as an enrollment that succeeded).
    pub fn refund(&self, key: &K) {
        let mut guard = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let (global, peers) = &mut *guard;
        global.tokens = (global.tokens + 1.0).min(f64::from(self.global.burst));
        if let Some(bucket) = peers.get_mut(key) {
            bucket.tokens = (bucket.tokens + 1.0).min(f64::from(self.peer.burst));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_peer_gets_its_burst_then_its_rate_and_others_keep_theirs() {
        let mut now = Instant::now();
        let throttle = Throttle::new(
            Rate {
                per_second: 2.0,
                burst: 3,
            },
            Rate {
                per_second: 100.0,
                burst: 100,
            },
            now,
        );
        for _ in 0..3 {
            assert_eq!(throttle.allow(ip(2), now), Ok(()));
        }
        assert_eq!(throttle.allow(ip(2), now), Err(Refusal::Peer));
        assert_eq!(
            throttle.allow(ip(3), now),
            Ok(()),
            "another peer is not held back"
        );
        now += Duration::from_millis(500);
        assert_eq!(
            throttle.allow(ip(2), now),
            Ok(()),
            "one token back after 1/rate"
        );
        assert_eq!(throttle.allow(ip(2), now), Err(Refusal::Peer));
    }

    #[test]
    fn everyone_together_is_held_to_the_global_rate_and_a_refusal_costs_nothing() {
        let mut now = Instant::now();
        let throttle = Throttle::new(
            Rate {
                per_second: 1.0,
                burst: 5,
            },
            Rate {
                per_second: 1.0,
                burst: 4,
            },
            now,
        );
        for last in 1..=4 {
            assert_eq!(throttle.allow(ip(last), now), Ok(()));
        }
        assert_eq!(throttle.allow(ip(5), now), Err(Refusal::Global));
        // Peer 5's bucket was not charged for the refused call.
        now += Duration::from_secs(1);
        assert_eq!(throttle.allow(ip(5), now), Ok(()));
        assert_eq!(throttle.allow(ip(5), now), Err(Refusal::Global));
    }

    #[test]
    fn a_refunded_token_is_taken_again_and_never_above_the_burst() {
        let now = Instant::now();
        let unlimited = Rate {
            per_second: 1e9,
            burst: u32::MAX,
        };
        let throttle = Throttle::new(
            Rate {
                per_second: 1.0,
                burst: 2,
            },
            unlimited,
            now,
        );
        let peer = "urn:veu:agent:a".to_owned();
        for _ in 0..5 {
            assert_eq!(throttle.allow(peer.clone(), now), Ok(()));
            throttle.refund(&peer);
        }
        throttle.refund(&peer);
        throttle.refund(&peer);
        assert_eq!(throttle.allow(peer.clone(), now), Ok(()));
        assert_eq!(throttle.allow(peer.clone(), now), Ok(()));
        assert_eq!(throttle.allow(peer, now), Err(Refusal::Peer));
    }

    #[test]
    fn the_peer_table_stays_bounded_under_many_addresses() {
        let mut now = Instant::now();
        let throttle = Throttle::new(
            Rate {
                per_second: 1.0,
                burst: 1,
            },
            Rate {
                per_second: 1e9,
                burst: u32::MAX,
            },
            now,
        );
        for n in 0..(MAX_PEERS as u32 + 10) {
            let _ = throttle.allow(IpAddr::from(n.to_be_bytes()), now);
            if n % 1000 == 0 {
                now += Duration::from_secs(2);
            }
        }
        let peers = throttle.buckets.lock().unwrap().1.len();
        assert!(peers <= MAX_PEERS, "{peers} buckets");
    }
}
