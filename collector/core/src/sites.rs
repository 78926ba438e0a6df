//! The site registry: where each enrolled host's compute counts. A TOML file of
//! `[[site]]` entries with id, country, name and coordinates; every error reported with its key.

use std::collections::BTreeMap;

use proto_accounting::CountryCode;
use serde::Deserialize;

/// One data centre.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Stable identifier agents are enrolled with.
    pub id: String,
    /// ISO 3166-1 alpha-2 country its compute counts in.
    pub country: CountryCode,
    /// Human name.
    pub name: String,
    /// Latitude and longitude in degrees, when given.
    pub coordinates: Option<(f64, f64)>,
}

/// A registry that could not be read: every problem found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SiteError {
    /// Not TOML of the expected shape.
    #[error("site registry is not valid: {0}")]
    Parse(String),
    /// Invalid entries, each with its key.
    #[error("site registry has {} error(s):\n{}", .0.len(), .0.iter().map(|(k, m)| format!("  {k}: {m}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<(String, String)>),
}

/// Every site by id.
#[derive(Debug, Clone, Default)]
pub struct SiteRegistry {
    sites: BTreeMap<String, Site>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    #[serde(default)]
    site: Vec<RawSite>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    id: String,
    country: String,
    #[serde(default)]
    name: String,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

impl SiteRegistry {
    /// Reads a registry file.
    pub fn from_toml(text: &str) -> Result<Self, SiteError> {
        let raw: RawRegistry =
            toml::from_str(text).map_err(|error| SiteError::Parse(error.to_string()))?;
        let mut errors = Vec::new();
        let mut sites = BTreeMap::new();
        for (index, site) in raw.site.into_iter().enumerate() {
            let key = |field: &str| format!("site[{index}].{field}");
            let id = site.id.trim().to_owned();
            let valid_id = !id.is_empty()
                && id.len() <= 256
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
            if !valid_id {
                errors.push((
                    key("id"),
                    format!("{id:?} must be 1 to 256 characters of A-Z a-z 0-9 - _ . :"),
                ));
            }
            let country = CountryCode::parse(&site.country)
                .map_err(|e| errors.push((key("country"), e.to_string())))
                .ok();
            let coordinates = match (site.latitude, site.longitude) {
                (None, None) => None,
                (Some(lat), Some(lon))
                    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
                {
                    Some((lat, lon))
                }
                (Some(_), Some(_)) => {
                    errors.push((
                        key("latitude"),
                        "latitude must be within ±90 and longitude within ±180".into(),
                    ));
                    None
                }
                _ => {
                    errors.push((
                        key("latitude"),
                        "give both latitude and longitude, or neither".into(),
                    ));
                    None
                }
            };
            if sites.contains_key(&id) {
                errors.push((key("id"), format!("{id:?} is listed twice")));
                continue;
            }
            if let (true, Some(country)) = (valid_id, country) {
                sites.insert(
                    id.clone(),
                    Site {
                        id,
                        country,
                        name: site.name,
                        coordinates,
                    },
                );
            }
        }
        if errors.is_empty() {
            Ok(Self { sites })
        } else {
            Err(SiteError::Invalid(errors))
        }
    }

    /// The site with this id.
    pub fn get(&self, id: &str) -> Option<&Site> {
        self.sites.get(id)
    }

    /// Every site, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Site> {
        self.sites.values()
    }

    /// Number of sites.
    pub fn len(&self) -> usize {
        self.sites.len()
    }

    /// True without sites.
    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    /// The registry as TOML that [`SiteRegistry::from_toml`] reads back (for evidence
    /// bundles: where each site says it is).
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for site in self.sites.values() {
            out.push_str(&format!(
                "[[site]]\nid = {:?}\ncountry = \"{}\"\nname = {:?}\n",
                site.id, site.country, site.name
            ));
            if let Some((lat, lon)) = site.coordinates {
                out.push_str(&format!("latitude = {lat:?}\nlongitude = {lon:?}\n"));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sites_and_reports_every_error() {
        let registry = SiteRegistry::from_toml(
            "[[site]]\nid = \"us-va-1\"\ncountry = \"us\"\nname = \"Ashburn\"\nlatitude = 39.04\nlongitude = -77.49\n\
             [[site]]\nid = \"my-jhb-1\"\ncountry = \"MY\"\n",
        )
        .unwrap();
        assert_eq!(registry.len(), 2);
        assert_eq!(registry.get("us-va-1").unwrap().country.as_str(), "US");
        assert_eq!(registry.get("my-jhb-1").unwrap().coordinates, None);

        let error = SiteRegistry::from_toml(
            "[[site]]\nid = \"a b\"\ncountry = \"XX\"\n[[site]]\nid = \"ok\"\ncountry = \"DE\"\nlatitude = 95.0\nlongitude = 1.0\n\
             [[site]]\nid = \"ok\"\ncountry = \"DE\"\n",
        )
        .unwrap_err();
        let SiteError::Invalid(errors) = error else {
            panic!("expected validation errors")
        };
        let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "site[0].id",
                "site[0].country",
                "site[1].latitude",
                "site[2].id"
            ]
        );
        assert!(SiteRegistry::from_toml("[[site]]\nid = \"x\"\ncountri = \"US\"").is_err());
    }

    #[test]
    fn a_registry_writes_back_what_it_reads() {
        let registry = SiteRegistry::from_toml(
            "[[site]]\nid = \"us-va-1\"\ncountry = \"US\"\nname = \"Ashburn \\\"A\\\"\"\nlatitude = 39.04\nlongitude = -77.49\n\
             [[site]]\nid = \"my-jhb-1\"\ncountry = \"MY\"\n",
        )
        .unwrap();
        let again = SiteRegistry::from_toml(&registry.to_toml()).unwrap();
        assert_eq!(
            again.iter().collect::<Vec<_>>(),
            registry.iter().collect::<Vec<_>>()
        );
    }
}
