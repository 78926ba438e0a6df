//! Conversions between the model and PostgreSQL's column types: u64 through `bigint` (checked
//! as every store checks it, `collector_store::integer`), 32-byte values through `bytea`, GPU lists through parallel arrays, and the hash that lets equal GPU
//! lists share one inventory row.

pub(crate) use collector_store::integer::{int, uint};
use collector_store::{ChainDigest, Gpu, KeyId, StoreError};
use proto_evidence::Sha256;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

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

/// A `bytea` column holding a key id.
pub(crate) fn get_key_id(row: &Row, index: usize, field: &str) -> Result<KeyId, StoreError> {
    get_32(row, index, field).map(|bytes| KeyId(Sha256::from_bytes(bytes)))
}

/// A nullable `bytea` column holding a key id.
pub(crate) fn get_key_id_opt(
    row: &Row,
    index: usize,
    field: &str,
) -> Result<Option<KeyId>, StoreError> {
    Ok(get_32_opt(row, index, field)?.map(|bytes| KeyId(Sha256::from_bytes(bytes))))
}

/// A `bytea` column holding a chain digest.
pub(crate) fn get_digest(row: &Row, index: usize, field: &str) -> Result<ChainDigest, StoreError> {
    get_32(row, index, field).map(|bytes| ChainDigest(Sha256::from_bytes(bytes)))
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
/// moving bytes between fields. Each version hashes as the lists stored before it did, so
/// those rows are still found: a list whose GPUs all count and have no hardware evidence as
/// before the counted flag existed (`veu-inventory-1`); one with an uncounted GPU carries each
/// flag (`veu-inventory-2`); one with hardware evidence carries each flag, hardware identity
/// and proof time (`veu-inventory-3`). The prefixes have the same length.
pub(crate) fn inventory_hash(gpus: &[Gpu]) -> [u8; 32] {
    let attested = gpus
        .iter()
        .any(|gpu| !gpu.hardware.is_empty() || gpu.hardware_at_ms != 0);
    let flagged = attested || gpus.iter().any(|gpu| !gpu.counted);
    let mut bytes = Vec::with_capacity(16 + gpus.len() * 160);
    bytes.extend_from_slice(match (attested, flagged) {
        (true, _) => b"veu-inventory-3",
        (false, true) => b"veu-inventory-2",
        (false, false) => b"veu-inventory-1",
    });
    for gpu in gpus {
        bytes.extend_from_slice(&gpu.tpp.to_be_bytes());
        if flagged {
            bytes.push(u8::from(gpu.counted));
        }
        let hardware = attested.then_some(&gpu.hardware);
        for text in [&gpu.uuid, &gpu.serial, &gpu.catalogue_id]
            .into_iter()
            .chain(hardware)
        {
            bytes.extend_from_slice(&(text.len() as u64).to_be_bytes());
            bytes.extend_from_slice(text.as_bytes());
        }
        if attested {
            bytes.extend_from_slice(&gpu.hardware_at_ms.to_be_bytes());
        }
    }
    *Sha256::of(&bytes).as_bytes()
}

/// The inventory's parallel array columns, in the order `get_gpus` reads them.
pub(crate) const INVENTORY_COLUMNS: &str =
    "i.uuids, i.serials, i.catalogue_ids, i.tpps, i.counted, i.hardware, i.hardware_at_ms";

/// A GPU list from the inventory's seven parallel array columns starting at `first`
/// (`INVENTORY_COLUMNS`: uuids, serials, catalogue ids, TPPs, counted flags, hardware
/// identities, hardware proof times).
pub(crate) fn get_gpus(row: &Row, first: usize) -> Result<Vec<Gpu>, StoreError> {
    let uuids: Vec<String> = get(row, first)?;
    let serials: Vec<String> = get(row, first + 1)?;
    let catalogue_ids: Vec<String> = get(row, first + 2)?;
    let tpps: Vec<i64> = get(row, first + 3)?;
    let counted: Vec<bool> = get(row, first + 4)?;
    let hardware: Vec<String> = get(row, first + 5)?;
    let hardware_at_ms: Vec<i64> = get(row, first + 6)?;
    if serials.len() != uuids.len()
        || catalogue_ids.len() != uuids.len()
        || tpps.len() != uuids.len()
        || counted.len() != uuids.len()
        || hardware.len() != uuids.len()
        || hardware_at_ms.len() != uuids.len()
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
        .zip(hardware.into_iter().zip(hardware_at_ms))
        .map(
            |(((((uuid, serial), catalogue_id), tpp), counted), (hardware, hardware_at_ms))| {
                Ok(Gpu {
                    uuid,
                    serial,
                    catalogue_id,
                    tpp: uint("gpu tpp", tpp)?,
                    counted,
                    hardware,
                    hardware_at_ms,
                })
            },
        )
        .collect()
}

/// One statement parameter, for lists of parameters of different types.
pub(crate) fn param<T: ToSql + Sync>(value: &T) -> &(dyn ToSql + Sync) {
    value
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
            hardware: String::new(),
            hardware_at_ms: 0,
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
    fn inventory_hashes_tell_hardware_evidence_apart() {
        let mut attested = vec![gpu("GPU-1", "S1"), gpu("GPU-2", "S2")];
        attested[0].hardware = "NVIDIA:GH100:48B02D".to_owned();
        attested[0].hardware_at_ms = 1_000;
        let mut plain = attested.clone();
        plain[0].hardware.clear();
        plain[0].hardware_at_ms = 0;
        let mut other_identity = attested.clone();
        other_identity[0].hardware = "NVIDIA:GH100:48B02E".to_owned();
        let mut reproven = attested.clone();
        reproven[0].hardware_at_ms = 2_000;
        let mut on_the_other_gpu = plain.clone();
        on_the_other_gpu[1].hardware = attested[0].hardware.clone();
        on_the_other_gpu[1].hardware_at_ms = 1_000;
        // An identity without a proof time, a proof time without an identity.
        let mut unproven = plain.clone();
        unproven[0].hardware = attested[0].hardware.clone();
        let mut anonymous = plain.clone();
        anonymous[0].hardware_at_ms = 1_000;
        let mut uncounted = attested.clone();
        uncounted[1].counted = false;
        let lists = [
            &attested,
            &plain,
            &other_identity,
            &reproven,
            &on_the_other_gpu,
            &unproven,
            &anonymous,
            &uncounted,
        ];
        let hashes: Vec<[u8; 32]> = lists.iter().map(|l| inventory_hash(l)).collect();
        for (i, a) in hashes.iter().enumerate() {
            for b in &hashes[i + 1..] {
                assert_ne!(a, b, "list {i} hashes as another");
            }
        }
        // Bytes moved between the serial and the hardware identity make another list.
        let mut moved = attested.clone();
        moved[0].serial = "S1NVIDIA".to_owned();
        moved[0].hardware = ":GH100:48B02D".to_owned();
        let mut kept = attested.clone();
        kept[0].serial = "S1".to_owned();
        kept[0].hardware = "NVIDIA:GH100:48B02D".to_owned();
        assert_ne!(inventory_hash(&moved), inventory_hash(&kept));
        // A list without hardware evidence hashes as it did before it existed.
        assert_eq!(inventory_hash(&plain), inventory_hash(&plain.clone()));
        let mut flagged = plain.clone();
        flagged[1].counted = false;
        let mut v2 = b"veu-inventory-2".to_vec();
        for gpu in &flagged {
            v2.extend_from_slice(&gpu.tpp.to_be_bytes());
            v2.push(u8::from(gpu.counted));
            for text in [&gpu.uuid, &gpu.serial, &gpu.catalogue_id] {
                v2.extend_from_slice(&(text.len() as u64).to_be_bytes());
                v2.extend_from_slice(text.as_bytes());
            }
        }
        assert_eq!(inventory_hash(&flagged), *Sha256::of(&v2).as_bytes());
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
}
