//! The model's unsigned integers as every store's signed 64-bit columns take them: refused above
//! `i64::MAX` when written (a wrapped value would sort and compare wrongly), read back as
//! corrupt when negative, and clamped where a bound past every storable value means "all".

use crate::{Cursor, KeyId, StoreError};

/// A u64 for a signed 64-bit column; `OutOfRange` above `i64::MAX`.
pub fn int(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field, value })
}

/// A u64 read back from a column that `int` wrote; negative means damage.
pub fn uint(field: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{field} is {value}")))
}

/// A LIMIT: the column type is signed, and anything beyond `i64::MAX` is "no limit" anyway.
pub fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A bound on stored values (a log index to start from or stop before); one above `i64::MAX`
/// is past every storable value, as `i64::MAX` is.
pub fn bound(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A page cursor of `attestations` as the columns hold it: (`received_at_ms`, key, sequence).
/// A sequence past every storable one continues with the next key of the same instant.
pub fn cursor(after: Cursor) -> (i64, KeyId, i64) {
    (after.received_at_ms, after.key_id, bound(after.sequence))
}

#[cfg(test)]
mod tests {
    use proto_evidence::Sha256;

    use super::*;

    #[test]
    fn integers_above_i64_max_are_refused() {
        assert_eq!(int("x", i64::MAX as u64).unwrap(), i64::MAX);
        assert!(matches!(
            int("x", i64::MAX as u64 + 1),
            Err(StoreError::OutOfRange { field: "x", .. })
        ));
        assert!(matches!(uint("x", -1), Err(StoreError::Corrupt(_))));
        assert_eq!(limit(usize::MAX), i64::MAX);
    }

    #[test]
    fn bounds_past_every_stored_value_clamp() {
        assert_eq!(bound(7), 7);
        assert_eq!(bound(u64::MAX), i64::MAX);
        let at = |sequence| Cursor {
            received_at_ms: 5,
            key_id: KeyId(Sha256::from_bytes([1; 32])),
            sequence,
        };
        assert_eq!(cursor(at(u64::MAX)), (5, at(0).key_id, i64::MAX));
        assert_eq!(cursor(at(9)), (5, at(0).key_id, 9));
    }
}
