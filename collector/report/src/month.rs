//! The report's calendar: UTC months and days, and timestamps written in ISO 8601 (and read
//! back from RFC 3339), computed with the proleptic Gregorian calendar (days from the civil
//! date and back).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Milliseconds in a UTC day (no leap seconds, as in Unix time).
pub const DAY_MS: i64 = 86_400_000;

/// A UTC calendar month, written `2026-11`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Month {
    /// Year, 1 to 9999.
    pub year: i32,
    /// Month of the year, 1 to 12.
    pub month: u32,
}

/// Text or fields that are not a month.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonthError {
    /// Not written `YYYY-MM`.
    #[error("{input:?} is not a month written YYYY-MM (for example 2026-11)")]
    Shape {
        /// The rejected text.
        input: String,
    },
    /// A month number outside 1 to 12, or a year outside 1 to 9999.
    #[error(
        "{year:04}-{month:02} is not a month: the year must be 1 to 9999 and the month 1 to 12"
    )]
    OutOfRange {
        /// The year given.
        year: i32,
        /// The month given.
        month: u32,
    },
}

impl Month {
    /// A checked month.
    pub fn new(year: i32, month: u32) -> Result<Self, MonthError> {
        let candidate = Self { year, month };
        candidate.check()?;
        Ok(candidate)
    }

    /// Fails when a field is out of range (the fields are public, so a month can be built
    /// without [`Month::new`]).
    pub fn check(&self) -> Result<(), MonthError> {
        if (1..=9999).contains(&self.year) && (1..=12).contains(&self.month) {
            Ok(())
        } else {
            Err(MonthError::OutOfRange {
                year: self.year,
                month: self.month,
            })
        }
    }

    /// First millisecond of the month, UTC (inclusive).
    pub fn start_ms(&self) -> i64 {
        days_from_civil(i64::from(self.year), i64::from(self.month), 1).saturating_mul(DAY_MS)
    }

    /// First millisecond after the month, UTC (exclusive): the month is `[start_ms, end_ms)`.
    pub fn end_ms(&self) -> i64 {
        let (year, month) = if self.month >= 12 {
            (i64::from(self.year) + 1, 1)
        } else {
            (i64::from(self.year), i64::from(self.month) + 1)
        };
        days_from_civil(year, month, 1).saturating_mul(DAY_MS)
    }

    /// Number of days in the month (0 for a month that fails [`Month::check`]).
    pub fn days(&self) -> u32 {
        let leap = (self.year % 4 == 0 && self.year % 100 != 0) || self.year % 400 == 0;
        match self.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 0,
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = MonthError;

    /// Parses exactly `YYYY-MM`: four-digit year, two-digit month.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let shape = || MonthError::Shape {
            input: input.to_owned(),
        };
        let (year, month) = input.split_once('-').ok_or_else(shape)?;
        let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(month, 2) {
            return Err(shape());
        }
        let year: i32 = year.parse().map_err(|_| shape())?;
        let month: u32 = month.parse().map_err(|_| shape())?;
        Self::new(year, month)
    }
}

impl TryFrom<String> for Month {
    type Error = MonthError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Month> for String {
    fn from(month: Month) -> Self {
        month.to_string()
    }
}

/// `2026-11-03T14:05:00Z`, with `.123` before the `Z` when the milliseconds are not zero.
pub fn format_timestamp(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let in_day = ms.rem_euclid(DAY_MS);
    let (year, month, day) = civil_from_days(days);
    let (seconds, millis) = (in_day / 1000, in_day % 1000);
    let clock = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    if millis == 0 {
        format!("{year:04}-{month:02}-{day:02}T{clock}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{clock}.{millis:03}Z")
    }
}

/// The UTC date of an instant, `2026-11-03`.
pub fn format_date(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{year:04}-{month:02}-{day:02}")
}

/// Text that is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not an RFC 3339 timestamp such as 2026-11-03T14:05:00Z: {reason}")]
pub struct TimestampError {
    /// The rejected text.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Reads an RFC 3339 timestamp (`2026-11-03T14:05:00Z`, `2026-11-03T15:05:00.250+01:00`) as
/// ms since the Unix epoch: the inverse of [`format_timestamp`]. Digits of a fraction past the
/// millisecond are dropped (towards the past); a leap second (`:60`) is refused, since Unix
/// time has none.
pub fn parse_timestamp(input: &str) -> Result<i64, TimestampError> {
    let fail = |reason| TimestampError {
        input: input.to_owned(),
        reason,
    };
    let bytes = input.as_bytes();
    let number = |at: usize, len: usize| -> Option<i64> {
        let digits = bytes.get(at..at + len)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let punctuation =
        |at: usize, allowed: &[u8]| bytes.get(at).is_some_and(|b| allowed.contains(b));
    let shape = "write it YYYY-MM-DDTHH:MM:SS, an optional fraction, then Z or an offset";
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        number(0, 4),
        number(5, 2),
        number(8, 2),
        number(11, 2),
        number(14, 2),
        number(17, 2),
    ) else {
        return Err(fail(shape));
    };
    if !(punctuation(4, b"-")
        && punctuation(7, b"-")
        && punctuation(10, b"Tt ")
        && punctuation(13, b":")
        && punctuation(16, b":"))
    {
        return Err(fail(shape));
    }
    let days_in_month = Month {
        year: i32::try_from(year).unwrap_or(0),
        month: u32::try_from(month).unwrap_or(0),
    }
    .days();
    if days_in_month == 0 || day < 1 || day > i64::from(days_in_month) {
        return Err(fail("no such date"));
    }
    if hour > 23 || minute > 59 {
        return Err(fail("no such time of day"));
    }
    if second > 59 {
        return Err(fail("seconds run 00 to 59 (Unix time has no leap second)"));
    }
    let mut at = 19;
    let mut millis = 0;
    if punctuation(at, b".") {
        at += 1;
        let digits = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err(fail("a fraction needs at least one digit after the point"));
        }
        for (place, digit) in bytes[at..at + digits.min(3)].iter().enumerate() {
            millis += i64::from(digit - b'0') * [100, 10, 1][place];
        }
        at += digits;
    }
    let offset_minutes = match bytes.get(at..) {
        Some(b"Z" | b"z") => 0,
        Some([sign @ (b'+' | b'-'), _, _, b':', _, _]) => {
            let (Some(hours), Some(minutes)) = (number(at + 1, 2), number(at + 4, 2)) else {
                return Err(fail("an offset is written +HH:MM or -HH:MM"));
            };
            if hours > 23 || minutes > 59 {
                return Err(fail("no such offset"));
            }
            let minutes = hours * 60 + minutes;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return Err(fail("end with Z (UTC) or an offset such as +01:00")),
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_minutes * 60;
    Ok(seconds * 1000 + millis)
}

/// Days from 1970-01-01 to a civil date (month 1 to 12). Howard Hinnant's algorithm, valid
/// for every date in the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date (year, month, day) of a day number counted from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_months() {
        let month: Month = "2026-11".parse().unwrap();
        assert_eq!(month, Month::new(2026, 11).unwrap());
        assert_eq!(month.to_string(), "2026-11");
        assert_eq!(Month::new(7, 2).unwrap().to_string(), "0007-02");
    }

    #[test]
    fn rejects_everything_else_with_the_reason() {
        for bad in [
            "",
            "2026",
            "2026-1",
            "2026/11",
            "26-11",
            "2026-11-01",
            " 2026-11",
            "+202-11",
        ] {
            assert_eq!(
                bad.parse::<Month>(),
                Err(MonthError::Shape { input: bad.into() }),
                "{bad}"
            );
        }
        let error = "2026-13".parse::<Month>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "2026-13 is not a month: the year must be 1 to 9999 and the month 1 to 12"
        );
        assert!("0000-01".parse::<Month>().is_err());
    }

    #[test]
    fn bounds_match_unix_time() {
        // date -u -d 2026-11-01 +%s → 1793491200; date -u -d 2026-12-01 +%s → 1796083200
        let november: Month = "2026-11".parse().unwrap();
        assert_eq!(november.start_ms(), 1_793_491_200_000);
        assert_eq!(november.end_ms(), 1_796_083_200_000);
        assert_eq!(november.days(), 30);
        let december: Month = "2026-12".parse().unwrap();
        assert_eq!(december.start_ms(), november.end_ms());
        assert_eq!(december.end_ms(), Month::new(2027, 1).unwrap().start_ms());
        assert_eq!(Month::new(1970, 1).unwrap().start_ms(), 0);
        assert_eq!(Month::new(2024, 2).unwrap().days(), 29);
        assert_eq!(Month::new(2100, 2).unwrap().days(), 28);
        assert_eq!(Month::new(2000, 2).unwrap().days(), 29);
        for month in 1..=12 {
            let m = Month::new(2024, month).unwrap();
            assert_eq!(m.end_ms() - m.start_ms(), i64::from(m.days()) * DAY_MS);
        }
    }

    #[test]
    fn serializes_as_text() {
        let month = Month::new(2026, 11).unwrap();
        assert_eq!(serde_json::to_string(&month).unwrap(), "\"2026-11\"");
        assert_eq!(serde_json::from_str::<Month>("\"2026-11\"").unwrap(), month);
        assert!(serde_json::from_str::<Month>("\"2026-00\"").is_err());
    }

    #[test]
    fn timestamps_in_iso_8601() {
        let start = Month::new(2026, 11).unwrap().start_ms();
        assert_eq!(
            format_timestamp(start + 2 * DAY_MS + (14 * 60 + 5) * 60_000),
            "2026-11-03T14:05:00Z"
        );
        assert_eq!(format_timestamp(start - 1), "2026-10-31T23:59:59.999Z");
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59.999Z");
        // date -u -d @951782400 → 2000-02-29
        assert_eq!(format_date(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn rfc_3339_timestamps_read_back() {
        for ms in [
            0,
            -1,
            1_793_491_200_000,
            1_793_491_200_000 - 1,
            951_782_400_123,
        ] {
            assert_eq!(parse_timestamp(&format_timestamp(ms)), Ok(ms), "{ms}");
        }
        // date -u -d 2026-11-03T14:00:00Z +%s → 1793714400
        assert_eq!(
            parse_timestamp("2026-11-03T14:00:00Z"),
            Ok(1_793_714_400_000)
        );
        assert_eq!(
            parse_timestamp("2026-11-03T15:30:00.5+01:30"),
            Ok(1_793_714_400_500)
        );
        assert_eq!(
            parse_timestamp("2026-11-03t09:00:00.123456789-05:00"),
            Ok(1_793_714_400_123)
        );
        for (bad, reason) in [
            ("", "write it"),
            ("2026-11-03", "write it"),
            ("2026-11-03T14:00:00", "end with Z"),
            ("2026-11-03T14:00:00+0100", "end with Z"),
            ("2026-11-03T14:00:00Z ", "end with Z"),
            ("2026-02-29T00:00:00Z", "no such date"),
            ("2026-13-01T00:00:00Z", "no such date"),
            ("2026-11-00T00:00:00Z", "no such date"),
            ("2026-11-03T24:00:00Z", "no such time"),
            ("2026-11-03T23:59:60Z", "leap second"),
            ("2026-11-03T14:00:00.Z", "at least one digit"),
            ("2026-11-03T14:00:00+24:00", "no such offset"),
            ("2026-11-03T14:00:00+ab:00", "offset is written"),
            ("２026-11-03T14:00:00Z", "write it"),
        ] {
            let error = parse_timestamp(bad).unwrap_err();
            assert!(error.to_string().contains(reason), "{bad}: {error}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_formatted_instant_reads_back(ms in -62_135_596_800_000i64..253_402_300_800_000) {
            proptest::prop_assert_eq!(parse_timestamp(&format_timestamp(ms)), Ok(ms));
        }
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in (-800_000..800_000).step_by(97) {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }
}
