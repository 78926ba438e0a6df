//! Conversions between the model and PostgreSQL's column types: u64 through `bigint`, 32-byte
//! values through `bytea`, GPU lists through parallel arrays, and the hash that lets equal GPU
//! lists share one inventory row.

use collector_store::{Gpu, StoreError};
use proto_evidence::Sha256;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

/// A u64 for a `bigint` column, refused above i64::MAX instead of wrapping (a wrapped value
/// would sort and compare wrongly).
pub(crate) fn int(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field, value })
}

/// A u64 read back from a `bigint` column that `int` wrote; negative means damage.
pub(crate) fn uint(field: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{field} is {value}")))
}

/// Column `index` of `row`, typed.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index).map_err(StoreError::backend)
}

/// A `bigint` column holding a u64.
pub(crate) fn get_u64(row: &Row, index: usize, field: &str) -> Result<u64, StoreError> {
    uint(field, get(row, index)?)
}

/// A `bigint` column holding a u32 (device counts).
pub(crate) fn get_u32(row: &Row, index: usize, field: &str) -> Result<u32, StoreError> {
    let value: i64 = get(row, index)?;
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{field} is {value}")))
}

/// A `bytea` column holding exactly 32 bytes.
pub(crate) fn get_32(row: &Row, index: usize, field: &str) -> Result<[u8; 32], StoreError> {
    bytes_32(get(row, index)?, field)
}

/// A nullable `bytea` column holding 32 bytes.
pub(crate) fn get_32_opt(
    row: &Row,
    index: usize,
    field: &str,
) -> Result<Option<[u8; 32]>, StoreError> {
    get::<Option<&[u8]>>(row, index)?
        .map(|bytes| bytes_32(bytes, field))
        .transpose()
}

fn bytes_32(bytes: &[u8], field: &str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{field} has {} bytes, not 32", bytes.len())))
}

/// The identity of a GPU list: equal lists hash equally, so attestations that report the same
/// devices share one inventory row. Each field is length-prefixed, so no two lists collide by
/// moving bytes between fields. A list whose GPUs all count hashes as before the counted flag
/// existed (`veu-inventory-1`), so the rows stored then are still found; a list with an
/// uncounted GPU carries each flag (`veu-inventory-2`, a prefix of the same length).
pub(crate) fn inventory_hash(gpus: &[Gpu]) -> [u8; 32] {
    let flagged = gpus.iter().any(|gpu| !gpu.counted);
    let mut bytes = Vec::with_capacity(16 + gpus.len() * 96);
    bytes.extend_from_slice(if flagged {
        b"veu-inventory-2"
    } else {
        b"veu-inventory-1"
    });
    for gpu in gpus {
        bytes.extend_from_slice(&gpu.tpp.to_be_bytes());
        if flagged {
            bytes.push(u8::from(gpu.counted));
        }
        for text in [&gpu.uuid, &gpu.serial, &gpu.catalogue_id] {
            bytes.extend_from_slice(&(text.len() as u64).to_be_bytes());
            bytes.extend_from_slice(text.as_bytes());
        }
    }
    *Sha256::of(&bytes).as_bytes()
}

/// A GPU list from the inventory's five parallel array columns starting at `first` (uuids,
/// serials, catalogue ids, TPPs, counted flags).
pub(crate) fn get_gpus(row: &Row, first: usize) -> Result<Vec<Gpu>, StoreError> {
    let uuids: Vec<String> = get(row, first)?;
    let serials: Vec<String> = get(row, first + 1)?;
    let catalogue_ids: Vec<String> = get(row, first + 2)?;
    let tpps: Vec<i64> = get(row, first + 3)?;
    let counted: Vec<bool> = get(row, first + 4)?;
    if serials.len() != uuids.len()
        || catalogue_ids.len() != uuids.len()
        || tpps.len() != uuids.len()
        || counted.len() != uuids.len()
    {
        return Err(StoreError::Corrupt(
            "an inventory's arrays differ in length".to_owned(),
        ));
    }
    uuids
        .into_iter()
        .zip(serials)
        .zip(catalogue_ids)
        .zip(tpps)
        .zip(counted)
        .map(|((((uuid, serial), catalogue_id), tpp), counted)| {
            Ok(Gpu {
                uuid,
                serial,
                catalogue_id,
                tpp: uint("gpu tpp", tpp)?,
                counted,
            })
        })
        .collect()
}

/// One statement parameter, for lists of parameters of different types.
pub(crate) fn param<T: ToSql + Sync>(value: &T) -> &(dyn ToSql + Sync) {
    value
}

/// LIMIT takes a signed bigint; anything beyond i64::MAX is "no limit" anyway.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(uuid: &str, serial: &str) -> Gpu {
        Gpu {
            uuid: uuid.to_owned(),
            serial: serial.to_owned(),
            catalogue_id: "h100-sxm5-80gb".to_owned(),
            tpp: 63_328,
            counted: true,
        }
    }

    #[test]
    fn inventory_hashes_tell_lists_apart() {
        let one = vec![gpu("GPU-1", "S1"), gpu("GPU-2", "S2")];
        assert_eq!(inventory_hash(&one), inventory_hash(&one.clone()));
        let reordered = vec![gpu("GPU-2", "S2"), gpu("GPU-1", "S1")];
        assert_ne!(inventory_hash(&one), inventory_hash(&reordered));
        // Bytes moved between fields make another list.
        assert_ne!(
            inventory_hash(&[gpu("GPU-1S", "1")]),
            inventory_hash(&[gpu("GPU-1", "S1")])
        );
        assert_ne!(inventory_hash(&[]), inventory_hash(&one[..1]));
        // Whether a GPU counts is part of the list.
        let mut uncounted = one.clone();
        uncounted[1].counted = false;
        assert_ne!(inventory_hash(&one), inventory_hash(&uncounted));
        let mut other = one.clone();
        other[0].counted = false;
        assert_ne!(inventory_hash(&uncounted), inventory_hash(&other));
    }

    #[test]
    fn lists_that_all_count_hash_as_before_the_flag() {
        // The empty list's hash, as migration 0002 computes it in SQL.
        assert_eq!(
            inventory_hash(&[]),
            *Sha256::of(b"veu-inventory-1").as_bytes()
        );
        // The encoding of version 1 (no flag), for a list stored before the flag existed.
        let one = gpu("GPU-1", "S1");
        let mut v1 = b"veu-inventory-1".to_vec();
        v1.extend_from_slice(&one.tpp.to_be_bytes());
        for text in [&one.uuid, &one.serial, &one.catalogue_id] {
            v1.extend_from_slice(&(text.len() as u64).to_be_bytes());
            v1.extend_from_slice(text.as_bytes());
        }
        assert_eq!(inventory_hash(&[one]), *Sha256::of(&v1).as_bytes());
    }

    #[test]
    fn integers_above_i64_max_are_refused() {
        assert_eq!(int("x", i64::MAX as u64).unwrap(), i64::MAX);
        assert!(matches!(
            int("x", i64::MAX as u64 + 1),
            Err(StoreError::OutOfRange { field: "x", .. })
        ));
        assert!(matches!(uint("x", -1), Err(StoreError::Corrupt(_))));
        assert_eq!(sql_limit(usize::MAX), i64::MAX);
    }
}
