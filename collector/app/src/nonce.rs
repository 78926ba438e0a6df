//! Challenge nonces any replica can check without storing them: the issue time and an HMAC
//! (SHA-256, truncated to 16 bytes) over the key id and that time, under the collector's
//! nonce secret. A nonce issued to one key is worthless for another.

use collector_core::NonceCheck;
use proto_evidence::KeyId;
use ring::hmac;

/// Bytes of a nonce: 8 of issue time, 16 of MAC.
pub const NONCE_LEN: usize = 24;

/// Issues and checks nonces.
#[derive(Debug)]
pub struct NonceIssuer {
    key: hmac::Key,
    valid_for_ms: i64,
}

impl NonceIssuer {
    /// From a secret of at least 32 bytes (kept in the collector's state directory).
    pub fn new(secret: &[u8], valid_for_ms: i64) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            valid_for_ms,
        }
    }

    /// How long a statement answering a nonce counts as fresh.
    pub fn valid_for_ms(&self) -> i64 {
        self.valid_for_ms
    }

    /// A nonce for `key_id` issued at `now_ms`.
    pub fn issue(&self, key_id: &KeyId, now_ms: i64) -> Vec<u8> {
        let time = now_ms.to_be_bytes();
        let mut nonce = time.to_vec();
        nonce.extend_from_slice(&self.mac(key_id, &time).as_ref()[..NONCE_LEN - 8]);
        nonce
    }

    /// Judges the nonce an attestation of `key_id` carries.
    pub fn check(&self, key_id: &KeyId, nonce: &[u8]) -> NonceCheck {
        if nonce.is_empty() {
            return NonceCheck::Absent;
        }
        let (Some(issued_at_ms), Some((time, mac))) = (
            proto_evidence::challenge_issued_at_ms(nonce),
            nonce.split_first_chunk::<{ proto_evidence::hardware::CHALLENGE_TIME_BYTES }>(),
        ) else {
            return NonceCheck::Foreign;
        };
        let expected = self.mac(key_id, time);
        if mac.len() != NONCE_LEN - 8 || !same(mac, &expected.as_ref()[..NONCE_LEN - 8]) {
            return NonceCheck::Foreign;
        }
        NonceCheck::Issued {
            issued_at_ms,
            valid_for_ms: self.valid_for_ms,
        }
    }

    fn mac(&self, key_id: &KeyId, time: &[u8; 8]) -> hmac::Tag {
        let mut message = Vec::with_capacity(32 + 8);
        message.extend_from_slice(key_id.0.as_bytes());
        message.extend_from_slice(time);
        hmac::sign(&self.key, &message)
    }
}

/// Compares in time independent of where the bytes differ, so a forger learns nothing from
/// timing which prefix of a MAC was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_bound_to_the_key_and_the_secret() {
        let issuer = NonceIssuer::new(&[7; 32], 300_000);
        let (a, b) = (KeyId::of_public_key(b"a"), KeyId::of_public_key(b"b"));
        let nonce = issuer.issue(&a, 1_000);
        assert_eq!(
            issuer.check(&a, &nonce),
            NonceCheck::Issued {
                issued_at_ms: 1_000,
                valid_for_ms: 300_000
            }
        );
        assert_eq!(
            issuer.check(&b, &nonce),
            NonceCheck::Foreign,
            "another key's nonce"
        );
        assert_eq!(
            NonceIssuer::new(&[8; 32], 1).check(&a, &nonce),
            NonceCheck::Foreign,
            "another collector"
        );
        let mut forged = nonce.clone();
        forged[0] ^= 1; // move the time
        assert_eq!(issuer.check(&a, &forged), NonceCheck::Foreign);
        assert_eq!(issuer.check(&a, &nonce[..10]), NonceCheck::Foreign);
        assert_eq!(issuer.check(&a, b""), NonceCheck::Absent);
    }
}
