//! Instants on the command line: RFC 3339 in UTC (`2026-11-03T14:00:00Z`, or a date alone for
//! its midnight) or Unix milliseconds.

use anyhow::{anyhow, bail};

/// Parses an instant; errors say what was expected.
pub fn parse_instant(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| anyhow!("{text:?} is too large for Unix milliseconds"));
    }
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let fields: Vec<&str> = date.split('-').collect();
    let [year, month, day] = fields[..] else {
        bail!("{text:?} is not an instant like 2026-11-03T14:00:00Z (or Unix milliseconds)");
    };
    let number = |part: &str, what: &str| -> anyhow::Result<i64> {
        part.parse::<i64>()
            .map_err(|_| anyhow!("{text:?}: the {what} {part:?} is not a number"))
    };
    let (year, month, day) = (
        number(year, "year")?,
        number(month, "month")?,
        number(day, "day")?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        bail!("{text:?}: month or day out of range");
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    if let Some(time) = time {
        let time = time
            .strip_suffix('Z')
            .ok_or_else(|| anyhow!("{text:?}: give the time in UTC, ending in Z"))?;
        let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
        let parts: Vec<&str> = clock.split(':').collect();
        let [hour, minute, second] = match parts[..] {
            [h, m, s] => [h, m, s],
            [h, m] => [h, m, "0"],
            _ => bail!("{text:?}: the time is not HH:MM[:SS]"),
        };
        let (hour, minute, second) = (
            number(hour, "hour")?,
            number(minute, "minute")?,
            number(second, "second")?,
        );
        if hour > 23 || minute > 59 || second > 60 {
            bail!("{text:?}: time out of range");
        }
        seconds += hour * 3600 + minute * 60 + second;
        let millis = if fraction.is_empty() {
            0
        } else {
            let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
            number(&digits, "fraction")?
        };
        return Ok(seconds * 1000 + millis);
    }
    Ok(seconds * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn instants_in_every_accepted_shape() {
        assert_eq!(parse_instant("0").unwrap(), 0);
        assert_eq!(parse_instant("1793491200000").unwrap(), 1_793_491_200_000);
        assert_eq!(parse_instant("2026-11-01").unwrap(), 1_793_491_200_000);
        assert_eq!(
            parse_instant("2026-11-01T00:00:01Z").unwrap(),
            1_793_491_201_000
        );
        assert_eq!(
            parse_instant("2026-11-01T00:01:00.5Z").unwrap(),
            1_793_491_260_500
        );
        assert_eq!(parse_instant("1970-01-01T00:00Z").unwrap(), 0);
        assert!(parse_instant("2026-11-01T00:00:00+01:00").is_err());
        assert!(parse_instant("yesterday").is_err());
        assert!(parse_instant("2026-13-01").is_err());
    }
}
