//! Round-trip evidence: the agent's answer to a landmark's nonce, and the landmark's signed
//! measurement (`proto_evidence::location`, docs/location.md).

use proto_evidence::{
    MEASUREMENT_CONTEXT, Measurement, RTT_ANSWER_CONTEXT, SignedMeasurement, rtt_answer_payload,
    signed_message,
};

use crate::{Ed25519Signer, PublicKey};

/// Why a measurement or an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeasurementError {
    /// The bytes are not a signed measurement or statement of this version.
    #[error("malformed measurement: {0}")]
    Malformed(#[from] proto_evidence::LogDecodeError),
    /// The landmark's signature does not verify over the statement.
    #[error("the landmark's signature does not verify")]
    BadSignature,
    /// The agent's answer to the fastest nonce does not verify with the key named.
    #[error("the agent's answer does not verify with the agent key the statement names")]
    BadAnswer,
    /// The statement names a landmark whose key the checker does not hold.
    #[error("landmark {0} is not enrolled: it is not among the trusted landmarks")]
    UnknownLandmark(String),
}

/// The agent's answer to a landmark's nonce: its signature over the nonce and its key id.
pub fn answer_rtt(nonce: &[u8; 32], signer: &Ed25519Signer) -> [u8; 64] {
    let envelope = signer.sign(
        RTT_ANSWER_CONTEXT,
        rtt_answer_payload(nonce, &signer.key_id()),
    );
    let mut signature = [0; 64];
    signature.copy_from_slice(&envelope.signature);
    signature
}

/// Checks an agent's answer to `nonce` with its key.
pub fn check_rtt_answer(
    key: &PublicKey,
    nonce: &[u8; 32],
    answer: &[u8; 64],
) -> Result<(), MeasurementError> {
    let message = signed_message(
        RTT_ANSWER_CONTEXT,
        &rtt_answer_payload(nonce, &key.key_id()),
    );
    key.verify_raw(&message, answer)
        .map_err(|()| MeasurementError::BadAnswer)
}

/// A landmark signs its statement.
pub fn sign_measurement(
    measurement: &Measurement,
    signer: &Ed25519Signer,
) -> Result<SignedMeasurement, MeasurementError> {
    let statement = measurement.encode()?;
    let envelope = signer.sign(MEASUREMENT_CONTEXT, statement);
    let mut signature = [0; 64];
    signature.copy_from_slice(&envelope.signature);
    Ok(SignedMeasurement {
        statement: envelope.payload,
        signature,
    })
}

/// Verifies a signed measurement with the landmark's key, then the agent's answer inside it
/// with the agent key it names, and only then decodes it. Which landmark key to use is the
/// caller's: look the landmark named by [`landmark_named`] up among those trusted.
pub fn open_measurement(
    signed: &SignedMeasurement,
    landmark: &PublicKey,
) -> Result<Measurement, MeasurementError> {
    let message = signed_message(MEASUREMENT_CONTEXT, &signed.statement);
    landmark
        .verify_raw(&message, &signed.signature)
        .map_err(|()| MeasurementError::BadSignature)?;
    let measurement = Measurement::decode(&signed.statement)?;
    let agent =
        PublicKey::from_slice(&measurement.agent_key).map_err(|_| MeasurementError::BadAnswer)?;
    check_rtt_answer(&agent, &measurement.nonce, &measurement.answer)?;
    Ok(measurement)
}

/// Opens a measurement as delivered or logged (`SignedMeasurement::encode`'s bytes): decodes
/// it, looks the landmark it names up with `key_of` (the trusted landmarks' raw keys), checks
/// the landmark's signature and the agent's answer. The one opening the collector and the
/// offline verifier both use.
pub fn open_delivered(
    bytes: &[u8],
    key_of: impl Fn(&str) -> Option<[u8; 32]>,
) -> Result<Measurement, MeasurementError> {
    let signed = SignedMeasurement::decode(bytes)?;
    let named = landmark_named(&signed)?;
    let raw = key_of(&named).ok_or(MeasurementError::UnknownLandmark(named))?;
    let key = PublicKey::from_slice(&raw).map_err(|_| MeasurementError::BadSignature)?;
    open_measurement(&signed, &key)
}

/// The landmark a signed statement names, read before its signature is checked, only to pick
/// the key to check it with.
pub fn landmark_named(signed: &SignedMeasurement) -> Result<String, MeasurementError> {
    Ok(Measurement::decode(&signed.statement)?.landmark)
}

#[cfg(test)]
mod tests {
    use proto_evidence::Coordinates;

    use super::*;

    fn signer(seed: u8) -> Ed25519Signer {
        Ed25519Signer::from_seed(&[seed; 32]).unwrap()
    }

    fn measured(agent: &Ed25519Signer) -> Measurement {
        let nonce = [4; 32];
        Measurement {
            landmark: "sin-1".into(),
            at: Coordinates::from_degrees(1.3521, 103.8198).unwrap(),
            host: "h1".into(),
            agent_key: *agent.public_key().as_bytes(),
            min_rtt_us: 900,
            rounds: 5,
            measured_at_ms: 1_780_000_000_000,
            nonce,
            answer: answer_rtt(&nonce, agent),
        }
    }

    #[test]
    fn a_signed_measurement_opens_with_its_landmark_key_only() {
        let (agent, landmark) = (signer(1), signer(2));
        let m = measured(&agent);
        let signed = sign_measurement(&m, &landmark).unwrap();
        assert_eq!(
            open_measurement(&signed, &landmark.public_key()).unwrap(),
            m
        );
        assert_eq!(landmark_named(&signed).unwrap(), "sin-1");
        assert_eq!(
            open_measurement(&signed, &signer(3).public_key()),
            Err(MeasurementError::BadSignature)
        );
        let mut tampered = signed.clone();
        let last = tampered.statement.len() - 70;
        tampered.statement[last] ^= 1;
        assert_eq!(
            open_measurement(&tampered, &landmark.public_key()),
            Err(MeasurementError::BadSignature)
        );
    }

    #[test]
    fn an_answer_from_another_key_or_nonce_is_refused() {
        let (agent, landmark) = (signer(1), signer(2));
        let mut m = measured(&agent);
        // The answer of another key, passed off as this agent's.
        m.answer = answer_rtt(&m.nonce, &signer(9));
        let signed = sign_measurement(&m, &landmark).unwrap();
        assert_eq!(
            open_measurement(&signed, &landmark.public_key()),
            Err(MeasurementError::BadAnswer)
        );
        let nonce = [4; 32];
        let answer = answer_rtt(&nonce, &agent);
        assert!(check_rtt_answer(&agent.public_key(), &nonce, &answer).is_ok());
        assert!(check_rtt_answer(&agent.public_key(), &[5; 32], &answer).is_err());
    }
}
