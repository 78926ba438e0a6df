//! Round-trip-time evidence of where an agent's key answers from (docs/location.md).
//!
//! A landmark at surveyed coordinates sends an agent fresh nonces; the agent answers each at
//! once with its attestation key over [`rtt_answer_payload`]. The landmark keeps the fastest
//! round and signs a [`Measurement`] naming the host, the agent's key, its own id and
//! coordinates, the minimum round trip and when. Delay can be added on a path, never removed,
//! so the minimum bounds the distance between the landmark and whoever held the key.
//!
//! The encodings are fixed-width big-endian fields and length-prefixed strings with a version
//! byte first, like the log's, so every party signs and hashes the same bytes.

use crate::log::{LogDecodeError, Reader, put_str};
use crate::{KeyId, Sha256};

/// Domain-separation context a landmark signs before a measurement statement.
pub const MEASUREMENT_CONTEXT: &[u8] = b"veu-attest/v1/location-measurement\0";

/// Domain-separation context an agent signs before a landmark's nonce and its key id.
pub const RTT_ANSWER_CONTEXT: &[u8] = b"veu-attest/v1/rtt-answer\0";

/// Version byte of the statement and signed-statement encodings.
const FORMAT: u8 = 1;

/// Most rounds a statement may claim.
pub const MAX_ROUNDS: u32 = 10_000;

/// Longest landmark or host id a statement holds, in bytes.
pub const MAX_MEASUREMENT_ID_BYTES: usize = 256;

/// Longest encoded statement (two ids at their limit plus the fixed fields).
pub const MAX_STATEMENT_BYTES: usize =
    2 + 2 * (2 + MAX_MEASUREMENT_ID_BYTES) + 8 + 32 + 8 + 4 + 8 + 32 + 64;

/// Longest encoded signed statement.
pub const MAX_SIGNED_MEASUREMENT_BYTES: usize = 1 + 2 + MAX_STATEMENT_BYTES + 64;

/// A point on the Earth in units of 10⁻⁷ degree (about 1 cm), so that it encodes exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Coordinates {
    lat_e7: i32,
    lon_e7: i32,
}

/// Coordinates outside the globe.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error(
    "latitude {latitude} and longitude {longitude} are not a point on Earth (latitude −90..90, longitude −180..180)"
)]
pub struct CoordinatesError {
    /// The latitude given.
    pub latitude: f64,
    /// The longitude given.
    pub longitude: f64,
}

impl Coordinates {
    /// From degrees, rounded to 10⁻⁷; refuses NaN and points off the globe.
    pub fn from_degrees(latitude: f64, longitude: f64) -> Result<Self, CoordinatesError> {
        let error = CoordinatesError {
            latitude,
            longitude,
        };
        if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
            return Err(error);
        }
        // In range, so both fit an i32 (1.8e9 < 2^31).
        Ok(Self {
            lat_e7: (latitude * 1e7).round() as i32,
            lon_e7: (longitude * 1e7).round() as i32,
        })
    }

    /// From units of 10⁻⁷ degree; refuses points off the globe.
    pub fn from_e7(lat_e7: i32, lon_e7: i32) -> Result<Self, CoordinatesError> {
        let point = Self { lat_e7, lon_e7 };
        if lat_e7.unsigned_abs() > 900_000_000 || lon_e7.unsigned_abs() > 1_800_000_000 {
            return Err(CoordinatesError {
                latitude: point.latitude(),
                longitude: point.longitude(),
            });
        }
        Ok(point)
    }

    /// Latitude in degrees, north positive.
    pub fn latitude(&self) -> f64 {
        f64::from(self.lat_e7) / 1e7
    }

    /// Longitude in degrees, east positive.
    pub fn longitude(&self) -> f64 {
        f64::from(self.lon_e7) / 1e7
    }

    /// The encoded units.
    pub fn e7(&self) -> (i32, i32) {
        (self.lat_e7, self.lon_e7)
    }
}

impl std::fmt::Display for Coordinates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.4}, {:.4}", self.latitude(), self.longitude())
    }
}

/// What a landmark signs: the fastest of several challenge rounds to one agent key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Measurement {
    /// The landmark's id (the name in its `landmark` certificate).
    pub landmark: String,
    /// Where the landmark stands, as surveyed.
    pub at: Coordinates,
    /// The host the agent says it serves.
    pub host: String,
    /// The agent's raw Ed25519 public key; its SHA-256 is the key id.
    pub agent_key: [u8; 32],
    /// The fastest round trip, microseconds: nonce sent to signed answer received.
    pub min_rtt_us: u64,
    /// Rounds measured (each with its own nonce).
    pub rounds: u32,
    /// When the landmark measured (its clock), ms since the Unix epoch.
    pub measured_at_ms: i64,
    /// The fastest round's nonce.
    pub nonce: [u8; 32],
    /// The agent's signature over [`RTT_ANSWER_CONTEXT`] ‖ [`rtt_answer_payload`] for that
    /// nonce: anyone can check the fastest answer came from the key.
    pub answer: [u8; 64],
}

/// What the agent signs, after [`RTT_ANSWER_CONTEXT`]: the landmark's nonce, then its own key
/// id (so an answer names the key it came from and cannot be passed off for another).
pub fn rtt_answer_payload(nonce: &[u8; 32], key: &KeyId) -> Vec<u8> {
    let mut payload = Vec::with_capacity(64);
    payload.extend_from_slice(nonce);
    payload.extend_from_slice(key.0.as_bytes());
    payload
}

impl Measurement {
    /// The agent's key id.
    pub fn agent_key_id(&self) -> KeyId {
        KeyId::of_public_key(&self.agent_key)
    }

    /// The round trip in milliseconds.
    pub fn min_rtt_ms(&self) -> f64 {
        self.min_rtt_us as f64 / 1000.0
    }

    /// The statement's bytes (what the landmark signs after [`MEASUREMENT_CONTEXT`]).
    pub fn encode(&self) -> Result<Vec<u8>, LogDecodeError> {
        check_id(&self.landmark)?;
        check_id(&self.host)?;
        let mut out = Vec::with_capacity(256);
        out.push(FORMAT);
        put_str(&mut out, &self.landmark)?;
        let (lat, lon) = self.at.e7();
        out.extend_from_slice(&lat.to_be_bytes());
        out.extend_from_slice(&lon.to_be_bytes());
        put_str(&mut out, &self.host)?;
        out.extend_from_slice(&self.agent_key);
        out.extend_from_slice(&self.min_rtt_us.to_be_bytes());
        out.extend_from_slice(&self.rounds.to_be_bytes());
        out.extend_from_slice(&self.measured_at_ms.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.answer);
        Ok(out)
    }

    /// Reads statement bytes back; anything else is an error, never a guess.
    pub fn decode(bytes: &[u8]) -> Result<Self, LogDecodeError> {
        if bytes.len() > MAX_STATEMENT_BYTES {
            return Err(LogDecodeError::TooLong(bytes.len()));
        }
        let mut reader = Reader { bytes, at: 0 };
        let version = reader.byte()?;
        if version != FORMAT {
            return Err(LogDecodeError::Version(version));
        }
        let landmark = reader.string()?;
        let lat = i32::from_be_bytes(reader.array()?);
        let lon = i32::from_be_bytes(reader.array()?);
        let at =
            Coordinates::from_e7(lat, lon).map_err(|_| LogDecodeError::Range("coordinates"))?;
        let host = reader.string()?;
        let agent_key = reader.array()?;
        let min_rtt_us = reader.u64()?;
        let rounds = u32::from_be_bytes(reader.array()?);
        let measured_at_ms = reader.i64()?;
        let nonce = reader.array()?;
        let answer = reader.array()?;
        reader.finish()?;
        check_id(&landmark)?;
        check_id(&host)?;
        if rounds == 0 || rounds > MAX_ROUNDS {
            return Err(LogDecodeError::Range("rounds"));
        }
        Ok(Self {
            landmark,
            at,
            host,
            agent_key,
            min_rtt_us,
            rounds,
            measured_at_ms,
            nonce,
            answer,
        })
    }
}

/// A statement and the landmark's signature over [`MEASUREMENT_CONTEXT`] ‖ statement. The
/// signer is named inside the statement (`landmark`); whoever checks it looks the landmark's
/// key up in the landmarks it trusts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignedMeasurement {
    /// The exact statement bytes signed ([`Measurement::encode`]).
    pub statement: Vec<u8>,
    /// Ed25519 signature.
    pub signature: [u8; 64],
}

impl SignedMeasurement {
    /// Version, statement length and bytes, signature.
    pub fn encode(&self) -> Result<Vec<u8>, LogDecodeError> {
        if self.statement.len() > MAX_STATEMENT_BYTES {
            return Err(LogDecodeError::TooLong(self.statement.len()));
        }
        let mut out = Vec::with_capacity(3 + self.statement.len() + 64);
        out.push(FORMAT);
        out.extend_from_slice(&(self.statement.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.statement);
        out.extend_from_slice(&self.signature);
        Ok(out)
    }

    /// Reads the encoding back (the statement stays bytes until its signature is checked).
    pub fn decode(bytes: &[u8]) -> Result<Self, LogDecodeError> {
        if bytes.len() > MAX_SIGNED_MEASUREMENT_BYTES {
            return Err(LogDecodeError::TooLong(bytes.len()));
        }
        let mut reader = Reader { bytes, at: 0 };
        let version = reader.byte()?;
        if version != FORMAT {
            return Err(LogDecodeError::Version(version));
        }
        let len = u16::from_be_bytes(reader.array()?);
        let statement = reader.take(usize::from(len))?.to_vec();
        let signature = reader.array()?;
        reader.finish()?;
        Ok(Self {
            statement,
            signature,
        })
    }

    /// SHA-256 of the encoding: a measurement's name, for replay checks.
    pub fn digest(&self) -> Result<Sha256, LogDecodeError> {
        Ok(Sha256::of(&self.encode()?))
    }
}

fn check_id(id: &str) -> Result<(), LogDecodeError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if id.is_empty() || id.len() > MAX_MEASUREMENT_ID_BYTES || !id.chars().all(allowed) {
        return Err(LogDecodeError::Range("id"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Measurement {
        Measurement {
            landmark: "fra-1".into(),
            at: Coordinates::from_degrees(50.1109, 8.6821).unwrap(),
            host: "gpu-node-7".into(),
            agent_key: [7; 32],
            min_rtt_us: 1_250,
            rounds: 10,
            measured_at_ms: 1_780_000_000_000,
            nonce: [9; 32],
            answer: [3; 64],
        }
    }

    #[test]
    fn statements_round_trip() {
        let m = sample();
        let bytes = m.encode().unwrap();
        assert_eq!(Measurement::decode(&bytes).unwrap(), m);
        let signed = SignedMeasurement {
            statement: bytes,
            signature: [5; 64],
        };
        let encoded = signed.encode().unwrap();
        assert!(encoded.len() <= MAX_SIGNED_MEASUREMENT_BYTES);
        assert_eq!(SignedMeasurement::decode(&encoded).unwrap(), signed);
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let bytes = sample().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(Measurement::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Measurement::decode(&longer),
            Err(LogDecodeError::Trailing(1))
        );
    }

    #[test]
    fn bad_fields_are_refused() {
        let mut m = sample();
        m.host = "evil\u{1b}[2J".into();
        assert!(m.encode().is_err());
        let mut m = sample();
        m.rounds = 0;
        let bytes = m.encode().unwrap();
        assert_eq!(
            Measurement::decode(&bytes),
            Err(LogDecodeError::Range("rounds"))
        );
        // Latitude past the pole.
        let mut bytes = sample().encode().unwrap();
        let at = 1 + 2 + "fra-1".len();
        bytes[at..at + 4].copy_from_slice(&900_000_001i32.to_be_bytes());
        assert_eq!(
            Measurement::decode(&bytes),
            Err(LogDecodeError::Range("coordinates"))
        );
    }

    #[test]
    fn coordinates_are_checked_and_exact() {
        assert!(Coordinates::from_degrees(91.0, 0.0).is_err());
        assert!(Coordinates::from_degrees(f64::NAN, 0.0).is_err());
        assert!(Coordinates::from_degrees(0.0, -180.5).is_err());
        let p = Coordinates::from_degrees(1.3521, 103.8198).unwrap();
        assert_eq!(p.e7(), (13_521_000, 1_038_198_000));
        assert_eq!(p.to_string(), "1.3521, 103.8198");
    }
}
