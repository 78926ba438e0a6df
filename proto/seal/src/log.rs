//! Signatures of the collector's log key: signed tree heads and detached report signatures.
//! Both sign a domain-separation context followed by the exact bytes, like attestations, so no
//! signature made for one purpose verifies for another.

use proto_evidence::{
    Envelope, KeyId, LogDecodeError, REPORT_CONTEXT, TREE_HEAD_CONTEXT, TreeHead,
};

use crate::{Ed25519Signer, OpenError, PublicKey};

/// A tree head or report signature that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogSignatureError {
    /// The signature, key or size check failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Correctly signed bytes that are not a tree head.
    #[error("signed tree head is malformed: {0}")]
    Malformed(#[from] LogDecodeError),
}

/// Signs a tree head with the collector's log key.
pub fn sign_tree_head(head: &TreeHead, signer: &Ed25519Signer) -> Envelope {
    signer.sign(TREE_HEAD_CONTEXT, head.encode())
}

/// Verifies a signed tree head with the log's public key and decodes it.
pub fn open_tree_head(envelope: &Envelope, key: &PublicKey) -> Result<TreeHead, LogSignatureError> {
    key.verify(TREE_HEAD_CONTEXT, envelope)?;
    Ok(TreeHead::decode(&envelope.payload)?)
}

/// A detached signature over a monthly report's exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachedSignature {
    /// The signing key.
    pub key_id: KeyId,
    /// Ed25519 over `REPORT_CONTEXT || report bytes`.
    pub signature: Vec<u8>,
}

/// Signs a report's bytes.
pub fn sign_report(report: &[u8], signer: &Ed25519Signer) -> DetachedSignature {
    let envelope = signer.sign(REPORT_CONTEXT, report.to_vec());
    DetachedSignature {
        key_id: envelope.key_id,
        signature: envelope.signature,
    }
}

/// Checks a detached report signature with `key`.
pub fn check_report(
    report: &[u8],
    signature: &DetachedSignature,
    key: &PublicKey,
) -> Result<(), OpenError> {
    let envelope = Envelope {
        payload: report.to_vec(),
        key_id: signature.key_id,
        algorithm: proto_evidence::Algorithm::Ed25519,
        signature: signature.signature.clone(),
    };
    key.verify_unbounded(REPORT_CONTEXT, &envelope)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn signer(seed: u8) -> Ed25519Signer {
        Ed25519Signer::from_seed(&[seed; 32]).unwrap()
    }

    #[test]
    fn a_signed_head_opens_with_the_log_key_only() {
        let head = TreeHead {
            tree_size: 9,
            root: [3; 32],
            timestamp_ms: 1_000,
        };
        let log = signer(1);
        let signed = sign_tree_head(&head, &log);
        assert_eq!(open_tree_head(&signed, &log.public_key()).unwrap(), head);
        assert!(open_tree_head(&signed, &signer(2).public_key()).is_err());
        let mut tampered = signed.clone();
        tampered.payload[3] ^= 1;
        assert!(matches!(
            open_tree_head(&tampered, &log.public_key()),
            Err(LogSignatureError::Open(OpenError::BadSignature))
        ));
    }

    #[test]
    fn a_head_signature_is_not_a_report_signature_nor_an_attestation() {
        let log = signer(1);
        let head = TreeHead {
            tree_size: 1,
            root: [0; 32],
            timestamp_ms: 0,
        };
        let signed = sign_tree_head(&head, &log);
        let as_report = DetachedSignature {
            key_id: signed.key_id,
            signature: signed.signature.clone(),
        };
        assert!(check_report(&signed.payload, &as_report, &log.public_key()).is_err());
        assert!(crate::open(signed, &log.public_key()).is_err());
    }

    #[test]
    fn report_signatures_cover_every_byte() {
        let log = signer(4);
        let report = b"{\"format\":\"veu-report/1\"}\n".repeat(20_000);
        let signature = sign_report(&report, &log);
        check_report(&report, &signature, &log.public_key()).unwrap();
        let mut changed = report.clone();
        changed[100] ^= 1;
        assert_eq!(
            check_report(&changed, &signature, &log.public_key()),
            Err(OpenError::BadSignature)
        );
        assert!(check_report(&report, &signature, &signer(5).public_key()).is_err());
    }
}
