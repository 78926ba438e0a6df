//! The agent's side of a landmark measurement (`proto_location::probe`): connect out to the
//! landmark, introduce the host and its attestation key, and answer every Challenge at once
//! with the key; the landmark times the rounds and signs the fastest for the collector.
//!
//! Invariant: between reading a Challenge and writing its Answer nothing happens but the
//! signature (that delay counts against the agent's own location); every read is bounded by
//! its frame's size, and the whole probe by one deadline.

use std::time::Duration;

use proto_evidence::location::MAX_ROUNDS;
use proto_location::probe::{self, Hello, LandmarkFrame};
use proto_seal::Ed25519Signer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// How a probe ended, when the landmark answered to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The landmark measured: its fastest round trip and the rounds it took. It submits the
    /// signed statement to the collector itself.
    Measured {
        /// Fastest round trip, µs.
        min_rtt_us: u64,
        /// Rounds measured.
        rounds: u32,
    },
    /// The landmark would not measure this agent, and why.
    Refused(String),
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The landmark could not be reached.
    #[error("cannot connect to landmark {address}: {source}")]
    Connect {
        /// `host:port`.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The connection failed or closed before the landmark said Done or Refused.
    #[error("connection to landmark {address}: {source}")]
    Io {
        /// `host:port`.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The landmark broke the protocol, or the Hello could not be made (a host id outside
    /// `A-Za-z0-9-_.:`).
    #[error("landmark {address}: {source}")]
    Protocol {
        /// `host:port`.
        address: String,
        /// What.
        source: probe::ProbeError,
    },
    /// More Challenges than any measurement may have.
    #[error("landmark {address} sent more than {MAX_ROUNDS} challenges")]
    TooManyChallenges {
        /// `host:port`.
        address: String,
    },
    /// The probe did not end within its deadline.
    #[error("landmark {address} did not finish within {deadline:?}")]
    Timeout {
        /// `host:port`.
        address: String,
        /// The deadline.
        deadline: Duration,
    },
}

/// Probes the landmark at `addr` (`host:port`) for `host`, answering with `signer` (the
/// agent's attestation key), all within `deadline`.
pub async fn probe_landmark(
    addr: &str,
    host: &str,
    signer: &Ed25519Signer,
    deadline: Duration,
) -> Result<ProbeOutcome, ProbeError> {
    tokio::time::timeout(deadline, exchange(addr, host, signer))
        .await
        .map_err(|_elapsed| ProbeError::Timeout {
            address: addr.to_owned(),
            deadline,
        })?
}

async fn exchange(
    addr: &str,
    host: &str,
    signer: &Ed25519Signer,
) -> Result<ProbeOutcome, ProbeError> {
    let protocol = |source| ProbeError::Protocol {
        address: addr.to_owned(),
        source,
    };
    let io = |source| ProbeError::Io {
        address: addr.to_owned(),
        source,
    };
    let hello = Hello {
        agent_key: *signer.public_key().as_bytes(),
        host: host.to_owned(),
    }
    .encode()
    .map_err(protocol)?;
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|source| ProbeError::Connect {
            address: addr.to_owned(),
            source,
        })?;
    stream.set_nodelay(true).map_err(io)?;
    stream.write_all(&hello).await.map_err(io)?;
    let mut challenges = 0u32;
    loop {
        let kind = stream.read_u8().await.map_err(io)?;
        let body_len = LandmarkFrame::body_len(kind).map_err(protocol)?;
        let mut body = vec![0; body_len];
        stream.read_exact(&mut body).await.map_err(io)?;
        if let Ok(LandmarkFrame::Challenge(nonce)) = LandmarkFrame::decode(kind, &body) {
            // Nothing but the signature between the read and the write.
            let answer = proto_seal::answer_rtt(&nonce, signer);
            stream.write_all(&answer).await.map_err(io)?;
            challenges += 1;
            if challenges > MAX_ROUNDS {
                return Err(ProbeError::TooManyChallenges {
                    address: addr.to_owned(),
                });
            }
            continue;
        }
        // A Refused frame's body so far is its length byte: the reason follows.
        if body_len == 1 {
            let mut reason = vec![0; usize::from(body[0])];
            stream.read_exact(&mut reason).await.map_err(io)?;
            body.extend_from_slice(&reason);
        }
        return match LandmarkFrame::decode(kind, &body).map_err(protocol)? {
            LandmarkFrame::Done { min_rtt_us, rounds } => {
                Ok(ProbeOutcome::Measured { min_rtt_us, rounds })
            }
            LandmarkFrame::Refused(reason) => Ok(ProbeOutcome::Refused(reason)),
            // Decoded above as a Challenge already.
            LandmarkFrame::Challenge(_) => Err(protocol(probe::ProbeError::Kind(kind))),
        };
    }
}
