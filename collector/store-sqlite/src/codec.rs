//! Conversions between the model and SQLite's column types: the compact encoding of a GPU
//! list, and the checked passage of u64 values through signed INTEGER columns (as every store
//! checks it, `collector_store::integer`).

use proto_evidence::Sha256;
use rusqlite::Row;

use crate::Db;
pub(crate) use collector_store::integer::{int, uint};
use collector_store::{ChainDigest, Gpu, KeyId, StoreError};

/// A BLOB column holding a key id.
pub(crate) fn key_id_at(row: &Row<'_>, index: usize, column: &str) -> Result<KeyId, StoreError> {
    let bytes: Vec<u8> = row.get(index).db()?;
    sha256(&bytes, column).map(KeyId)
}

/// A nullable BLOB column holding a key id.
pub(crate) fn key_id_opt_at(
    row: &Row<'_>,
    index: usize,
    column: &str,
) -> Result<Option<KeyId>, StoreError> {
    let bytes: Option<Vec<u8>> = row.get(index).db()?;
    bytes
        .map(|bytes| sha256(&bytes, column).map(KeyId))
        .transpose()
}

/// A BLOB column holding a chain digest.
pub(crate) fn digest_at(
    row: &Row<'_>,
    index: usize,
    column: &str,
) -> Result<ChainDigest, StoreError> {
    let bytes: Vec<u8> = row.get(index).db()?;
    sha256(&bytes, column).map(ChainDigest)
}

/// The 32 bytes of a SHA-256 column; any other length is damage, named by its column.
pub(crate) fn sha256(bytes: &[u8], column: &str) -> Result<Sha256, StoreError> {
    Sha256::from_slice(bytes)
        .ok_or_else(|| StoreError::Corrupt(format!("{column} has {} bytes, not 32", bytes.len())))
}

/// Leads every encoded list, so a later encoding can be told apart. Format 1 had no counted
/// byte (every GPU counted), format 2 no hardware evidence (every GPU without); both are still
/// read.
const GPUS_FORMAT: u8 = 3;
const GPUS_FORMAT_V2: u8 = 2;
const GPUS_FORMAT_V1: u8 = 1;

/// Encodes a GPU list: the format byte, then per GPU its TPP (u64 big-endian), whether it is
/// counted (one byte, 0 or 1), its uuid, serial, catalogue id and hardware identity (each a
/// u32 big-endian length and UTF-8 bytes) and when its hardware evidence was proven (i64
/// big-endian). Equal lists encode to equal bytes, which is what lets attestations share one
/// inventory row.
pub(crate) fn encode_gpus(gpus: &[Gpu]) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::with_capacity(1 + gpus.len() * 160);
    bytes.push(GPUS_FORMAT);
    for gpu in gpus {
        bytes.extend_from_slice(&gpu.tpp.to_be_bytes());
        bytes.push(u8::from(gpu.counted));
        for text in [&gpu.uuid, &gpu.serial, &gpu.catalogue_id, &gpu.hardware] {
            let len = u32::try_from(text.len()).map_err(|_| StoreError::OutOfRange {
                field: "gpu string length",
                value: text.len() as u64,
            })?;
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(text.as_bytes());
        }
        bytes.extend_from_slice(&gpu.hardware_at_ms.to_be_bytes());
    }
    Ok(bytes)
}

/// Decodes what `encode_gpus` wrote, in any of its formats (a GPU of an older one without
/// hardware evidence); anything else is reported as corrupt.
pub(crate) fn decode_gpus(bytes: &[u8]) -> Result<Vec<Gpu>, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("GPU list: {what}"));
    let (&format, mut rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
    if !matches!(format, GPUS_FORMAT | GPUS_FORMAT_V2 | GPUS_FORMAT_V1) {
        return Err(corrupt(&format!("unknown format {format}")));
    }
    let texts_per_gpu = if format == GPUS_FORMAT { 4 } else { 3 };
    let mut gpus = Vec::new();
    while !rest.is_empty() {
        let (tpp, after) = take::<8>(rest).ok_or_else(|| corrupt("truncated TPP"))?;
        rest = after;
        let counted = if format == GPUS_FORMAT_V1 {
            true
        } else {
            let (&flag, after) = rest
                .split_first()
                .ok_or_else(|| corrupt("truncated flag"))?;
            rest = after;
            match flag {
                0 => false,
                1 => true,
                other => return Err(corrupt(&format!("counted flag {other}"))),
            }
        };
        let mut texts = [String::new(), String::new(), String::new(), String::new()];
        for text in &mut texts[..texts_per_gpu] {
            let (len, after) = take::<4>(rest).ok_or_else(|| corrupt("truncated length"))?;
            let len = u32::from_be_bytes(len) as usize;
            let body = after.get(..len).ok_or_else(|| corrupt("truncated text"))?;
            *text = String::from_utf8(body.to_vec()).map_err(|_| corrupt("text is not UTF-8"))?;
            rest = &after[len..];
        }
        let hardware_at_ms = if format == GPUS_FORMAT {
            let (at, after) =
                take::<8>(rest).ok_or_else(|| corrupt("truncated hardware evidence time"))?;
            rest = after;
            i64::from_be_bytes(at)
        } else {
            0
        };
        let [uuid, serial, catalogue_id, hardware] = texts;
        gpus.push(Gpu {
            uuid,
            serial,
            catalogue_id,
            tpp: u64::from_be_bytes(tpp),
            counted,
            hardware,
            hardware_at_ms,
        });
    }
    Ok(gpus)
}

/// `gpus` as format 2 encoded them (no hardware evidence), or format 1 (no counted flag): what
/// databases written by older builds hold.
#[cfg(test)]
pub(crate) fn encode_gpus_before_hardware(format: u8, gpus: &[Gpu]) -> Vec<u8> {
    let mut bytes = vec![format];
    for gpu in gpus {
        bytes.extend_from_slice(&gpu.tpp.to_be_bytes());
        if format == GPUS_FORMAT_V2 {
            bytes.push(u8::from(gpu.counted));
        }
        for text in [&gpu.uuid, &gpu.serial, &gpu.catalogue_id] {
            bytes.extend_from_slice(&(text.len() as u32).to_be_bytes());
            bytes.extend_from_slice(text.as_bytes());
        }
    }
    bytes
}

fn take<const N: usize>(bytes: &[u8]) -> Option<([u8; N], &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<N>()?;
    Some((*head, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(n: u64) -> Gpu {
        Gpu {
            uuid: format!("GPU-{n:08x}-ü"),
            serial: format!("{}", 1_650_000_000 + n),
            catalogue_id: "h100-sxm5-80gb".to_owned(),
            tpp: 63_328 + n,
            counted: !n.is_multiple_of(3),
            hardware: if n.is_multiple_of(2) {
                format!("NVIDIA:GH100:{n:032X}")
            } else {
                String::new()
            },
            hardware_at_ms: if n.is_multiple_of(2) {
                1_700_000_000_000 + n as i64
            } else {
                0
            },
        }
    }

    #[test]
    fn gpu_lists_round_trip() {
        for count in [0, 1, 8, 72] {
            let gpus: Vec<Gpu> = (0..count).map(gpu).collect();
            assert_eq!(decode_gpus(&encode_gpus(&gpus).unwrap()).unwrap(), gpus);
        }
        let odd = vec![Gpu {
            uuid: String::new(),
            serial: String::new(),
            catalogue_id: String::new(),
            tpp: u64::MAX,
            counted: true,
            hardware: "NVIDIA:GH100:ü".to_owned(),
            hardware_at_ms: i64::MIN,
        }];
        assert_eq!(decode_gpus(&encode_gpus(&odd).unwrap()).unwrap(), odd);
        // Lists that differ only in hardware evidence encode apart.
        let attested: Vec<Gpu> = (0..4).map(gpu).collect();
        let mut reproven = attested.clone();
        reproven[0].hardware_at_ms += 1;
        let mut plain = attested.clone();
        plain[2].hardware.clear();
        let encoded = [&attested, &reproven, &plain].map(|l| encode_gpus(l).unwrap());
        assert_ne!(encoded[0], encoded[1]);
        assert_ne!(encoded[0], encoded[2]);
    }

    #[test]
    fn older_formats_read_without_hardware_evidence() {
        let gpus: Vec<Gpu> = (0..5).map(gpu).collect();
        let without: Vec<Gpu> = gpus
            .iter()
            .map(|g| Gpu {
                hardware: String::new(),
                hardware_at_ms: 0,
                ..g.clone()
            })
            .collect();
        assert_eq!(
            decode_gpus(&encode_gpus_before_hardware(2, &gpus)).unwrap(),
            without
        );
        let all_counted: Vec<Gpu> = without
            .iter()
            .map(|g| Gpu {
                counted: true,
                ..g.clone()
            })
            .collect();
        assert_eq!(
            decode_gpus(&encode_gpus_before_hardware(1, &gpus)).unwrap(),
            all_counted
        );
        // The empty list as migration 0003 stored it.
        assert_eq!(decode_gpus(&[2]).unwrap(), Vec::new());
    }

    #[test]
    fn damaged_gpu_lists_are_corrupt_not_panics() {
        let bytes = encode_gpus(&[gpu(1), gpu(2)]).unwrap();
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            // Cutting exactly between two GPUs leaves a valid shorter list.
            if let Ok(gpus) = decode_gpus(cut) {
                assert!(len == 1 || gpus == vec![gpu(1)], "cut at {len}");
            }
        }
        assert!(matches!(decode_gpus(&[4]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_gpus(&[0]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_gpus(&[2, 0]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_gpus(&[3, 0]), Err(StoreError::Corrupt(_))));
        // A hardware identity that is not UTF-8.
        let mut bad = encode_gpus(&[gpu(0)]).unwrap();
        let at = bad.len() - 9;
        bad[at] = 0xff;
        assert!(matches!(decode_gpus(&bad), Err(StoreError::Corrupt(_))));
    }
}
