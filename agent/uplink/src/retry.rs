//! Retryable versus fatal, decided here and nowhere else; and the reconnect backoff.

use std::time::Duration;

use proto_evidence::RejectReason;

/// What to do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Reconnect after a backoff; nothing is lost (the spool keeps every unacknowledged entry).
    Retry,
    /// The collector refuses this agent; retrying cannot help, the operator must act.
    Fatal,
    /// This one entry will never be accepted: set it aside and go on with the next.
    SetAside,
}

/// Classifies a gRPC status ending a stream or failing a call.
pub fn classify_status(code: tonic::Code) -> Disposition {
    use tonic::Code;
    match code {
        // Identity: a revoked or unknown certificate, or a role that may not submit.
        Code::Unauthenticated | Code::PermissionDenied => Disposition::Fatal,
        // The collector speaks another protocol version.
        Code::Unimplemented => Disposition::Fatal,
        // Everything else is transient from the agent's point of view: overload, restarts,
        // network trouble, deadlines, and even internal errors of a collector being fixed.
        _ => Disposition::Retry,
    }
}

/// Classifies the collector's refusal of one attestation; `None` is a reason this agent does not
/// know (or none), retried.
pub fn classify_reject(reason: Option<RejectReason>) -> Disposition {
    let Some(reason) = reason else {
        return Disposition::Retry;
    };
    match reason {
        RejectReason::UnknownKey | RejectReason::RevokedKey | RejectReason::KeyIdentityMismatch => {
            Disposition::Fatal
        }
        RejectReason::ProtocolViolation | RejectReason::UnsupportedAlgorithm => Disposition::Fatal,
        // The same bytes would be refused again: keep them for forensics, send the next.
        RejectReason::BadSignature
        | RejectReason::Malformed
        | RejectReason::Oversized
        | RejectReason::SequenceRollback
        | RejectReason::Fork
        | RejectReason::PreviousDigestMismatch
        | RejectReason::ClockSkew
        | RejectReason::StaleNonce
        | RejectReason::SiteMismatch
        | RejectReason::CatalogueMismatch
        | RejectReason::SimulatedEvidence
        | RejectReason::Backdated
        | RejectReason::DuplicateGpu => Disposition::SetAside,
    }
}

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay's upper bound.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
}

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
    /// The next delay: uniform in [ceiling / 2, ceiling] where the ceiling doubles each attempt
    /// up to the maximum, so a fleet that lost its collector does not reconnect in lockstep.
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

    #[test]
    fn identity_problems_are_fatal_transient_ones_retry() {
        assert_eq!(
            classify_status(tonic::Code::Unavailable),
            Disposition::Retry
        );
        assert_eq!(classify_status(tonic::Code::Internal), Disposition::Retry);
        assert_eq!(
            classify_status(tonic::Code::DeadlineExceeded),
            Disposition::Retry
        );
        assert_eq!(
            classify_status(tonic::Code::PermissionDenied),
            Disposition::Fatal
        );
        assert_eq!(
            classify_status(tonic::Code::Unauthenticated),
            Disposition::Fatal
        );
        assert_eq!(
            classify_reject(Some(RejectReason::RevokedKey)),
            Disposition::Fatal
        );
        assert_eq!(
            classify_reject(Some(RejectReason::BadSignature)),
            Disposition::SetAside
        );
        assert_eq!(
            classify_reject(Some(RejectReason::StaleNonce)),
            Disposition::SetAside
        );
        assert_eq!(classify_reject(None), Disposition::Retry);
    }
}
