//! Number formatting for tables: thousands separators and fixed decimals.

/// `1234567` as `1,234,567`, as the report writes it.
pub use collector_report::render::grouped;

/// `count` with its noun, singular or plural and grouped: `1 row`, `12,345 rows`.
pub fn counted(count: u64, one: &str, many: &str) -> String {
    format!("{} {}", grouped(count), if count == 1 { one } else { many })
}

/// A float with `decimals` places and grouped thousands, e.g. `12,345.67`.
pub fn grouped_f64(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let grouped_whole = whole
        .parse::<u64>()
        .map(grouped)
        .unwrap_or_else(|_| whole.to_owned());
    if fraction.is_empty() {
        grouped_whole
    } else {
        format!("{grouped_whole}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(126_720_000), "126,720,000");
        assert_eq!(grouped_f64(1234.5678, 2), "1,234.57");
        assert_eq!(grouped_f64(0.004, 2), "0.00");
        assert_eq!(counted(1, "row", "rows"), "1 row");
        assert_eq!(counted(0, "row", "rows"), "0 rows");
        assert_eq!(counted(12_345, "row", "rows"), "12,345 rows");
    }
}
