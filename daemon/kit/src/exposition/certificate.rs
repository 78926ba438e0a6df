//! When a certificate expires, for the `*_certificate_expiry_timestamp_seconds` gauges: the
//! `notAfter` of the first certificate of a PEM chain, read with a few lines of DER rather
//! than an X.509 library (the agent has none, and needs nothing else from one).

use base64::Engine as _;

/// `notAfter` of the first `CERTIFICATE` block of `pem`, Unix seconds; `None` when it is not
/// a well-formed certificate.
pub fn not_after(pem: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(pem).ok()?;
    let body = text
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)?
        .split("-----END CERTIFICATE-----")
        .next()?;
    let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .ok()?;
    let (certificate, _) = element(&der, 0x30)?;
    let (mut tbs, _) = element(certificate, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = element(tbs, 0xa0)?.1; // version
    }
    let tbs = element(tbs, 0x02)?.1; // serial number
    let tbs = element(tbs, 0x30)?.1; // signature algorithm
    let tbs = element(tbs, 0x30)?.1; // issuer
    let (validity, _) = element(tbs, 0x30)?;
    let after = element(validity, validity.first().copied()?)?.1;
    let tag = after.first().copied()?;
    let (time, _) = element(after, tag)?;
    let time = std::str::from_utf8(time).ok()?;
    match tag {
        0x17 => {
            // UTCTime YYMMDDHHMMSSZ: 50-99 are 19xx (RFC 5280).
            let year: i64 = time.get(0..2)?.parse().ok()?;
            let year = if year >= 50 { 1900 + year } else { 2000 + year };
            unix(year, time.get(2..)?)
        }
        0x18 => unix(time.get(0..4)?.parse().ok()?, time.get(4..)?),
        _ => None,
    }
}

/// The content of the DER element at the start of `der` if it has `tag`, and what follows.
fn element(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *der.first()? != tag {
        return None;
    }
    let first = *der.get(1)?;
    let (length, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let length = der
            .get(2..2 + count)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (length, 2 + count)
    };
    let end = header.checked_add(length)?;
    Some((der.get(header..end)?, der.get(end..)?))
}

/// Unix seconds of `year` and `MMDDHHMMSSZ`.
fn unix(year: i64, rest: &str) -> Option<i64> {
    if rest.len() != 11 || !rest.ends_with('Z') {
        return None;
    }
    let two = |at: usize| -> Option<i64> { rest.get(at..at + 2)?.parse().ok() };
    let (month, day) = (two(0)?, two(2)?);
    let (hour, minute, second) = (two(4)?, two(6)?, two(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_convert_exactly() {
        assert_eq!(unix(1970, "0101000000Z"), Some(0));
        assert_eq!(unix(2000, "0301000000Z"), Some(951_868_800));
        assert_eq!(unix(2038, "0119031408Z"), Some(2_147_483_648));
        assert_eq!(unix(2026, "1301000000Z"), None);
        assert_eq!(unix(2026, "0101000000"), None);
    }

    #[test]
    fn the_not_after_of_a_generated_certificate_is_read_in_both_time_forms() {
        // UTCTime until 2049, GeneralizedTime from 2050 (RFC 5280).
        for year in [2031, 2051] {
            let mut params = rcgen::CertificateParams::new(vec!["veu".to_owned()]).unwrap();
            params.not_after = rcgen::date_time_ymd(year, 7, 14);
            let key = rcgen::KeyPair::generate().unwrap();
            let pem = params.self_signed(&key).unwrap().pem();
            assert_eq!(not_after(pem.as_bytes()), unix(year.into(), "0714000000Z"));
        }
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(not_after(b"not a pem"), None);
        assert_eq!(
            not_after(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"),
            None
        );
    }
}
