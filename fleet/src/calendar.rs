//! The clock and the UTC month around an instant, with the report's calendar
//! (`collector_report::month`).

pub use collector_report::month::{Month, MonthError, format_date};

/// This machine's clock, in Unix milliseconds (0 before the epoch).
pub use veu_daemon_kit::now_unix_ms as now_ms;

/// The UTC month that holds the instant `ms`.
pub fn month_containing(ms: i64) -> Result<Month, MonthError> {
    let date = format_date(ms);
    // `YYYY-MM-DD`: the month is all but the day (a year past 9999 is refused by the parse).
    let month = date
        .rsplit_once('-')
        .map_or(date.as_str(), |(month, _)| month);
    month.parse()
}

/// The UTC month of this machine's clock.
pub fn this_month() -> Result<Month, MonthError> {
    month_containing(now_ms())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// 2026-11-01T00:00:00Z.
    const NOVEMBER_2026: i64 = 1_793_491_200_000;

    #[test]
    fn an_instant_is_in_the_month_whose_bounds_hold_it() {
        let november = month_containing(NOVEMBER_2026).unwrap();
        assert_eq!(november.to_string(), "2026-11");
        assert_eq!(november.start_ms(), NOVEMBER_2026);
        // The last millisecond of October, and of December into January.
        assert_eq!(
            month_containing(NOVEMBER_2026 - 1).unwrap().to_string(),
            "2026-10"
        );
        let december = Month::new(2026, 12).unwrap();
        assert_eq!(month_containing(december.end_ms() - 1).unwrap(), december);
        assert_eq!(
            month_containing(december.end_ms()).unwrap().to_string(),
            "2027-01"
        );
        assert_eq!(format_date(december.end_ms()), "2027-01-01");
        // A leap day and the epoch.
        let leap = Month::new(2028, 2).unwrap();
        assert_eq!(month_containing(leap.end_ms() - 1).unwrap(), leap);
        assert_eq!(format_date(leap.end_ms() - 1), "2028-02-29");
        assert_eq!(month_containing(0).unwrap().to_string(), "1970-01");
    }

    #[test]
    fn every_instant_of_a_month_maps_back_to_it() {
        for year in [1970, 2000, 2024, 2026, 2100] {
            for number in 1..=12 {
                let month = Month::new(year, number).unwrap();
                for ms in [
                    month.start_ms(),
                    month.start_ms() + 86_399_999,
                    month.end_ms() - 1,
                ] {
                    assert_eq!(month_containing(ms).unwrap(), month, "{ms}");
                }
            }
        }
    }

    #[test]
    fn the_clock_is_after_the_epoch_and_its_month_valid() {
        assert!(now_ms() > 0);
        this_month().unwrap().check().unwrap();
    }
}
