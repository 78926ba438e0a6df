//! When hardware evidence is collected and where it goes: reports are asked for once per
//! collector challenge (the first attestation that carries a new nonce), each device signing
//! `report_nonce(collector_nonce, key_id, index)`; every other attestation says
//! `NotCollected`.

use proto_evidence::{AttestationPayload, GpuEvidence, KeyId, report_nonce};

/// The collector nonce the last durable collection answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenges {
    answered: Option<Vec<u8>>,
}

impl Challenges {
    /// Whether an attestation carrying `collector_nonce` should collect reports: it is a
    /// challenge (not empty) that no earlier attestation answered with reports.
    pub fn due(&self, collector_nonce: &[u8]) -> bool {
        !collector_nonce.is_empty() && self.answered.as_deref() != Some(collector_nonce)
    }

    /// Records that an attestation answering `collector_nonce` with reports is durable; a
    /// collection whose attestation was never spooled leaves the challenge due.
    pub fn answered(&mut self, collector_nonce: &[u8]) {
        self.answered = Some(collector_nonce.to_vec());
    }
}

/// Each device index of `payload` with the nonce its GPU must sign.
pub fn requests(payload: &AttestationPayload) -> Vec<(u32, [u8; 32])> {
    requests_for(
        &payload.collector_nonce,
        &payload.key_id,
        payload.devices.iter().map(|device| device.index),
    )
}

/// Each of `indices` with the nonce its GPU must sign for `collector_nonce` and `key_id`.
pub fn requests_for(
    collector_nonce: &[u8],
    key_id: &KeyId,
    indices: impl IntoIterator<Item = u32>,
) -> Vec<(u32, [u8; 32])> {
    indices
        .into_iter()
        .map(|index| (index, report_nonce(collector_nonce, key_id, index)))
        .collect()
}

/// Puts each device's evidence in its record, matched by index; a device with no entry
/// keeps `NotCollected`.
pub fn attach(payload: &mut AttestationPayload, evidence: Vec<(u32, GpuEvidence)>) {
    for (index, collected) in evidence {
        if let Some(device) = payload.devices.iter_mut().find(|d| d.index == index) {
            device.gpu_evidence = collected;
        }
    }
}

/// Replaces every report in `payload` with a `TooLarge` fault saying why: the attestation
/// with all reports would not fit in one payload, and the inventory must still go out.
pub fn drop_reports(payload: &mut AttestationPayload, reason: &str) {
    for device in &mut payload.devices {
        if matches!(device.gpu_evidence, GpuEvidence::Report { .. }) {
            device.gpu_evidence =
                GpuEvidence::unavailable(proto_evidence::GpuEvidenceFault::TooLarge, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use proto_evidence::{DeviceRecord, GpuEvidenceFault, Sha256};

    use super::*;

    #[test]
    fn only_a_new_challenge_is_due() {
        let mut challenges = Challenges::default();
        assert!(!challenges.due(b""), "no challenge yet: nothing to answer");
        assert!(challenges.due(b"n1"));
        // Collected but never made durable: still due.
        assert!(challenges.due(b"n1"));
        challenges.answered(b"n1");
        assert!(!challenges.due(b"n1"));
        assert!(challenges.due(b"n2"));
        challenges.answered(b"n2");
        assert!(!challenges.due(b"n2"));
        assert!(
            challenges.due(b"n1"),
            "a nonce the collector sends again is answered again"
        );
    }

    fn payload(indices: &[u32]) -> AttestationPayload {
        AttestationPayload {
            key_id: KeyId(Sha256::of(b"key")),
            host_id: proto_evidence::HostId("h".into()),
            site_id: proto_evidence::SiteId("s".into()),
            sequence: 1,
            previous_digest: proto_evidence::ChainDigest::GENESIS,
            issued_at_unix_ms: 0,
            collector_nonce: b"challenge".to_vec(),
            devices: indices
                .iter()
                .map(|&index| DeviceRecord {
                    index,
                    ..DeviceRecord::default()
                })
                .collect(),
            totals: proto_evidence::Totals::default(),
            catalogue_digest: String::new(),
            policy_digest: String::new(),
            agent_version: String::new(),
            source: proto_evidence::EvidenceSource::Simulated,
            driver_version: String::new(),
        }
    }

    #[test]
    fn each_device_signs_its_own_nonce_and_gets_its_own_evidence() {
        let mut payload = payload(&[0, 1, 5]);
        let requests = requests(&payload);
        assert_eq!(
            requests,
            [0, 1, 5].map(|i| (i, report_nonce(b"challenge", &payload.key_id, i)))
        );
        let report = |byte| GpuEvidence::Report {
            report: vec![byte],
            certificate_chain: vec![byte],
        };
        // An index the inventory no longer has is ignored; an index without evidence stays.
        attach(
            &mut payload,
            vec![(5, report(5)), (0, report(0)), (9, report(9))],
        );
        let got: Vec<_> = payload
            .devices
            .iter()
            .map(|d| d.gpu_evidence.clone())
            .collect();
        assert_eq!(got, [report(0), GpuEvidence::NotCollected, report(5)]);

        drop_reports(&mut payload, "too big together");
        assert!(payload.devices.iter().all(|d| matches!(
            &d.gpu_evidence,
            GpuEvidence::NotCollected
                | GpuEvidence::Unavailable {
                    fault: GpuEvidenceFault::TooLarge,
                    ..
                }
        )));
        assert_eq!(payload.devices[1].gpu_evidence, GpuEvidence::NotCollected);
    }
}
