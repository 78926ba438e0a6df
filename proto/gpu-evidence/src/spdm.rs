//! The attestation report NVML returns: an SPDM 1.1 GET_MEASUREMENTS request followed by the
//! GPU's MEASUREMENTS response (DSP0274 1.1.0, sections 10.11 and 10.11.1).
//!
//! ```text
//! request  (37 bytes): version 0x11 | code 0xE0 | param1 (bit 0: signature requested)
//!                      | param2 (measurement operation, 0xFF = all) | requester nonce (32) | slot
//! response:            version 0x11 | code 0x60 | param1 | param2 (slot)
//!                      | number of blocks (1) | record length (3, little-endian)
//!                      | measurement record | responder nonce (32)
//!                      | opaque length (2, little-endian) | opaque data | signature (96)
//! measurement block:   index (1) | measurement specification (1, bit 0 = DMTF) | size (2)
//!                      | DMTF value type (1) | value size (2) | value
//! opaque data (NVIDIA): type (2, little-endian) | length (2, little-endian) | value, repeated
//! ```
//!
//! The signature is raw `r ‖ s` ECDSA P-384 over SHA-384 of `request ‖ response-without-signature`,
//! made with the leaf certificate's key. The requester's nonce is bound by that signature; the
//! response's own nonce is the responder's randomness and is not compared with anything.
//!
//! Every length is checked against the bytes that remain before it is used: parsing is bounded
//! by the input and never panics.

use crate::{Failure, Reason};

/// The SPDM version NVIDIA GPUs speak for attestation (1.1).
pub const SPDM_VERSION_1_1: u8 = 0x11;
/// GET_MEASUREMENTS request code.
pub const GET_MEASUREMENTS: u8 = 0xE0;
/// MEASUREMENTS response code.
pub const MEASUREMENTS: u8 = 0x60;
/// The request's length in SPDM 1.1.
pub const REQUEST_LEN: usize = 37;
/// The raw `r ‖ s` P-384 signature's length.
pub const SIGNATURE_LEN: usize = 96;
/// The DMTF measurement specification bit of a measurement block.
pub const DMTF_MEASUREMENT_SPECIFICATION: u8 = 0x01;

/// Opaque data type: driver version (ASCII, NUL-terminated).
pub const OPAQUE_DRIVER_VERSION: u16 = 3;
/// Opaque data type: VBIOS version (8 bytes).
pub const OPAQUE_VBIOS_VERSION: u16 = 6;
/// Opaque data type: NVDEC0 status (one byte, [`NVDEC0_ENABLED`] or [`NVDEC0_DISABLED`]).
pub const OPAQUE_NVDEC0_STATUS: u16 = 11;
/// NVDEC0 status: enabled.
pub const NVDEC0_ENABLED: u8 = 0xAA;
/// NVDEC0 status: disabled.
pub const NVDEC0_DISABLED: u8 = 0x55;
/// Opaque data type: firmware identity (SHA-384 of the measured firmware, as in the leaf's DICE
/// extension).
pub const OPAQUE_FWID: u16 = 20;

/// One measurement block with the DMTF measurement specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurement {
    /// The block's index (1-based in NVIDIA's reports).
    pub index: u8,
    /// The DMTF value type (bit 7: raw bit stream, else a digest; low bits: what was measured).
    pub value_type: u8,
    /// The measurement value (a SHA-384 digest in NVIDIA's reports).
    pub value: Vec<u8>,
}

/// One opaque data field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueField<'a> {
    /// Its type.
    pub kind: u16,
    /// Its value.
    pub value: &'a [u8],
}

/// A parsed report. Borrows the report's bytes.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// The SPDM version both messages speak.
    pub version: u8,
    /// The requester's nonce: what the report answers.
    pub nonce: [u8; 32],
    /// The certificate slot the request asked for.
    pub slot: u8,
    /// The responder's nonce.
    pub responder_nonce: [u8; 32],
    /// The measurement blocks, in report order.
    pub measurements: Vec<Measurement>,
    /// The opaque data fields, in report order.
    pub opaque: Vec<OpaqueField<'a>>,
    /// `request ‖ response-without-signature`: what the signature covers.
    pub signed: &'a [u8],
    /// The raw `r ‖ s` signature.
    pub signature: &'a [u8],
}

impl Report<'_> {
    /// The value of the opaque field of `kind`, if present.
    pub fn opaque_field(&self, kind: u16) -> Option<&[u8]> {
        self.opaque
            .iter()
            .find(|field| field.kind == kind)
            .map(|field| field.value)
    }

    /// The driver version (opaque type 3), without its NUL terminator.
    pub fn driver_version(&self) -> Result<String, Failure> {
        let value = self
            .opaque_field(OPAQUE_DRIVER_VERSION)
            .ok_or_else(|| malformed("opaque data has no driver version (type 3)".to_owned()))?;
        let text = value.split(|&byte| byte == 0).next().unwrap_or_default();
        if text.is_empty() || !text.iter().all(|byte| byte.is_ascii_graphic()) {
            return Err(malformed(
                "opaque driver version (type 3) is not printable ASCII".to_owned(),
            ));
        }
        Ok(String::from_utf8_lossy(text).into_owned())
    }

    /// The VBIOS version (opaque type 6) as NVIDIA prints it: `96.00.A5.00.01` for the bytes
    /// `00 A5 00 96 01 00 00 00`.
    pub fn vbios_version(&self) -> Result<String, Failure> {
        let value = self
            .opaque_field(OPAQUE_VBIOS_VERSION)
            .ok_or_else(|| malformed("opaque data has no VBIOS version (type 6)".to_owned()))?;
        let &[b0, b1, b2, b3, b4, ..] = value else {
            return Err(malformed(format!(
                "opaque VBIOS version (type 6) has {} bytes, expected 8",
                value.len()
            )));
        };
        if value.len() != 8 {
            return Err(malformed(format!(
                "opaque VBIOS version (type 6) has {} bytes, expected 8",
                value.len()
            )));
        }
        Ok(format!("{b3:02X}.{b2:02X}.{b1:02X}.{b0:02X}.{b4:02X}"))
    }

    /// The firmware identity the report states (opaque type 20), if any. Reports of older
    /// drivers (535) carry none.
    pub fn fwid(&self) -> Option<&[u8]> {
        self.opaque_field(OPAQUE_FWID)
    }
}

/// Encodes a VBIOS version printed as `96.00.A5.00.01` into its 8 opaque bytes; the inverse of
/// [`Report::vbios_version`].
pub fn encode_vbios_version(text: &str) -> Option<[u8; 8]> {
    let mut groups = [0u8; 5];
    let mut parts = text.split('.');
    for group in &mut groups {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *group = u8::from_str_radix(part, 16).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    let [g0, g1, g2, g3, g4] = groups;
    Some([g3, g2, g1, g0, g4, 0, 0, 0])
}

fn malformed(detail: String) -> Failure {
    Failure::new(Reason::MalformedReport, detail)
}

/// A cursor over untrusted bytes that names the offset of every shortfall.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], Failure> {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        if rest.len() < len {
            return Err(malformed(format!(
                "{what} needs {len} bytes at offset {}, {} remain",
                self.at,
                rest.len()
            )));
        }
        let taken = &rest[..len];
        self.at += len;
        Ok(taken)
    }

    fn u8(&mut self, what: &str) -> Result<u8, Failure> {
        Ok(self.take(1, what)?[0])
    }

    fn u16_le(&mut self, what: &str) -> Result<u16, Failure> {
        let bytes = self.take(2, what)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    fn u24_le(&mut self, what: &str) -> Result<usize, Failure> {
        let bytes = self.take(3, what)?;
        Ok(usize::from(bytes[0]) | usize::from(bytes[1]) << 8 | usize::from(bytes[2]) << 16)
    }

    fn array32(&mut self, what: &str) -> Result<[u8; 32], Failure> {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.take(32, what)?);
        Ok(out)
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }
}

/// Parses a report: request, response, measurement blocks and opaque data. Checks structure
/// only; the signature is checked by [`crate::verify`].
pub fn parse_report(bytes: &[u8]) -> Result<Report<'_>, Failure> {
    if bytes.len() > crate::MAX_REPORT_BYTES {
        return Err(Failure::new(
            Reason::ReportTooLarge,
            format!(
                "report has {} bytes, at most {} are accepted",
                bytes.len(),
                crate::MAX_REPORT_BYTES
            ),
        ));
    }
    let mut cursor = Cursor { bytes, at: 0 };

    // The request.
    let version = cursor.u8("request SPDM version")?;
    if version != SPDM_VERSION_1_1 {
        return Err(Failure::new(
            Reason::UnsupportedSpdmVersion,
            format!("request speaks SPDM version {version:#04x}, expected 0x11 (1.1)"),
        ));
    }
    let code = cursor.u8("request code")?;
    if code != GET_MEASUREMENTS {
        return Err(malformed(format!(
            "request code at offset 1 is {code:#04x}, expected 0xE0 (GET_MEASUREMENTS)"
        )));
    }
    let attributes = cursor.u8("request attributes")?;
    if attributes & 0x01 == 0 {
        return Err(malformed(
            "request at offset 2 does not ask for a signature".to_owned(),
        ));
    }
    let _operation = cursor.u8("request measurement operation")?;
    let nonce = cursor.array32("request nonce")?;
    let slot = cursor.u8("request slot")? & 0x0F;

    // The response header.
    let response_version = cursor.u8("response SPDM version")?;
    if response_version != version {
        return Err(Failure::new(
            Reason::UnsupportedSpdmVersion,
            format!(
                "response at offset {REQUEST_LEN} speaks SPDM version {response_version:#04x}, the request {version:#04x}"
            ),
        ));
    }
    let code = cursor.u8("response code")?;
    if code != MEASUREMENTS {
        return Err(malformed(format!(
            "response code at offset {} is {code:#04x}, expected 0x60 (MEASUREMENTS)",
            REQUEST_LEN + 1
        )));
    }
    let _param1 = cursor.u8("response param1")?;
    let _param2 = cursor.u8("response param2")?;
    let block_count = cursor.u8("response number of blocks")?;
    let record_len = cursor.u24_le("response measurement record length")?;
    let record_start = cursor.at;
    let record = cursor.take(record_len, "measurement record")?;
    let measurements = parse_record(record, record_start, block_count)?;
    let responder_nonce = cursor.array32("response nonce")?;
    let opaque_len = usize::from(cursor.u16_le("opaque data length")?);
    let opaque_start = cursor.at;
    let opaque = parse_opaque(cursor.take(opaque_len, "opaque data")?, opaque_start)?;
    let signed_len = cursor.at;
    let signature = cursor.take(SIGNATURE_LEN, "signature")?;
    if cursor.remaining() != 0 {
        return Err(malformed(format!(
            "{} bytes follow the signature at offset {}",
            cursor.remaining(),
            cursor.at
        )));
    }
    Ok(Report {
        version,
        nonce,
        slot,
        responder_nonce,
        measurements,
        opaque,
        signed: &bytes[..signed_len],
        signature,
    })
}

fn parse_record(record: &[u8], base: usize, count: u8) -> Result<Vec<Measurement>, Failure> {
    let mut cursor = Cursor {
        bytes: record,
        at: 0,
    };
    let mut blocks: Vec<Measurement> = Vec::with_capacity(usize::from(count));
    while cursor.remaining() > 0 {
        let offset = base + cursor.at;
        let index = cursor.u8("measurement block index")?;
        let specification = cursor.u8("measurement specification")?;
        let size = usize::from(cursor.u16_le("measurement size")?);
        let body = cursor.take(size, "measurement")?;
        if specification != DMTF_MEASUREMENT_SPECIFICATION {
            return Err(malformed(format!(
                "measurement block {index} at offset {offset} uses measurement specification {specification:#04x}, expected 0x01 (DMTF)"
            )));
        }
        if blocks.iter().any(|block| block.index == index) {
            return Err(malformed(format!(
                "measurement block index {index} at offset {offset} appears twice"
            )));
        }
        let mut inner = Cursor { bytes: body, at: 0 };
        let value_type = inner.u8("DMTF measurement value type")?;
        let value_size = usize::from(inner.u16_le("DMTF measurement value size")?);
        let value = inner.take(value_size, "DMTF measurement value")?;
        if inner.remaining() != 0 {
            return Err(malformed(format!(
                "measurement block {index} at offset {offset} has {size} bytes but its DMTF value only {}",
                value_size + 3
            )));
        }
        blocks.push(Measurement {
            index,
            value_type,
            value: value.to_vec(),
        });
    }
    if blocks.len() != usize::from(count) {
        return Err(malformed(format!(
            "measurement record at offset {base} holds {} blocks, the header says {count}",
            blocks.len()
        )));
    }
    Ok(blocks)
}

fn parse_opaque(opaque: &[u8], base: usize) -> Result<Vec<OpaqueField<'_>>, Failure> {
    let mut cursor = Cursor {
        bytes: opaque,
        at: 0,
    };
    let mut fields: Vec<OpaqueField<'_>> = Vec::new();
    while cursor.remaining() > 0 {
        let offset = base + cursor.at;
        let kind = cursor.u16_le("opaque field type")?;
        let len = usize::from(cursor.u16_le("opaque field length")?);
        let value = cursor.take(len, "opaque field value")?;
        if fields.iter().any(|field| field.kind == kind) {
            return Err(malformed(format!(
                "opaque field type {kind} at offset {offset} appears twice"
            )));
        }
        fields.push(OpaqueField { kind, value });
    }
    Ok(fields)
}
