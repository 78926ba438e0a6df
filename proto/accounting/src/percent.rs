//! Exact percentages, and share comparisons by integer cross-multiplication.

use std::fmt;

/// Most decimal places a percentage may have ("7.125" has three).
const MAX_DECIMALS: u32 = 6;

/// A percentage between 0 and 100 inclusive, kept exactly as `scaled / scale` percent
/// where `scale` is a power of ten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percent {
    scaled: u64,
    scale: u64,
}

/// Text that is not an exact percentage between 0 and 100.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a percentage between 0 and 100 with at most 6 decimals")]
pub struct PercentError {
    /// The rejected text.
    pub input: String,
}

impl Percent {
    /// A whole percentage (`Percent::whole(75)` is 75 %).
    pub fn whole(value: u8) -> Option<Self> {
        (value <= 100).then_some(Self {
            scaled: u64::from(value),
            scale: 1,
        })
    }

    /// Parses `"75"`, `"7"`, `"7.5"` or `"66.666"`: plain decimal, no sign, no exponent.
    pub fn parse(input: &str) -> Result<Self, PercentError> {
        let error = || PercentError {
            input: input.to_owned(),
        };
        let text = input.trim().trim_end_matches('%').trim_end();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) {
            return Err(error());
        }
        let decimals = u32::try_from(fraction.len()).map_err(|_| error())?;
        if decimals > MAX_DECIMALS || whole.len() > 3 {
            return Err(error());
        }
        let scale = 10u64.pow(decimals);
        let whole: u64 = whole.parse().map_err(|_| error())?;
        let fraction: u64 = if fraction.is_empty() {
            0
        } else {
            fraction.parse().map_err(|_| error())?
        };
        let scaled = whole * scale + fraction;
        if scaled > 100 * scale {
            return Err(error());
        }
        Ok(Self { scaled, scale })
    }

    /// True when `part / total` is at least this percentage (a minimum is met). An empty total
    /// meets every minimum.
    pub fn is_reached_by(&self, part: u64, total: u64) -> bool {
        // part / total >= scaled / (100 * scale)  <=>  100 * scale * part >= scaled * total
        100 * u128::from(self.scale) * u128::from(part)
            >= u128::from(self.scaled) * u128::from(total)
    }

    /// True when `part / total` is at most this percentage (a maximum is kept). An empty total
    /// keeps every maximum.
    pub fn is_not_exceeded_by(&self, part: u64, total: u64) -> bool {
        100 * u128::from(self.scale) * u128::from(part)
            <= u128::from(self.scaled) * u128::from(total)
    }

    /// Largest `x >= 0` such that `(part + x) / (total + x)` stays at most this percentage,
    /// or `None` when there is no limit (100 %). Callers check the current share first: when it
    /// is already above the limit the result is 0.
    pub fn max_growth_below(&self, part: u64, total: u64) -> Option<u64> {
        // 100·s·(c + x) <= a·(T + x)  <=>  x·(100·s − a) <= a·T − 100·s·c
        let (a, s) = (i128::from(self.scaled), i128::from(self.scale));
        let slack = a * i128::from(total) - 100 * s * i128::from(part);
        let divisor = 100 * s - a;
        if divisor == 0 {
            return None;
        }
        Some(clamp_floor_div(slack, divisor))
    }

    /// Largest `x >= 0` of compute added outside `part` such that `part / (total + x)` stays at
    /// least this percentage, or `None` when there is no limit (0 %).
    pub fn max_dilution_above(&self, part: u64, total: u64) -> Option<u64> {
        // 100·s·P >= a·(T + x)  <=>  a·x <= 100·s·P − a·T
        let (a, s) = (i128::from(self.scaled), i128::from(self.scale));
        if a == 0 {
            return None;
        }
        let slack = 100 * s * i128::from(part) - a * i128::from(total);
        Some(clamp_floor_div(slack, a))
    }

    /// Smallest `y >= 0` added to `part` (and so to `total`) such that `(part + y) / (total + y)`
    /// reaches this percentage, or `None` when no addition can (100 % with compute outside
    /// `part`) or the grown total would not fit in 64 bits.
    pub fn min_addition_to_reach(&self, part: u64, total: u64) -> Option<u64> {
        // 100·s·(P + y) >= a·(T + y)  <=>  y·(100·s − a) >= a·T − 100·s·P
        let (a, s) = (i128::from(self.scaled), i128::from(self.scale));
        let needed = a * i128::from(total) - 100 * s * i128::from(part);
        fitting(ceil_div(needed, 100 * s - a)?, total)
    }

    /// Smallest `y >= 0` added outside `part` such that `part / (total + y)` stays at most this
    /// percentage, or `None` when no addition can (0 % with compute in `part`) or the grown
    /// total would not fit in 64 bits.
    pub fn min_dilution_to_keep(&self, part: u64, total: u64) -> Option<u64> {
        // 100·s·P <= a·(T + y)  <=>  a·y >= 100·s·P − a·T
        let (a, s) = (i128::from(self.scaled), i128::from(self.scale));
        let needed = 100 * s * i128::from(part) - a * i128::from(total);
        fitting(ceil_div(needed, a)?, total)
    }

    /// Smallest `x` in `0..=part` removed from `part` (and so from `total`) such that
    /// `(part − x) / (total − x)` stays at most this percentage. Always possible: removing all
    /// of `part` leaves a share of 0.
    pub fn min_removal_to_keep(&self, part: u64, total: u64) -> u64 {
        // 100·s·(P − x) <= a·(T − x)  <=>  x·(100·s − a) >= 100·s·P − a·T; with P <= T the
        // right side is positive only when a < 100·s, and then x <= P.
        let (a, s) = (i128::from(self.scaled), i128::from(self.scale));
        let needed = 100 * s * i128::from(part) - a * i128::from(total);
        ceil_div(needed, 100 * s - a).map_or(part, |x| u64::try_from(x).unwrap_or(part).min(part))
    }

    /// The percentage as a float, for display only.
    pub fn as_f64(&self) -> f64 {
        // Display only: decisions never use this value.
        self.scaled as f64 / self.scale as f64
    }
}

/// `max(0, ceil(needed / divisor))`: 0 when nothing is needed, `None` when something is and
/// the divisor is not positive (no amount of the change helps).
fn ceil_div(needed: i128, divisor: i128) -> Option<i128> {
    if needed <= 0 {
        Some(0)
    } else if divisor <= 0 {
        None
    } else {
        Some((needed + divisor - 1) / divisor)
    }
}

/// `amount` when `total + amount` still fits in 64 bits.
fn fitting(amount: i128, total: u64) -> Option<u64> {
    let amount = u64::try_from(amount).ok()?;
    total.checked_add(amount).map(|_| amount)
}

/// `max(0, floor(numerator / divisor))` for a positive divisor, saturated into `u64`.
fn clamp_floor_div(numerator: i128, divisor: i128) -> u64 {
    if numerator <= 0 || divisor <= 0 {
        return 0;
    }
    u64::try_from(numerator / divisor).unwrap_or(u64::MAX)
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.scaled / self.scale;
        let fraction = self.scaled % self.scale;
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let width = self.scale.ilog10() as usize;
        let digits = format!("{fraction:0width$}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// `100 · part / total` truncated to `decimals` places, as text; "0" for an empty total. Used
/// for display, where truncation never shows a failing minimum as reached.
pub fn format_share(part: u64, total: u64, decimals: u32) -> String {
    if total == 0 {
        return format!("{:.*}", decimals as usize, 0.0);
    }
    let scale = 10u128.pow(decimals);
    let scaled = 100 * scale * u128::from(part) / u128::from(total);
    if decimals == 0 {
        return scaled.to_string();
    }
    format!(
        "{}.{:0width$}",
        scaled / scale,
        scaled % scale,
        width = decimals as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Percent {
        Percent::parse(text).unwrap()
    }

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(
            p("75"),
            Percent {
                scaled: 75,
                scale: 1
            }
        );
        assert_eq!(
            p("7.5"),
            Percent {
                scaled: 75,
                scale: 10
            }
        );
        assert_eq!(
            p("7.50%"),
            Percent {
                scaled: 750,
                scale: 100
            }
        );
        assert_eq!(p("100"), Percent::whole(100).unwrap());
        assert_eq!(p("7.125").to_string(), "7.125");
        assert_eq!(p("50.0").to_string(), "50");
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "-1",
            "100.0001",
            "101",
            "1e2",
            ".5",
            "5.",
            "7,5",
            "nan",
            "0.1234567",
        ] {
            // "5." has an empty fraction, which is allowed; every other case is an error.
            if bad == "5." {
                assert_eq!(p(bad), Percent::whole(5).unwrap());
                continue;
            }
            assert!(Percent::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn thresholds_are_inclusive() {
        let min = p("75");
        assert!(min.is_reached_by(75, 100));
        assert!(!min.is_reached_by(74, 100));
        assert!(min.is_reached_by(0, 0));
        let max = p("7");
        assert!(max.is_not_exceeded_by(7, 100));
        assert!(!max.is_not_exceeded_by(8, 100));
        assert!(max.is_not_exceeded_by(0, 0));
    }

    #[test]
    fn growth_matches_the_2025_closed_forms() {
        // floor((7T − 100c) / 93) and floor((4·T1 − 3T) / 3) for T = 1000, c = 20, T1 = 900.
        assert_eq!(p("7").max_growth_below(20, 1000), Some((7000 - 2000) / 93));
        assert_eq!(
            p("75").max_dilution_above(900, 1000),
            Some((3600 - 3000) / 3)
        );
        assert_eq!(p("50").max_dilution_above(600, 1000), Some(2 * 600 - 1000));
        assert_eq!(p("100").max_growth_below(5, 10), None);
        assert_eq!(p("0").max_dilution_above(5, 10), None);
        assert_eq!(p("7").max_growth_below(80, 1000), Some(0));
    }

    #[test]
    fn smallest_changes_match_the_2025_closed_forms() {
        // Tier 1 at 700 of 1000: 3T − 4·T1 = 200 more in Tier 1 reach 75 % (900 / 1200).
        assert_eq!(p("75").min_addition_to_reach(700, 1000), Some(200));
        assert_eq!(p("75").min_addition_to_reach(750, 1000), Some(0));
        // Home at 400 of 1000: T − 2H = 200 more at home reach 50 %.
        assert_eq!(p("50").min_addition_to_reach(400, 1000), Some(200));
        // A Tier-2 country at 100 of 1000: ⌈(100c − 7T)/93⌉ = ⌈3000/93⌉ = 33 removed
        // (67 / 967 ≤ 7 %, 68 / 968 > 7 %), or ⌈(100c − 7T)/7⌉ = ⌈3000/7⌉ = 429 added elsewhere.
        assert_eq!(p("7").min_removal_to_keep(100, 1000), 33);
        assert!(p("7").is_not_exceeded_by(67, 967) && !p("7").is_not_exceeded_by(68, 968));
        assert_eq!(p("7").min_dilution_to_keep(100, 1000), Some(429));
        assert!(p("7").is_not_exceeded_by(100, 1429) && !p("7").is_not_exceeded_by(100, 1428));
        assert_eq!(p("7").min_removal_to_keep(70, 1000), 0);
        // What no amount of the change can do.
        assert_eq!(p("100").min_addition_to_reach(1, 2), None);
        assert_eq!(p("0").min_dilution_to_keep(1, 2), None);
        assert_eq!(p("0").min_removal_to_keep(5, 10), 5);
        assert_eq!(p("100").min_removal_to_keep(5, 10), 0);
        assert_eq!(p("99.999999").min_addition_to_reach(0, u64::MAX / 2), None);
    }

    #[test]
    fn share_text_truncates() {
        assert_eq!(format_share(2, 3, 3), "66.666");
        assert_eq!(format_share(749_999, 1_000_000, 3), "74.999");
        assert_eq!(format_share(0, 0, 2), "0.00");
        assert_eq!(format_share(1, 1, 0), "100");
    }
}
