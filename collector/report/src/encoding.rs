//! How the accounting types appear in the report's JSON: a country as its two-letter code, a
//! tier as its number, a rule as its contract name. Reading checks each value.

use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

use proto_accounting::{CountryCode, Rule, Tier};

/// A country as `"MY"`.
pub mod country {
    use super::*;

    /// Writes the upper-case code.
    pub fn serialize<S: Serializer>(
        country: &CountryCode,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(country.as_str())
    }

    /// Reads a valid ISO 3166-1 alpha-2 code.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<CountryCode, D::Error> {
        let text = String::deserialize(deserializer)?;
        CountryCode::parse(&text).map_err(D::Error::custom)
    }
}

/// An optional country, `null` when absent.
pub mod optional_country {
    use super::*;

    /// Writes the code or `null`.
    pub fn serialize<S: Serializer>(
        country: &Option<CountryCode>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match country {
            Some(country) => serializer.serialize_some(country.as_str()),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a valid code or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<CountryCode>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| CountryCode::parse(&text).map_err(D::Error::custom))
            .transpose()
    }
}

/// A tier as `1`, `2` or `3`.
pub mod tier {
    use super::*;

    /// Writes the tier's number.
    pub fn serialize<S: Serializer>(tier: &Tier, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(tier.number())
    }

    /// Reads 1, 2 or 3.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Tier, D::Error> {
        match u8::deserialize(deserializer)? {
            1 => Ok(Tier::One),
            2 => Ok(Tier::Two),
            3 => Ok(Tier::Three),
            other => Err(D::Error::custom(format!(
                "{other} is not a tier (1, 2 or 3)"
            ))),
        }
    }
}

/// A rule as its name, e.g. `"tier2_country_max_share"`.
pub mod rule {
    use super::*;

    const RULES: [Rule; 4] = [
        Rule::Tier1MinShare,
        Rule::HomeMinShare,
        Rule::Tier2CountryMaxShare,
        Rule::Tier3Prohibited,
    ];

    /// Writes [`Rule::as_str`].
    pub fn serialize<S: Serializer>(rule: &Rule, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(rule.as_str())
    }

    /// Reads one of the four rule names.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Rule, D::Error> {
        let text = String::deserialize(deserializer)?;
        RULES
            .into_iter()
            .find(|rule| rule.as_str() == text)
            .ok_or_else(|| D::Error::custom(format!("{text:?} is not a rule name")))
    }
}
