//! Just enough DER and PEM to split a certificate chain and read the few structures X.509
//! libraries leave opaque (TCG DICE extensions, NVIDIA's otherName). Bounded by its input;
//! never panics.

/// One DER element: its tag byte, its contents, and its whole encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Element<'a> {
    pub tag: u8,
    pub contents: &'a [u8],
    pub encoded: &'a [u8],
}

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;
pub(crate) const UTF8_STRING: u8 = 0x0C;

/// Reads one element from the front of `bytes`; `None` when it is not well-formed DER with a
/// low tag number and a definite length of at most four length bytes.
pub(crate) fn read(bytes: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    if tag & 0x1F == 0x1F {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(count);
        if len_bytes[0] == 0 {
            return None;
        }
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &byte| (acc << 8) | usize::from(byte));
        if len < 0x80 {
            return None;
        }
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let header = bytes.len() - rest.len();
    let (contents, after) = rest.split_at(len);
    Some((
        Element {
            tag,
            contents,
            encoded: &bytes[..header + len],
        },
        after,
    ))
}

/// The elements of a constructed element's contents, in order; `None` if any is malformed.
pub(crate) fn children(mut contents: &[u8]) -> Option<Vec<Element<'_>>> {
    let mut out = Vec::new();
    while !contents.is_empty() {
        let (element, rest) = read(contents)?;
        out.push(element);
        contents = rest;
    }
    Some(out)
}

/// The DER encoding of an OBJECT IDENTIFIER's contents for `arcs` (first two arcs below 40 and
/// 3 as X.690 requires of every OID this crate names).
pub(crate) fn oid_contents(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    if let [first, second, rest @ ..] = arcs {
        push_base128(&mut out, first * 40 + second);
        for &arc in rest {
            push_base128(&mut out, arc);
        }
    }
    out
}

fn push_base128(out: &mut Vec<u8>, value: u64) {
    let mut groups = [0u8; 10];
    let mut count = 0;
    let mut rest = value;
    loop {
        groups[count] = (rest & 0x7F) as u8;
        count += 1;
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    for position in (0..count).rev() {
        let continuation = if position == 0 { 0 } else { 0x80 };
        out.push(groups[position] | continuation);
    }
}

/// Encodes one element (for the test device CA).
#[cfg(feature = "testing")]
pub(crate) fn encode(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&byte| byte == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

const PEM_BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const PEM_END: &[u8] = b"-----END CERTIFICATE-----";

/// PEM `CERTIFICATE` blocks for DER certificates (for the test device CA).
#[cfg(feature = "testing")]
pub(crate) fn pem_encode(certificates: &[Vec<u8>]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for der_bytes in certificates {
        out.extend_from_slice(PEM_BEGIN);
        out.push(b'\n');
        let mut text = Vec::with_capacity(der_bytes.len() * 4 / 3 + 4);
        for group in der_bytes.chunks(3) {
            let b = [
                group[0],
                *group.get(1).unwrap_or(&0),
                *group.get(2).unwrap_or(&0),
            ];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for position in 0..4 {
                if position <= group.len() {
                    text.push(ALPHABET[(n >> (18 - 6 * position) & 0x3F) as usize]);
                } else {
                    text.push(b'=');
                }
            }
        }
        for line in text.chunks(64) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.extend_from_slice(PEM_END);
        out.push(b'\n');
    }
    out
}

/// Whether `bytes` look like PEM (the first non-whitespace byte starts a BEGIN line).
pub(crate) fn is_pem(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|byte| !byte.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes[start..].starts_with(b"-----BEGIN")
}

/// Decodes every `CERTIFICATE` block of a PEM text. Only whitespace and NUL bytes may stand
/// between and after blocks. Errors name the block and what is wrong with it.
pub(crate) fn pem_certificates(mut text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let skip = text
            .iter()
            .position(|&byte| !(byte.is_ascii_whitespace() || byte == 0))
            .unwrap_or(text.len());
        text = &text[skip..];
        if text.is_empty() {
            return Ok(out);
        }
        let number = out.len() + 1;
        let Some(body) = text.strip_prefix(PEM_BEGIN) else {
            return Err(format!(
                "PEM block {number} does not start with \"-----BEGIN CERTIFICATE-----\""
            ));
        };
        let Some(end) = find(body, PEM_END) else {
            return Err(format!("PEM block {number} has no END line"));
        };
        let der = base64_decode(&body[..end])
            .ok_or_else(|| format!("PEM block {number} is not valid base64"))?;
        out.push(der);
        text = &body[end + PEM_END.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Standard base64 with padding; whitespace is skipped.
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut buffer = 0u32;
    let mut bits = 0u32;
    let mut padding = 0usize;
    for &byte in text {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            _ if byte.is_ascii_whitespace() => continue,
            _ => return None,
        };
        if padding > 0 {
            return None;
        }
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    if padding > 2 || (bits > 0 && buffer != 0) {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_contents_match_known_encodings() {
        assert_eq!(
            oid_contents(&[2, 23, 133, 5, 4, 1]),
            [0x67, 0x81, 0x05, 0x05, 0x04, 0x01]
        );
        assert_eq!(
            oid_contents(&[1, 3, 6, 1, 4, 1, 412, 274, 1]),
            [0x2B, 0x06, 0x01, 0x04, 0x01, 0x83, 0x1C, 0x82, 0x12, 0x01]
        );
    }

    #[test]
    fn base64_round_trips_and_refuses_garbage() {
        assert_eq!(base64_decode(b"TWFu").as_deref(), Some(&b"Man"[..]));
        assert_eq!(base64_decode(b"TWE=").as_deref(), Some(&b"Ma"[..]));
        assert_eq!(base64_decode(b"TQ==").as_deref(), Some(&b"M"[..]));
        assert_eq!(base64_decode(b"TQ=A"), None);
        assert_eq!(base64_decode(b"T*=="), None);
    }

    #[cfg(feature = "testing")]
    #[test]
    fn pem_encoding_round_trips() {
        let certificates: Vec<Vec<u8>> = (0..5u8).map(|len| (0..len * 40).collect()).collect();
        let pem = pem_encode(&certificates);
        assert_eq!(pem_certificates(&pem).expect("decodes"), certificates);
    }

    #[test]
    fn long_lengths_must_be_minimal() {
        assert!(read(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).is_none());
        assert!(read(&[0x04, 0x03, 1, 2]).is_none());
        let (element, rest) = read(&[0x04, 0x02, 1, 2, 9]).expect("well-formed");
        assert_eq!(element.contents, [1, 2]);
        assert_eq!(rest, [9]);
    }
}
