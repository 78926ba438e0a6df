//! Words and numbers as a reader of the HTML page reads them: escaped text, grouped thousands,
//! shares with their sign, rule and limit names instead of the JSON's ids.

use proto_accounting::{CountryCode, Rule};

use crate::month::Month;
use crate::report::{LimitKind, Limits, State};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Escapes text for HTML content and quoted attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1234567` as `1,234,567`: how the report, and veuctl's tables, write whole numbers.
pub fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A share as written in the report (`"74.999"`) with its sign: `74.999 %`.
pub(super) fn percent(share: &str) -> String {
    format!("{share} %")
}

/// A policy percentage without trailing zeros: `"7.000"` is `7`, `"7.500"` is `7.5`.
pub(super) fn limit_number(limit: &str) -> String {
    if limit.contains('.') {
        limit.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        limit.to_owned()
    }
}

/// `November 2026`.
pub(super) fn month_name(month: Month) -> String {
    let name = usize::try_from(month.month)
        .ok()
        .and_then(|m| m.checked_sub(1))
        .and_then(|i| MONTHS.get(i))
        .copied()
        .unwrap_or("?");
    format!("{name} {}", month.year)
}

/// `MY Malaysia`.
pub(super) fn country(code: CountryCode) -> String {
    format!("{code} {}", code.name())
}

/// The rule for people, with its limit: "Tier-1 share at least 75 %".
pub(super) fn rule_name(rule: Rule, limits: &Limits) -> String {
    match rule {
        Rule::Tier1MinShare => format!(
            "Tier-1 share at least {} %",
            limit_number(&limits.tier1_min_share)
        ),
        Rule::HomeMinShare => match &limits.home {
            Some(home) => format!(
                "Home share ({}) at least {} %",
                home.country,
                limit_number(&home.min_share)
            ),
            None => "Home share at its minimum".to_owned(),
        },
        Rule::Tier2CountryMaxShare => format!(
            "Tier-2 country share at most {} %",
            limit_number(&limits.tier2_country_max_share)
        ),
        Rule::Tier3Prohibited => "No compute in Tier 3".to_owned(),
    }
}

/// The limit a country's share is read against, in words.
pub(super) fn limit_words(kind: LimitKind, limit: Option<&str>) -> String {
    let limit = limit.map(limit_number).unwrap_or_default();
    match kind {
        LimitKind::Tier1MinTotal => format!("Tier-1 total at least {limit} %"),
        LimitKind::HomeMin => format!("at least {limit} % (home)"),
        LimitKind::Tier2Max => format!("at most {limit} %"),
        LimitKind::Prohibited => "none allowed (Tier 3)".to_owned(),
        LimitKind::None => "no limit".to_owned(),
    }
}

/// A state for a table cell: upper case where it needs attention.
pub(super) fn state_words(state: State) -> &'static str {
    match state {
        State::Compliant => "compliant",
        State::NotCompliant => "NOT COMPLIANT",
        State::NoCompute => "no compute",
        State::NoEvidence => "no evidence",
    }
}

/// The verdict's headline.
pub(super) fn state_headline(state: State) -> &'static str {
    match state {
        State::Compliant => "COMPLIANT",
        State::NotCompliant => "NOT COMPLIANT",
        State::NoCompute => "NO COMPUTE",
        State::NoEvidence => "NO EVIDENCE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn numbers_and_names_for_people() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(126_720_000), "126,720,000");
        assert_eq!(limit_number("7.000"), "7");
        assert_eq!(limit_number("7.500"), "7.5");
        assert_eq!(limit_number("100.000"), "100");
        assert_eq!(month_name(Month::new(2026, 11).unwrap()), "November 2026");
        assert_eq!(
            limit_words(LimitKind::Tier2Max, Some("7.000")),
            "at most 7 %"
        );
    }
}
