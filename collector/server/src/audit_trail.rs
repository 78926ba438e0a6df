//! The audit trail: one structured `tracing` event for every administrative and auditor action
//! and every refused caller, with who (the caller's certificate identity), what (the call and its
//! subject, never a secret) and the outcome. Every handler records through [`record`], so the
//! fields are the same for all of them.
//!
//! Those actions that change the books (enrolment, re-binding, revocation, decommissioning) are
//! also leaves of the transparency log; this trail adds the reads and the refusals, in the
//! process log only.

use std::fmt;

use tonic::{Code, Request, Response, Status};

use crate::identity;

/// The `target` of every audit event, so that an operator can route or filter the trail.
pub const TARGET: &str = "veu::audit";

/// What became of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done as asked.
    Ok,
    /// Refused: the caller may not do it, or what it asked is not possible.
    Refused(String),
    /// Not done because the collector failed (store, internal error).
    Failed(String),
}

impl Outcome {
    /// The outcome a gRPC answer reports: an error status is a refusal unless the collector
    /// itself failed.
    pub fn of<T>(result: &Result<Response<T>, Status>) -> Self {
        match result {
            Ok(_) => Outcome::Ok,
            Err(status) => Self::of_status(status),
        }
    }

    /// The outcome of an error status.
    pub fn of_status(status: &Status) -> Self {
        let reason = status.message().to_owned();
        match status.code() {
            Code::Unavailable | Code::Internal | Code::DataLoss | Code::Unknown => {
                Outcome::Failed(reason)
            }
            _ => Outcome::Refused(reason),
        }
    }

    /// `ok`, `refused` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused(_) => "refused",
            Outcome::Failed(_) => "failed",
        }
    }

    fn reason(&self) -> &str {
        match self {
            Outcome::Ok => "",
            Outcome::Refused(reason) | Outcome::Failed(reason) => reason,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            other => write!(f, "{}: {}", other.as_str(), other.reason()),
        }
    }
}

/// Who is calling, as the trail names it: the certificate's `urn:veu:<role>:<name>`, `anonymous`
/// without a certificate, or `unidentified` when the certificate names no valid identity.
pub fn caller<T>(request: &Request<T>) -> String {
    match identity::peer(request) {
        Ok(identity) => identity.to_string(),
        Err(_) if request.peer_certs().is_none_or(|certs| certs.is_empty()) => {
            "anonymous".to_owned()
        }
        Err(_) => "unidentified".to_owned(),
    }
}

/// Records one action: at info when done, at warn when refused or failed.
pub fn record(who: &str, action: &str, subject: &str, outcome: &Outcome) {
    let result = outcome.as_str();
    let reason = outcome.reason();
    // `audit = true` marks the trail where the log format shows no target.
    if *outcome == Outcome::Ok {
        tracing::info!(target: TARGET, audit = true, who, action, subject, outcome = result, "{action} by {who}: {result}");
    } else {
        tracing::warn!(target: TARGET, audit = true, who, action, subject, outcome = result, reason, "{action} by {who}: {result}: {reason}");
    }
}

/// Records the outcome of a handler's answer and passes the answer on.
pub fn answer<T>(
    who: &str,
    action: &str,
    subject: &str,
    result: Result<Response<T>, Status>,
) -> Result<Response<T>, Status> {
    record(who, action, subject, &Outcome::of(&result));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_status_is_a_refusal_unless_the_collector_failed() {
        let table = [
            (Status::permission_denied("no"), "refused"),
            (Status::unauthenticated("no"), "refused"),
            (Status::invalid_argument("no"), "refused"),
            (Status::not_found("no"), "refused"),
            (Status::failed_precondition("no"), "refused"),
            (Status::already_exists("no"), "refused"),
            (Status::unavailable("down"), "failed"),
            (Status::internal("bug"), "failed"),
            (Status::data_loss("lost"), "failed"),
        ];
        for (status, expected) in table {
            assert_eq!(Outcome::of_status(&status).as_str(), expected, "{status:?}");
        }
        assert_eq!(
            Outcome::Refused("no active key".into()).to_string(),
            "refused: no active key"
        );
    }
}
