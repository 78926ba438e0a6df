//! What can go wrong reaching the collector, and gRPC status codes in words: mapped here only.

use std::path::PathBuf;

/// A client that could not connect, or a call the collector refused. Its text is the whole
/// cause chain, so it has no `source()` of its own to print twice.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A PEM file is missing or unreadable.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The collector's URL is not one.
    #[error("invalid collector endpoint {endpoint}: {reason}")]
    Endpoint {
        /// The URL.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The TLS material (CA, certificate or key) was refused.
    #[error("invalid TLS material for {endpoint}: {cause}")]
    Tls {
        /// The URL.
        endpoint: String,
        /// Why, with its sources.
        cause: String,
    },
    /// No connection: nothing listening, a handshake refused, a certificate not valid for the
    /// server name, a timeout.
    #[error("cannot connect to {endpoint}: {cause}")]
    Connect {
        /// The URL.
        endpoint: String,
        /// Why, with its sources.
        cause: String,
    },
    /// The collector answered a call with an error status.
    #[error("the collector answered {}: {message}", code_words(*code))]
    Call {
        /// The status code.
        code: tonic::Code,
        /// The collector's message.
        message: String,
    },
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        Self::Call {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

/// A gRPC status code as words.
pub fn code_words(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown error",
        Code::InvalidArgument => "invalid argument",
        Code::DeadlineExceeded => "deadline exceeded",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "permission denied",
        Code::ResourceExhausted => "resource exhausted",
        Code::FailedPrecondition => "refused (failed precondition)",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out of range",
        Code::Unimplemented => "not implemented",
        Code::Internal => "internal error",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_call_reads_as_the_collectors_answer() {
        let error = ClientError::from(tonic::Status::failed_precondition("agent revoked"));
        assert_eq!(
            error.to_string(),
            "the collector answered refused (failed precondition): agent revoked"
        );
        let error = ClientError::from(tonic::Status::permission_denied("auditors only"));
        assert_eq!(
            error.to_string(),
            "the collector answered permission denied: auditors only"
        );
    }

    #[test]
    fn an_unreadable_file_names_itself() {
        let error = crate::read_pem(std::path::Path::new("/nonexistent/ca.pem")).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("cannot read /nonexistent/ca.pem: "),
            "{text}"
        );
    }
}
