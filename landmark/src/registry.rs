//! The landmark's entry in a landmark registry (`proto_location::Landmarks`): what an operator
//! or auditor adds to the registry the collector and the offline verifier trust.

use proto_evidence::Coordinates;
use proto_location::{Landmark, Landmarks};

/// The `[[landmark]]` entry of a landmark, as TOML that `Landmarks::from_toml` reads.
pub fn entry(id: &str, at: Coordinates, public_key: [u8; 32], operator: &str) -> String {
    Landmarks::from_landmarks([Landmark {
        id: id.to_owned(),
        at,
        public_key,
        operator: operator.to_owned(),
    }])
    .to_toml()
    .trim_end()
    .to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_entry_reads_back_as_a_registry() {
        let at = Coordinates::from_degrees(1.3521, 103.8198).unwrap();
        let text = entry("sin-1", at, [7; 32], "Audit firm");
        assert!(text.starts_with("[[landmark]]\nid = \"sin-1\"\n"), "{text}");
        let registry = Landmarks::from_toml(&text).unwrap();
        let landmark = registry.get("sin-1").unwrap();
        assert_eq!(landmark.at, at);
        assert_eq!(landmark.public_key, [7; 32]);
        assert_eq!(landmark.operator, "Audit firm");
    }
}
