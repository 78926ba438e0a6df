//! ISO 3166-1 alpha-2 country codes, checked against the full list.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

/// Generated from Debian's iso-codes package by `data/countries.py`.
const COUNTRIES_TSV: &str = include_str!("../data/countries.tsv");

/// A valid ISO 3166-1 alpha-2 code, stored in upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode([u8; 2]);

/// A string that is not an ISO 3166-1 alpha-2 code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not an ISO 3166-1 alpha-2 country code")]
pub struct CountryError {
    /// The rejected text, as given.
    pub input: String,
}

impl CountryCode {
    /// Parses a code in either case, ignoring surrounding whitespace (`" my"` is `MY`).
    pub fn parse(input: &str) -> Result<Self, CountryError> {
        let error = || CountryError {
            input: input.to_owned(),
        };
        let bytes = input.trim().as_bytes();
        let [a, b] = bytes else {
            return Err(error());
        };
        let code = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
        if table().contains_key(&code) {
            Ok(Self(code))
        } else {
            Err(error())
        }
    }

    /// The upper-case code, e.g. `"US"`.
    pub fn as_str(&self) -> &str {
        // Invariant: both bytes are ASCII upper-case letters, checked in `parse`.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// The short English name, e.g. "United States".
    pub fn name(&self) -> &'static str {
        table().get(&self.0).copied().unwrap_or("")
    }

    /// Every valid code, in order.
    pub fn all() -> impl Iterator<Item = CountryCode> {
        table().keys().map(|code| CountryCode(*code))
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CountryCode {
    type Err = CountryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn table() -> &'static BTreeMap<[u8; 2], &'static str> {
    static TABLE: OnceLock<BTreeMap<[u8; 2], &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| {
        COUNTRIES_TSV
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .filter_map(|line| {
                let (code, name) = line.split_once('\t')?;
                let code: [u8; 2] = code.as_bytes().try_into().ok()?;
                Some((code, name))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_holds_every_iso_code() {
        assert_eq!(CountryCode::all().count(), 249);
    }

    #[test]
    fn parses_either_case_and_trims() {
        assert_eq!(CountryCode::parse(" my ").unwrap().as_str(), "MY");
        assert_eq!(CountryCode::parse("Us").unwrap().name(), "United States");
    }

    #[test]
    fn rejects_codes_that_are_not_assigned() {
        for bad in ["", "U", "USA", "XX", "EU", "UK", "1A", "é"] {
            let error = CountryCode::parse(bad).unwrap_err();
            assert_eq!(error.input, bad);
        }
    }
}
