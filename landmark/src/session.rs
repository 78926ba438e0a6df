//! One measurement over one agent's connection (the protocol of `proto_location::probe`):
//! read the Hello within its deadline, send `rounds` fresh nonces one at a time, time each
//! from the moment its Challenge is written to the Answer's last byte, check every answer with
//! the key the Hello named, and sign the fastest round.
//!
//! Invariant: a statement is signed only when every answer verified; nothing read is larger
//! than the frame due (the Hello's head, then exactly the host id it announces, then exactly
//! 64 bytes per round).

use std::time::{Duration, Instant};

use proto_evidence::{Coordinates, Measurement, SignedMeasurement};
use proto_location::probe::{ANSWER_LEN, HELLO_HEAD, Hello, LandmarkFrame};
use proto_seal::{Ed25519Signer, PublicKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use veu_daemon_kit::now_unix_ms;

/// Who measures: the landmark's id, its surveyed coordinates and its signing key.
#[derive(Debug)]
pub struct Identity {
    /// The landmark's id (the name in its `landmark` certificate).
    pub id: String,
    /// Where it stands.
    pub at: Coordinates,
    /// Signs its statements.
    pub signer: Ed25519Signer,
}

/// The bounds of a measurement and of the sessions served at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rounds per measurement, each with its own nonce.
    pub rounds: u32,
    /// Sessions served at once; a connection beyond them is closed at once.
    pub max_sessions: usize,
    /// Deadline for the Hello, from the connection's acceptance.
    pub hello_timeout: Duration,
    /// Deadline for the whole session.
    pub session_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rounds: 8,
            max_sessions: 256,
            hello_timeout: Duration::from_secs(5),
            session_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a session ended without a statement.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No complete Hello within the deadline.
    #[error("no hello within {0:?}")]
    HelloTimeout(Duration),
    /// The session outlived its deadline.
    #[error("the session took longer than {0:?}")]
    SessionTimeout(Duration),
    /// The peer sent something other than a probe Hello.
    #[error("not a probe: {0}")]
    NotAProbe(#[from] proto_location::probe::ProbeError),
    /// The Hello names bytes that are no Ed25519 public key.
    #[error("the agent key is not an Ed25519 public key")]
    BadKey,
    /// An answer did not verify with the key the Hello named.
    #[error("an answer does not verify with the agent's key")]
    BadAnswer,
    /// The connection failed or closed early.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// The statement could not be signed (an id the encoding refuses).
    #[error("cannot sign the statement: {0}")]
    Sign(#[from] proto_seal::MeasurementError),
}

/// The reason sent to an agent whose answer does not verify.
pub const BAD_ANSWER: &str = "answer does not verify";

/// Measures the agent on `stream` and signs the fastest round. A refusal is sent to the agent
/// when the Hello or an answer is bad; no statement is made then.
pub async fn measure<S>(
    stream: &mut S,
    identity: &Identity,
    limits: &Limits,
) -> Result<SignedMeasurement, SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let session = async {
        let hello = match tokio::time::timeout(limits.hello_timeout, read_hello(stream)).await {
            Err(_elapsed) => return Err(SessionError::HelloTimeout(limits.hello_timeout)),
            Ok(Err(SessionError::NotAProbe(error))) => {
                refuse(stream, &error.to_string()).await;
                return Err(SessionError::NotAProbe(error));
            }
            Ok(result) => result?,
        };
        let Ok(key) = PublicKey::from_slice(&hello.agent_key) else {
            refuse(stream, "the agent key is not an Ed25519 public key").await;
            return Err(SessionError::BadKey);
        };
        let rounds = limits.rounds.max(1);
        let fastest = rounds_against(stream, &key, rounds).await?;
        let min_rtt_us = u64::try_from(fastest.rtt.as_micros()).unwrap_or(u64::MAX);
        stream
            .write_all(&LandmarkFrame::Done { min_rtt_us, rounds }.encode())
            .await?;
        stream.flush().await?;
        let measurement = Measurement {
            landmark: identity.id.clone(),
            at: identity.at,
            host: hello.host,
            agent_key: hello.agent_key,
            min_rtt_us,
            rounds,
            measured_at_ms: now_unix_ms(),
            nonce: fastest.nonce,
            answer: fastest.answer,
        };
        Ok(proto_seal::sign_measurement(
            &measurement,
            &identity.signer,
        )?)
    };
    tokio::time::timeout(limits.session_timeout, session)
        .await
        .map_err(|_elapsed| SessionError::SessionTimeout(limits.session_timeout))?
}

/// The fastest round so far.
struct Round {
    rtt: Duration,
    nonce: [u8; 32],
    answer: [u8; 64],
}

async fn read_hello<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Hello, SessionError> {
    let mut head = [0; HELLO_HEAD];
    stream.read_exact(&mut head).await?;
    let (_, host_len) = Hello::decode_head(&head)?;
    let mut host = vec![0; host_len];
    stream.read_exact(&mut host).await?;
    Ok(Hello::decode(&head, &host)?)
}

async fn rounds_against<S>(
    stream: &mut S,
    key: &PublicKey,
    rounds: u32,
) -> Result<Round, SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let random = SystemRandom::new();
    let mut fastest: Option<Round> = None;
    for _ in 0..rounds {
        let mut nonce = [0; 32];
        random.fill(&mut nonce).map_err(|_| SessionError::Random)?;
        let challenge = LandmarkFrame::Challenge(nonce).encode();
        stream.write_all(&challenge).await?;
        stream.flush().await?;
        // The clock runs from the moment the Challenge left to the Answer's last byte: only
        // the path and the agent's signing are inside it.
        let started = Instant::now();
        let mut answer = [0; ANSWER_LEN];
        stream.read_exact(&mut answer).await?;
        let rtt = started.elapsed();
        if proto_seal::check_rtt_answer(key, &nonce, &answer).is_err() {
            refuse(stream, BAD_ANSWER).await;
            return Err(SessionError::BadAnswer);
        }
        if fastest.as_ref().is_none_or(|best| rtt < best.rtt) {
            fastest = Some(Round { rtt, nonce, answer });
        }
    }
    // `rounds` is at least one, so a round was kept; an empty run is a timeout-like failure.
    fastest.ok_or(SessionError::SessionTimeout(Duration::ZERO))
}

/// Tells the agent why, as far as the connection still carries it.
async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, reason: &str) {
    let frame = LandmarkFrame::Refused(reason.to_owned()).encode();
    if stream.write_all(&frame).await.is_ok() {
        let _ = stream.flush().await;
    }
}
