//! The small text files an auditor handles: the log's public key (`log.pub`, 64 hex digits)
//! and a report's detached signature (`report.sig`).

use proto_evidence::{KeyId, Sha256};
use proto_seal::{DetachedSignature, PublicKey};

use crate::hex::{from_hex, to_hex};

/// First line of a `report.sig` file.
const SIGNATURE_HEADER: &str = "veu-attest detached signature v1";

/// The log's public key from its text: 64 hex digits, surrounding whitespace ignored.
pub fn log_key_from_text(text: &str) -> Result<PublicKey, String> {
    let text = text.trim();
    let bytes = from_hex(text)
        .filter(|bytes| bytes.len() == 32)
        .ok_or_else(|| format!("a log key is 64 hex digits, got {:?}", abbreviate(text)))?;
    PublicKey::from_slice(&bytes).map_err(|e| e.to_string())
}

/// `report.sig`'s text.
pub fn signature_to_text(signature: &DetachedSignature) -> String {
    format!(
        "{SIGNATURE_HEADER}\nalgorithm: ed25519\nkey_id: {}\nsignature: {}\n",
        to_hex(signature.key_id.0.as_bytes()),
        to_hex(&signature.signature)
    )
}

/// Reads `report.sig`'s text; every problem is named.
pub fn signature_from_text(text: &str) -> Result<DetachedSignature, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(SIGNATURE_HEADER) {
        return Err(format!("the first line is not {SIGNATURE_HEADER:?}"));
    }
    let (mut key_id, mut signature) = (None, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("line {line:?} is not `name: value`"));
        };
        let value = value.trim();
        match name.trim() {
            "algorithm" if value == "ed25519" => {}
            "algorithm" => return Err(format!("algorithm {value:?} is not ed25519")),
            "key_id" => {
                let bytes = from_hex(value)
                    .and_then(|b| Sha256::from_slice(&b))
                    .ok_or("key_id is not 64 hex digits")?;
                key_id = Some(KeyId(bytes));
            }
            "signature" => {
                signature = Some(
                    from_hex(value)
                        .filter(|b| b.len() == 64)
                        .ok_or("signature is not 128 hex digits")?,
                );
            }
            other => return Err(format!("unknown field {other:?}")),
        }
    }
    Ok(DetachedSignature {
        key_id: key_id.ok_or("key_id is missing")?,
        signature: signature.ok_or("signature is missing")?,
    })
}

fn abbreviate(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keys_and_signatures_round_trip_and_junk_is_named() {
        let signer = proto_seal::Ed25519Signer::from_seed(&[3; 32]).unwrap();
        let text = to_hex(signer.public_key().as_bytes());
        assert_eq!(
            log_key_from_text(&format!(" {text}\n")).unwrap(),
            signer.public_key()
        );
        assert!(
            log_key_from_text("abcd")
                .unwrap_err()
                .contains("64 hex digits")
        );
        let signature = proto_seal::sign_report(b"{}", &signer);
        let written = signature_to_text(&signature);
        assert_eq!(signature_from_text(&written).unwrap(), signature);
        assert!(signature_from_text("hello").is_err());
        assert!(
            signature_from_text(&written.replace("ed25519", "rsa"))
                .unwrap_err()
                .contains("algorithm")
        );
    }
}
