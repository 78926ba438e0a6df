//! Exact shares: a part of a total, compared by cross-multiplication in `u128` and written with
//! three decimals truncated toward zero.

use std::cmp::Ordering;

use proto_accounting::Percent;
use proto_accounting::percent::format_share;

/// `part / total`, or 0 for an empty total.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Share {
    part: u64,
    total: u64,
}

impl Share {
    pub(crate) fn new(part: u64, total: u64) -> Self {
        if total == 0 {
            Self { part: 0, total: 1 }
        } else {
            Self { part, total }
        }
    }

    /// Thousandths of a percent, truncated: 74.999 % is 74_999.
    pub(crate) fn millipercent(self) -> u64 {
        let scaled = 100_000 * u128::from(self.part) / u128::from(self.total);
        // A part never exceeds its total, so this is at most 100_000.
        u64::try_from(scaled).unwrap_or(u64::MAX)
    }

    /// `"74.999"`.
    pub(crate) fn text(self) -> String {
        format_share(self.part, self.total, 3)
    }
}

impl PartialEq for Share {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Share {}

impl PartialOrd for Share {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Share {
    fn cmp(&self, other: &Self) -> Ordering {
        (u128::from(self.part) * u128::from(other.total))
            .cmp(&(u128::from(other.part) * u128::from(self.total)))
    }
}

/// Thousandths of a percent as text: 74_999 is `"74.999"`.
pub(crate) fn millipercent_text(value: u64) -> String {
    format!("{}.{:03}", value / 1000, value % 1000)
}

/// A policy percentage with three decimals, truncated: 7 % is `"7.000"`.
pub(crate) fn limit_text(percent: Percent) -> String {
    let text = percent.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let fraction: String = fraction.chars().chain("000".chars()).take(3).collect();
    format!("{whole}.{fraction}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_exactly() {
        assert!(Share::new(1, 3) < Share::new(334, 1000));
        assert!(Share::new(1, 3) > Share::new(333, 1000));
        assert_eq!(Share::new(2, 4), Share::new(1, 2));
        assert_eq!(Share::new(5, 0), Share::new(0, 7));
    }

    #[test]
    fn writes_three_decimals_truncated() {
        assert_eq!(Share::new(749_999, 1_000_000).text(), "74.999");
        assert_eq!(Share::new(749_999, 1_000_000).millipercent(), 74_999);
        assert_eq!(Share::new(0, 0).text(), "0.000");
        assert_eq!(Share::new(1, 1).text(), "100.000");
        assert_eq!(millipercent_text(74_999), "74.999");
        assert_eq!(millipercent_text(7_000), "7.000");
        assert_eq!(millipercent_text(5), "0.005");
    }

    #[test]
    fn limits_from_the_policy() {
        assert_eq!(limit_text(Percent::whole(7).unwrap()), "7.000");
        assert_eq!(limit_text(Percent::parse("7.5").unwrap()), "7.500");
        assert_eq!(limit_text(Percent::parse("66.66666").unwrap()), "66.666");
        assert_eq!(limit_text(Percent::whole(100).unwrap()), "100.000");
    }
}
