//! The probe protocol between an agent and a landmark, over one TCP connection the agent opens
//! (agents sit behind NAT; landmarks listen on the internet). Every frame has a fixed or
//! bounded size, so either side reads exactly what it expects and no more:
//!
//! ```text
//! agent    → landmark  Hello     "VEUPROBE" 0x01 | agent public key (32) | host id length (1) | host id
//! landmark → agent     Challenge 0x01 | nonce (32)
//! agent    → landmark  Answer    signature (64): Ed25519 over RTT_ANSWER_CONTEXT ‖ nonce ‖ key id
//! landmark → agent     Done      0x02 | min RTT µs (8) | rounds (4)
//! landmark → agent     Refused   0x03 | reason length (1) | reason (UTF-8)
//! ```
//!
//! The landmark times each Challenge from the write to the Answer's last byte, checks the
//! signature, and keeps the fastest round. Nothing here needs TLS: the answer is signed by the
//! agent's key and the statement by the landmark's; a relay in the path can only add delay.

/// The first bytes of a Hello.
pub const MAGIC: &[u8; 8] = b"VEUPROBE";

/// Protocol version in the Hello.
pub const VERSION: u8 = 1;

/// Length of a Hello before the host id: magic, version, key, id length.
pub const HELLO_HEAD: usize = 8 + 1 + 32 + 1;

/// Length of a Challenge frame.
pub const CHALLENGE_LEN: usize = 33;

/// Length of an Answer frame.
pub const ANSWER_LEN: usize = 64;

/// Length of a Done frame.
pub const DONE_LEN: usize = 13;

const CHALLENGE: u8 = 1;
const DONE: u8 = 2;
const REFUSED: u8 = 3;

/// The agent's first frame: who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The agent's raw Ed25519 public key (its attestation key).
    pub agent_key: [u8; 32],
    /// The host it serves (1–255 bytes of `A-Za-z0-9-_.:`).
    pub host: String,
}

/// Bytes that break the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Not a probe Hello (wrong magic) or another version.
    #[error("not a veu probe hello of version {VERSION}")]
    NotAProbe,
    /// The host id is empty, too long or holds a character outside `A-Za-z0-9-_.:`.
    #[error("the hello's host id is not 1 to 255 characters of A-Za-z0-9-_.:")]
    BadHost,
    /// The frame's kind byte names no landmark frame.
    #[error("unknown landmark frame kind {0}")]
    Kind(u8),
    /// A frame of the wrong length.
    #[error("a frame of {0} bytes where another length was due")]
    Length(usize),
}

impl Hello {
    /// The frame's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, ProbeError> {
        check_host(&self.host)?;
        let mut out = Vec::with_capacity(HELLO_HEAD + self.host.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.agent_key);
        out.push(self.host.len() as u8);
        out.extend_from_slice(self.host.as_bytes());
        Ok(out)
    }

    /// Reads the fixed head ([`HELLO_HEAD`] bytes): the key and how many host id bytes follow.
    pub fn decode_head(head: &[u8]) -> Result<([u8; 32], usize), ProbeError> {
        if head.len() != HELLO_HEAD {
            return Err(ProbeError::Length(head.len()));
        }
        if &head[..8] != MAGIC || head[8] != VERSION {
            return Err(ProbeError::NotAProbe);
        }
        let mut key = [0; 32];
        key.copy_from_slice(&head[9..41]);
        let len = usize::from(head[41]);
        if len == 0 {
            return Err(ProbeError::BadHost);
        }
        Ok((key, len))
    }

    /// The whole Hello from its head and the host id bytes after it.
    pub fn decode(head: &[u8], host: &[u8]) -> Result<Self, ProbeError> {
        let (agent_key, len) = Self::decode_head(head)?;
        if host.len() != len {
            return Err(ProbeError::Length(host.len()));
        }
        let host = std::str::from_utf8(host).map_err(|_| ProbeError::BadHost)?;
        check_host(host)?;
        Ok(Self {
            agent_key,
            host: host.to_owned(),
        })
    }
}

/// What a landmark sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LandmarkFrame {
    /// Answer this nonce now.
    Challenge([u8; 32]),
    /// The measurement is over: its fastest round trip and the rounds it took.
    Done {
        /// Fastest round trip, µs.
        min_rtt_us: u64,
        /// Rounds.
        rounds: u32,
    },
    /// The landmark will not measure this agent, and why.
    Refused(String),
}

impl LandmarkFrame {
    /// The frame's bytes (a refusal's reason is cut to 255 bytes at a character boundary).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Challenge(nonce) => {
                let mut out = vec![CHALLENGE];
                out.extend_from_slice(nonce);
                out
            }
            Self::Done { min_rtt_us, rounds } => {
                let mut out = vec![DONE];
                out.extend_from_slice(&min_rtt_us.to_be_bytes());
                out.extend_from_slice(&rounds.to_be_bytes());
                out
            }
            Self::Refused(reason) => {
                let mut cut = reason.len().min(255);
                while !reason.is_char_boundary(cut) {
                    cut -= 1;
                }
                let mut out = vec![REFUSED, cut as u8];
                out.extend_from_slice(&reason.as_bytes()[..cut]);
                out
            }
        }
    }

    /// How many bytes follow a frame's kind byte: fixed for Challenge and Done; for Refused,
    /// one length byte (then that many bytes: see [`LandmarkFrame::decode`]).
    pub fn body_len(kind: u8) -> Result<usize, ProbeError> {
        match kind {
            CHALLENGE => Ok(CHALLENGE_LEN - 1),
            DONE => Ok(DONE_LEN - 1),
            REFUSED => Ok(1),
            other => Err(ProbeError::Kind(other)),
        }
    }

    /// A frame from its kind byte and body (for Refused: the length byte, then the reason).
    pub fn decode(kind: u8, body: &[u8]) -> Result<Self, ProbeError> {
        match kind {
            CHALLENGE => {
                let nonce: [u8; 32] = body
                    .try_into()
                    .map_err(|_| ProbeError::Length(body.len()))?;
                Ok(Self::Challenge(nonce))
            }
            DONE => {
                if body.len() != DONE_LEN - 1 {
                    return Err(ProbeError::Length(body.len()));
                }
                let mut rtt = [0; 8];
                rtt.copy_from_slice(&body[..8]);
                let mut rounds = [0; 4];
                rounds.copy_from_slice(&body[8..12]);
                Ok(Self::Done {
                    min_rtt_us: u64::from_be_bytes(rtt),
                    rounds: u32::from_be_bytes(rounds),
                })
            }
            REFUSED => {
                let (&len, reason) = body.split_first().ok_or(ProbeError::Length(0))?;
                if reason.len() != usize::from(len) {
                    return Err(ProbeError::Length(reason.len()));
                }
                Ok(Self::Refused(String::from_utf8_lossy(reason).into_owned()))
            }
            other => Err(ProbeError::Kind(other)),
        }
    }
}

fn check_host(host: &str) -> Result<(), ProbeError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if host.is_empty() || host.len() > 255 || !host.chars().all(allowed) {
        return Err(ProbeError::BadHost);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_and_refuses_strangers() {
        let hello = Hello {
            agent_key: [7; 32],
            host: "gpu-node-1".into(),
        };
        let bytes = hello.encode().unwrap();
        let (head, host) = bytes.split_at(HELLO_HEAD);
        assert_eq!(Hello::decode(head, host).unwrap(), hello);
        let mut http = b"GET / HTTP/1.1\r\n".to_vec();
        http.resize(HELLO_HEAD, b' ');
        assert_eq!(Hello::decode_head(&http), Err(ProbeError::NotAProbe));
        assert_eq!(Hello::decode(head, b"evil\x1b"), Err(ProbeError::Length(5)));
        let mut bad = head.to_vec();
        bad[41] = 5;
        assert_eq!(Hello::decode(&bad, b"evil\x1b"), Err(ProbeError::BadHost));
        assert!(
            Hello {
                agent_key: [0; 32],
                host: String::new()
            }
            .encode()
            .is_err()
        );
    }

    #[test]
    fn landmark_frames_round_trip() {
        for frame in [
            LandmarkFrame::Challenge([9; 32]),
            LandmarkFrame::Done {
                min_rtt_us: 1234,
                rounds: 8,
            },
            LandmarkFrame::Refused("host not enrolled".into()),
        ] {
            let bytes = frame.encode();
            let body_len = LandmarkFrame::body_len(bytes[0]).unwrap();
            assert!(bytes.len() > body_len);
            assert_eq!(LandmarkFrame::decode(bytes[0], &bytes[1..]).unwrap(), frame);
        }
        assert_eq!(LandmarkFrame::body_len(9), Err(ProbeError::Kind(9)));
        let long = LandmarkFrame::Refused("é".repeat(200)).encode();
        assert!(long.len() <= 257);
    }
}
