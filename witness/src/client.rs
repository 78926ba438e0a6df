//! The client side of `add-checkpoint`, which a log (the collector) uses to submit each new
//! checkpoint: plain HTTP/1.1 over one TCP connection per call, with one deadline for all of it.
//!
//! The cosignatures it returns are parsed, not verified: add them to the checkpoint note and
//! verify it with the witness's pinned key (`proto_note::SignedNote::verify`). A 409 carries the
//! witness's latest size ([`AddError::witness_size`]): the caller resends with a consistency
//! proof from that size.

use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use proto_note::{
    AddCheckpointRequest, Hash, NoteSignature, RequestError, SIZE_CONTENT_TYPE, SignedNote,
    parse_cosignatures, parse_size_body,
};
use tokio::net::TcpStream;

/// The largest answer read from a witness.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// How much of an error body is kept.
const MESSAGE_CHARS: usize = 300;

/// Submits `checkpoint_note` (a signed checkpoint, encoded) to the witness at `url`
/// (`http://host:port`, optionally followed by the witness's submission prefix), claiming the
/// witness last cosigned size `old_size`, with the consistency proof from that size. Returns
/// the witness's cosignature lines, unverified. Everything, connecting included, happens within
/// `timeout`.
pub async fn add_checkpoint(
    url: &str,
    old_size: u64,
    proof: &[Hash],
    checkpoint_note: &str,
    timeout: Duration,
) -> Result<Vec<NoteSignature>, AddError> {
    let target = WitnessUrl::parse(url)?;
    let note = SignedNote::parse(checkpoint_note.as_bytes()).map_err(RequestError::from)?;
    let body = AddCheckpointRequest::new(old_size, proof.to_vec(), note)?.to_string();
    match tokio::time::timeout(timeout, exchange(&target, body)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(AddError::Timeout(timeout)),
    }
}

async fn exchange(target: &WitnessUrl, body: String) -> Result<Vec<NoteSignature>, AddError> {
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(AddError::Io)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(AddError::Http)?;
    // The connection runs beside the request and is stopped when this call returns.
    let driver = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/add-checkpoint", target.prefix))
        .header(HOST, &target.authority)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .map_err(|error| AddError::Url(error.to_string()))?;
    let response = sender.send_request(request).await.map_err(AddError::Http)?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|error| AddError::InvalidResponse(format!("cannot read the answer: {error}")))?
        .to_bytes();
    drop(driver);
    let message = || {
        String::from_utf8_lossy(&body)
            .trim_end()
            .chars()
            .take(MESSAGE_CHARS)
            .collect::<String>()
    };
    match status {
        200 => parse_cosignatures(&body)
            .map_err(|error| AddError::InvalidResponse(format!("200 with {error}"))),
        409 => {
            if !content_type.starts_with(SIZE_CONTENT_TYPE) {
                return Err(AddError::InvalidResponse(format!(
                    "409 with content type {content_type:?}, not {SIZE_CONTENT_TYPE}"
                )));
            }
            match parse_size_body(&body) {
                Ok(witness_size) => Err(AddError::Conflict { witness_size }),
                Err(error) => Err(AddError::InvalidResponse(format!("409 with {error}"))),
            }
        }
        400 => Err(AddError::BadRequest { message: message() }),
        403 => Err(AddError::Forbidden { message: message() }),
        404 => Err(AddError::NotFound { message: message() }),
        422 => Err(AddError::InvalidProof { message: message() }),
        status => Err(AddError::Status {
            status,
            message: message(),
        }),
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `http://host[:port][/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WitnessUrl {
    host: String,
    port: u16,
    authority: String,
    prefix: String,
}

impl WitnessUrl {
    fn parse(url: &str) -> Result<Self, AddError> {
        let invalid = |why: &str| AddError::Url(format!("{url:?}: {why}"));
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| invalid("only http:// URLs are supported"))?;
        if rest.contains(|c: char| c.is_whitespace() || "?#@".contains(c)) {
            return Err(invalid(
                "a witness URL has no spaces, query, fragment or user",
            ));
        }
        let (authority, prefix) = match rest.find('/') {
            Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| invalid("an IPv6 address ends with ']'"))?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let port = match port {
            Some(port) => port
                .parse()
                .map_err(|_| invalid("the port is not a number from 1 to 65535"))?,
            None => 80,
        };
        if port == 0 {
            return Err(invalid("the port is not a number from 1 to 65535"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

/// Why a witness gave no cosignature.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The URL is not `http://host:port[/prefix]`.
    #[error("invalid witness URL {0}")]
    Url(String),
    /// The checkpoint or proof cannot make a request.
    #[error("cannot make the request: {0}")]
    Request(#[from] RequestError),
    /// 409: the witness's latest cosigned size is not the old size sent.
    #[error(
        "the witness's latest cosigned size for this log is {witness_size}: resend with a consistency proof from it"
    )]
    Conflict {
        /// The witness's latest cosigned size.
        witness_size: u64,
    },
    /// 422: the proof does not verify, or the root differs at the same size.
    #[error("the witness found the checkpoint inconsistent with what it cosigned (422): {message}")]
    InvalidProof {
        /// The witness's explanation.
        message: String,
    },
    /// 403: the witness does not accept the log's signature.
    #[error("the witness does not accept the checkpoint's signature (403): {message}")]
    Forbidden {
        /// The witness's explanation.
        message: String,
    },
    /// 404: the witness does not follow this origin.
    #[error("the witness does not follow this log (404): {message}")]
    NotFound {
        /// The witness's explanation.
        message: String,
    },
    /// 400: the witness could not parse the request.
    #[error("the witness refused the request as malformed (400): {message}")]
    BadRequest {
        /// The witness's explanation.
        message: String,
    },
    /// Any other status.
    #[error("the witness answered HTTP {status}: {message}")]
    Status {
        /// The status code.
        status: u16,
        /// The body, shortened.
        message: String,
    },
    /// An answer that does not follow the protocol.
    #[error("the witness's answer is invalid: {0}")]
    InvalidResponse(String),
    /// Connecting failed.
    #[error("cannot connect to the witness: {0}")]
    Io(#[source] std::io::Error),
    /// The HTTP exchange failed.
    #[error("HTTP exchange with the witness failed: {0}")]
    Http(#[source] hyper::Error),
    /// No complete answer within the deadline.
    #[error("no answer from the witness within {0:?}")]
    Timeout(Duration),
}

impl AddError {
    /// The witness's latest cosigned size, from a 409.
    pub fn witness_size(&self) -> Option<u64> {
        match self {
            Self::Conflict { witness_size } => Some(*witness_size),
            _ => None,
        }
    }

    /// Whether the same request may succeed later (transport trouble, a busy or failing
    /// witness), as opposed to a refusal that repeats until something changes.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Io(_) | Self::Http(_) | Self::Timeout(_) => true,
            Self::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            Self::Url(_)
            | Self::Request(_)
            | Self::Conflict { .. }
            | Self::InvalidProof { .. }
            | Self::Forbidden { .. }
            | Self::NotFound { .. }
            | Self::BadRequest { .. }
            | Self::InvalidResponse(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn witness_urls_name_host_port_and_prefix() {
        let url = WitnessUrl::parse("http://127.0.0.1:7380").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.prefix.as_str()),
            ("127.0.0.1", 7380, "")
        );
        let url = WitnessUrl::parse("http://witness.example/api/").unwrap();
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.prefix.as_str(),
                url.authority.as_str()
            ),
            ("witness.example", 80, "/api", "witness.example")
        );
        let url = WitnessUrl::parse("http://[::1]:9/w").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.prefix.as_str()),
            ("::1", 9, "/w")
        );
        for bad in [
            "https://w:1",
            "w:1",
            "http://",
            "http://:80",
            "http://w:0",
            "http://w:99999",
            "http://w:x",
            "http://u@w:1",
            "http://w:1/?q",
            "http://[::1:1",
        ] {
            assert!(WitnessUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
