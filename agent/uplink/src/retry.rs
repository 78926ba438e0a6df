//! Retryable versus fatal, decided here and nowhere else; and the reconnect backoff (the
//! daemons' own, whose default is the agent's).

pub use veu_daemon_kit::backoff::Backoff;

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

#[cfg(test)]
mod tests {
    use super::*;

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
