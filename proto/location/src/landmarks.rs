//! The landmarks a collector or an auditor trusts: a TOML file of `[[landmark]]` entries with
//! id, surveyed coordinates and Ed25519 public key (what `veu-landmark keygen` prints); every
//! error reported with its key.

use std::collections::BTreeMap;

use proto_evidence::Coordinates;
use serde::Deserialize;

/// One landmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landmark {
    /// Its id: the name in its `landmark` certificate, and what its statements name.
    pub id: String,
    /// Where it stands.
    pub at: Coordinates,
    /// Its raw Ed25519 public key.
    pub public_key: [u8; 32],
    /// Who runs it (free text, for people).
    pub operator: String,
}

/// A registry that could not be read: every problem found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LandmarkError {
    /// Not TOML of the expected shape.
    #[error("landmark registry is not valid: {0}")]
    Parse(String),
    /// Invalid entries, each with its key.
    #[error("landmark registry has {} error(s):\n{}", .0.len(), .0.iter().map(|(k, m)| format!("  {k}: {m}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<(String, String)>),
}

/// Every landmark by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Landmarks {
    by_id: BTreeMap<String, Landmark>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    #[serde(default)]
    landmark: Vec<RawLandmark>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLandmark {
    id: String,
    latitude: f64,
    longitude: f64,
    public_key: String,
    #[serde(default)]
    operator: String,
}

impl Landmarks {
    /// Reads a registry file's text.
    pub fn from_toml(text: &str) -> Result<Self, LandmarkError> {
        let raw: RawRegistry =
            toml::from_str(text).map_err(|error| LandmarkError::Parse(error.to_string()))?;
        let mut errors = Vec::new();
        let mut by_id = BTreeMap::new();
        for (index, raw) in raw.landmark.into_iter().enumerate() {
            let key = |field: &str| format!("landmark[{index}].{field}");
            let valid_id = !raw.id.is_empty()
                && raw.id.len() <= proto_evidence::location::MAX_MEASUREMENT_ID_BYTES
                && raw
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
            if !valid_id {
                errors.push((
                    key("id"),
                    format!(
                        "{:?} must be 1 to 256 characters of A-Z a-z 0-9 - _ . :",
                        raw.id
                    ),
                ));
            }
            let at = Coordinates::from_degrees(raw.latitude, raw.longitude)
                .map_err(|e| errors.push((key("latitude"), e.to_string())))
                .ok();
            let public_key = parse_key(&raw.public_key)
                .map_err(|message| errors.push((key("public_key"), message)))
                .ok();
            if by_id.contains_key(&raw.id) {
                errors.push((key("id"), format!("{:?} is listed twice", raw.id)));
                continue;
            }
            if let (true, Some(at), Some(public_key)) = (valid_id, at, public_key) {
                by_id.insert(
                    raw.id.clone(),
                    Landmark {
                        id: raw.id,
                        at,
                        public_key,
                        operator: raw.operator,
                    },
                );
            }
        }
        if errors.is_empty() {
            Ok(Self { by_id })
        } else {
            Err(LandmarkError::Invalid(errors))
        }
    }

    /// A registry of the given landmarks (a later one with an id already present replaces it).
    pub fn from_landmarks(landmarks: impl IntoIterator<Item = Landmark>) -> Self {
        Self {
            by_id: landmarks.into_iter().map(|l| (l.id.clone(), l)).collect(),
        }
    }

    /// The landmark with this id.
    pub fn get(&self, id: &str) -> Option<&Landmark> {
        self.by_id.get(id)
    }

    /// Every landmark, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Landmark> {
        self.by_id.values()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The registry as TOML that [`Landmarks::from_toml`] reads back.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for l in self.by_id.values() {
            let hex: String = l.public_key.iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!(
                "[[landmark]]\nid = {:?}\nlatitude = {}\nlongitude = {}\npublic_key = \"{hex}\"\noperator = {:?}\n\n",
                l.id,
                l.at.latitude(),
                l.at.longitude(),
                l.operator
            ));
        }
        out
    }
}

fn parse_key(text: &str) -> Result<[u8; 32], String> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "expected 64 hex digits (an Ed25519 public key, as `veu-landmark keygen` prints), got {} characters",
            text.len()
        ));
    }
    let mut key = [0; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[landmark]]
id = "fra-1"
latitude = 50.1109
longitude = 8.6821
public_key = "0101010101010101010101010101010101010101010101010101010101010101"
operator = "Audit firm"
"#;

    #[test]
    fn a_registry_reads_and_writes_back() {
        let registry = Landmarks::from_toml(GOOD).unwrap();
        let fra = registry.get("fra-1").unwrap();
        assert_eq!(fra.public_key, [1; 32]);
        assert_eq!(fra.at, Coordinates::from_degrees(50.1109, 8.6821).unwrap());
        assert_eq!(Landmarks::from_toml(&registry.to_toml()).unwrap(), registry);
    }

    #[test]
    fn every_bad_entry_is_reported_with_its_key() {
        let text = r#"
[[landmark]]
id = "a b"
latitude = 95.0
longitude = 8.0
public_key = "zz"
"#;
        let Err(LandmarkError::Invalid(errors)) = Landmarks::from_toml(text) else {
            panic!("accepted");
        };
        let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "landmark[0].id",
                "landmark[0].latitude",
                "landmark[0].public_key"
            ]
        );
        let twice = format!("{GOOD}{GOOD}");
        assert!(matches!(
            Landmarks::from_toml(&twice),
            Err(LandmarkError::Invalid(e)) if e[0].0 == "landmark[1].id"
        ));
        assert!(matches!(
            Landmarks::from_toml("landmark = 3"),
            Err(LandmarkError::Parse(_))
        ));
    }
}
