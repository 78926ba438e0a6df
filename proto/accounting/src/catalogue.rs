//! The accelerator catalogue: TPP per physical device, looked up by PCI id first and by the
//! name NVML reports second. Unknown devices are reported as unknown, never priced at zero.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::{Digest, FieldError, join_lines};

/// The catalogue compiled into every binary; `Catalogue::from_toml` reads a replacement.
pub const BUILTIN_TOML: &str = include_str!("../data/catalogue.toml");

/// Where a catalogue entry's TPP comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The vendor's published export classification.
    VendorExportTable,
    /// Dense datasheet peak times bit length at the precision that maximises it.
    SpecDerived,
}

/// A PCI identity: vendor and device, and the subsystem when two products share a device id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciId {
    /// PCI vendor id (0x10de for NVIDIA).
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// Subsystem vendor and device, when needed to tell products apart.
    pub subsystem: Option<(u16, u16)>,
}

impl PciId {
    /// Parses `10de:2330` or `10de:2330:10de:16c1` (hex, either case).
    pub fn parse(text: &str) -> Option<Self> {
        let parts = text
            .split(':')
            .map(|part| {
                (part.len() == 4)
                    .then(|| u16::from_str_radix(part, 16).ok())
                    .flatten()
            })
            .collect::<Option<Vec<u16>>>()?;
        match parts[..] {
            [vendor, device] => Some(Self {
                vendor,
                device,
                subsystem: None,
            }),
            [vendor, device, sub_vendor, sub_device] => Some(Self {
                vendor,
                device,
                subsystem: Some((sub_vendor, sub_device)),
            }),
            _ => None,
        }
    }

    /// From NVML's packed fields: `pciDeviceId` is `(device << 16) | vendor` and
    /// `pciSubSystemId` is `(subsystem device << 16) | subsystem vendor`.
    pub fn from_nvml(pci_device_id: u32, pci_subsystem_id: u32) -> Self {
        let split = |packed: u32| ((packed & 0xffff) as u16, (packed >> 16) as u16);
        let (vendor, device) = split(pci_device_id);
        let (sub_vendor, sub_device) = split(pci_subsystem_id);
        Self {
            vendor,
            device,
            subsystem: (pci_subsystem_id != 0).then_some((sub_vendor, sub_device)),
        }
    }

    fn without_subsystem(self) -> Self {
        Self {
            subsystem: None,
            ..self
        }
    }
}

impl fmt::Display for PciId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vendor, self.device)?;
        if let Some((vendor, device)) = self.subsystem {
            write!(f, ":{vendor:04x}:{device:04x}")?;
        }
        Ok(())
    }
}

/// One accelerator model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accelerator {
    /// Catalogue id, e.g. `H100-SXM5-80GB`.
    pub id: String,
    /// Vendor name.
    pub vendor: String,
    /// Architecture as NVML names it (`Hopper`), used for conservative pricing of unknown devices.
    pub architecture: String,
    /// Short ids accepted in fleet files (`H100`).
    pub aliases: Vec<String>,
    /// Names NVML reports for this model.
    pub nvml_names: Vec<String>,
    /// PCI identities of this model.
    pub pci: Vec<PciId>,
    /// Total processing performance per physical device.
    pub tpp: u64,
    /// Export control classification number, as published.
    pub eccn: Option<String>,
    /// Where the TPP comes from.
    pub basis: Basis,
    /// The source, in words.
    pub source: String,
    /// False when the TPP or identity still needs a second source.
    pub confirmed: bool,
    /// Caveats.
    pub note: Option<String>,
}

impl Accelerator {
    /// Whole units of this accelerator that fit in `tpp` (rounded down): how many more can be
    /// deployed within a headroom.
    pub fn units_within(&self, tpp: u64) -> u64 {
        // A catalogue entry's TPP is greater than zero (checked when read).
        tpp.checked_div(self.tpp).unwrap_or(0)
    }

    /// Whole units of this accelerator whose TPP covers `tpp` (rounded up): how many to add or
    /// remove for a change of at least `tpp`.
    pub fn units_covering(&self, tpp: u64) -> u64 {
        if self.tpp == 0 {
            0
        } else {
            tpp.div_ceil(self.tpp)
        }
    }
}

/// How a device was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// By PCI vendor, device and subsystem id.
    PciSubsystem,
    /// By PCI vendor and device id.
    Pci,
    /// By the name NVML reports.
    Name,
}

/// A device the catalogue knows, and how it was recognised.
#[derive(Debug, Clone, Copy)]
pub struct Identified<'a> {
    /// The catalogue entry.
    pub accelerator: &'a Accelerator,
    /// Which key matched.
    pub matched_by: MatchedBy,
}

/// A catalogue that could not be read: every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// Not TOML of the expected shape.
    #[error("catalogue is not valid: {0}")]
    Parse(String),
    /// Well-formed TOML with invalid entries.
    #[error("catalogue has {} error(s):\n{}", .0.len(), join_lines(.0))]
    Invalid(Vec<FieldError>),
}

impl CatalogueError {
    /// Each problem on its own line's worth of text: the parse error, or every field error.
    pub fn messages(&self) -> Vec<String> {
        match self {
            Self::Parse(message) => vec![message.clone()],
            Self::Invalid(fields) => fields.iter().map(FieldError::to_string).collect(),
        }
    }
}

/// The accelerator catalogue with its lookup indexes.
#[derive(Debug, Clone)]
pub struct Catalogue {
    entries: Vec<Accelerator>,
    by_id: BTreeMap<String, usize>,
    by_pci: BTreeMap<PciId, usize>,
    by_name: BTreeMap<String, usize>,
    digest: Digest,
}

impl Catalogue {
    /// The catalogue compiled into the binary.
    pub fn builtin() -> Result<Self, CatalogueError> {
        Self::from_toml(BUILTIN_TOML)
    }

    /// Reads a catalogue file, reporting every invalid entry with its key.
    pub fn from_toml(text: &str) -> Result<Self, CatalogueError> {
        let raw: RawCatalogue =
            toml::from_str(text).map_err(|error| CatalogueError::Parse(error.to_string()))?;
        let mut errors = Vec::new();
        if raw.format != 1 {
            errors.push(FieldError::new(
                "format",
                format!(
                    "unsupported format {}; this build reads format 1",
                    raw.format
                ),
            ));
        }
        let mut catalogue = Catalogue {
            entries: Vec::with_capacity(raw.accelerator.len()),
            by_id: BTreeMap::new(),
            by_pci: BTreeMap::new(),
            by_name: BTreeMap::new(),
            digest: Digest::of(text.as_bytes()),
        };
        for (index, entry) in raw.accelerator.into_iter().enumerate() {
            let key = format!("accelerator[{index}]");
            if let Some(accelerator) = catalogue.check_entry(&key, entry, &mut errors) {
                catalogue.entries.push(accelerator);
            }
        }
        if catalogue.entries.is_empty() && errors.is_empty() {
            errors.push(FieldError::new(
                "accelerator",
                "the catalogue has no entries",
            ));
        }
        if errors.is_empty() {
            Ok(catalogue)
        } else {
            Err(CatalogueError::Invalid(errors))
        }
    }

    /// SHA-256 of the catalogue file's exact bytes.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[Accelerator] {
        &self.entries
    }

    /// The entry with this id or alias, compared case-insensitively.
    pub fn by_id(&self, id_or_alias: &str) -> Option<&Accelerator> {
        self.by_id
            .get(&id_or_alias.trim().to_ascii_lowercase())
            .map(|&index| &self.entries[index])
    }

    /// Identifies a device: PCI id with subsystem, then PCI id alone, then the NVML name.
    pub fn identify(&self, pci: Option<PciId>, nvml_name: &str) -> Option<Identified<'_>> {
        let found = |index: usize, matched_by| Identified {
            accelerator: &self.entries[index],
            matched_by,
        };
        if let Some(pci) = pci {
            if let Some(&index) = pci.subsystem.and_then(|_| self.by_pci.get(&pci)) {
                return Some(found(index, MatchedBy::PciSubsystem));
            }
            if let Some(&index) = self.by_pci.get(&pci.without_subsystem()) {
                return Some(found(index, MatchedBy::Pci));
            }
        }
        self.by_name
            .get(&normalize_name(nvml_name))
            .map(|&index| found(index, MatchedBy::Name))
    }

    /// Ids and aliases close to `input`, for "did you mean" hints.
    pub fn suggestions(&self, input: &str) -> Vec<&str> {
        let needle = input
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' ', '_'], "");
        if needle.len() < 2 {
            return Vec::new();
        }
        let mut hits: Vec<&str> = self
            .entries
            .iter()
            .filter(|entry| {
                let id = entry.id.to_ascii_lowercase().replace(['-', ' ', '_'], "");
                id.contains(&needle) || needle.contains(&id)
            })
            .map(|entry| entry.id.as_str())
            .collect();
        hits.truncate(5);
        hits
    }

    fn check_entry(
        &mut self,
        key: &str,
        raw: RawAccelerator,
        errors: &mut Vec<FieldError>,
    ) -> Option<Accelerator> {
        let before = errors.len();
        let index = self.entries.len();
        let id = raw.id.trim().to_owned();
        if id.is_empty() || id.contains(char::is_whitespace) {
            errors.push(FieldError::new(
                format!("{key}.id"),
                "must be non-empty, without spaces",
            ));
        }
        for (alias_key, name) in std::iter::once((format!("{key}.id"), &id)).chain(
            raw.aliases
                .iter()
                .enumerate()
                .map(|(i, alias)| (format!("{key}.aliases[{i}]"), alias)),
        ) {
            let folded = name.trim().to_ascii_lowercase();
            if folded.is_empty() {
                errors.push(FieldError::new(alias_key, "must not be empty"));
            } else if let Some(&other) = self.by_id.get(&folded) {
                let owner = self.entries.get(other).map_or(id.as_str(), |e| &e.id);
                errors.push(FieldError::new(
                    alias_key,
                    format!("{name:?} is already used by {owner}"),
                ));
            } else {
                self.by_id.insert(folded, index);
            }
        }
        if raw.nvml_names.is_empty() {
            errors.push(FieldError::new(
                format!("{key}.nvml_names"),
                "needs at least one name",
            ));
        }
        for (i, name) in raw.nvml_names.iter().enumerate() {
            let folded = normalize_name(name);
            if folded.is_empty() {
                errors.push(FieldError::new(
                    format!("{key}.nvml_names[{i}]"),
                    "must not be empty",
                ));
            } else if self.by_name.insert(folded, index).is_some() {
                errors.push(FieldError::new(
                    format!("{key}.nvml_names[{i}]"),
                    format!("{name:?} is listed twice in the catalogue"),
                ));
            }
        }
        let mut pci = Vec::with_capacity(raw.pci.len());
        for (i, text) in raw.pci.iter().enumerate() {
            let pci_key = format!("{key}.pci[{i}]");
            match PciId::parse(text) {
                None => errors.push(FieldError::new(
                    pci_key,
                    format!(
                        "{text:?} is not vendor:device or vendor:device:subvendor:subdevice in hex"
                    ),
                )),
                Some(parsed) if self.by_pci.insert(parsed, index).is_some() => {
                    errors.push(FieldError::new(
                        pci_key,
                        format!("{parsed} is listed twice in the catalogue"),
                    ))
                }
                Some(parsed) => pci.push(parsed),
            }
        }
        if raw.tpp == 0 {
            errors.push(FieldError::new(
                format!("{key}.tpp"),
                "must be greater than zero",
            ));
        }
        if raw.architecture.trim().is_empty() {
            errors.push(FieldError::new(
                format!("{key}.architecture"),
                "must not be empty",
            ));
        }
        (errors.len() == before).then_some(Accelerator {
            id,
            vendor: raw.vendor,
            architecture: raw.architecture,
            aliases: raw.aliases,
            nvml_names: raw.nvml_names,
            pci,
            tpp: raw.tpp,
            eccn: raw.eccn,
            basis: raw.basis,
            source: raw.source,
            confirmed: raw.confirmed,
            note: raw.note,
        })
    }
}

/// Case-insensitive, whitespace-collapsed, with an optional leading "NVIDIA ".
fn normalize_name(name: &str) -> String {
    let collapsed = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = collapsed.to_ascii_lowercase();
    lower
        .strip_prefix("nvidia ")
        .map(str::to_owned)
        .unwrap_or(lower)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    format: u32,
    #[serde(default)]
    accelerator: Vec<RawAccelerator>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccelerator {
    id: String,
    vendor: String,
    architecture: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    nvml_names: Vec<String>,
    #[serde(default)]
    pci: Vec<String>,
    tpp: u64,
    eccn: Option<String>,
    basis: Basis,
    source: String,
    confirmed: bool,
    note: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
format = 1

[[accelerator]]
id = "H100-SXM5-80GB"
vendor = "NVIDIA"
architecture = "Hopper"
aliases = ["H100"]
nvml_names = ["NVIDIA H100 80GB HBM3"]
pci = ["10de:2330"]
tpp = 15840
basis = "vendor-export-table"
source = "test"
confirmed = true

[[accelerator]]
id = "H100-PCIE-80GB"
vendor = "NVIDIA"
architecture = "Hopper"
nvml_names = ["NVIDIA H100 PCIe"]
pci = ["10de:2331", "10de:2331:10de:1626"]
tpp = 12224
basis = "vendor-export-table"
source = "test"
confirmed = true
"#;

    #[test]
    fn whole_units_round_down_for_headroom_and_up_for_changes() {
        let catalogue = Catalogue::builtin().unwrap();
        let h100 = catalogue.by_id("H100-SXM5-80GB").unwrap();
        assert_eq!(h100.tpp, 15_840);
        assert_eq!(h100.units_within(15_839), 0);
        assert_eq!(h100.units_within(31_680), 2);
        assert_eq!(h100.units_covering(0), 0);
        assert_eq!(h100.units_covering(1), 1);
        assert_eq!(h100.units_covering(31_680), 2);
        assert_eq!(h100.units_covering(31_681), 3);
    }

    #[test]
    fn builtin_catalogue_is_valid_and_has_the_reference_models() {
        let catalogue = Catalogue::builtin().unwrap();
        for (id, tpp) in [
            ("H100-SXM5-80GB", 15840),
            ("H100-PCIE-80GB", 12224),
            ("A100-SXM4-80GB", 4989),
            ("A100-SXM4-40GB", 3822),
            ("L40S", 5872),
            ("B200", 37248),
            ("GB200", 40200),
            ("GB300", 58484),
            ("MI300X", 20919),
            ("GAUDI3", 29360),
        ] {
            assert_eq!(catalogue.by_id(id).map(|a| a.tpp), Some(tpp), "{id}");
        }
        assert!(catalogue.entries().len() >= 35);
    }

    #[test]
    fn looks_up_pci_first_then_name() {
        let catalogue = Catalogue::from_toml(SMALL).unwrap();
        // NVML packs (device << 16) | vendor.
        let h100 = PciId::from_nvml(0x2330_10de, 0x16c1_10de);
        let found = catalogue.identify(Some(h100), "something else").unwrap();
        assert_eq!(found.accelerator.id, "H100-SXM5-80GB");
        assert_eq!(found.matched_by, MatchedBy::Pci);

        let with_subsystem = PciId::from_nvml(0x2331_10de, 0x1626_10de);
        let found = catalogue.identify(Some(with_subsystem), "").unwrap();
        assert_eq!(found.matched_by, MatchedBy::PciSubsystem);

        let by_name = catalogue.identify(
            Some(PciId::from_nvml(0xffff_10de, 0)),
            "  nvidia h100  PCIe",
        );
        assert_eq!(by_name.unwrap().matched_by, MatchedBy::Name);
        assert_eq!(
            catalogue
                .identify(None, "H100 80GB HBM3")
                .unwrap()
                .accelerator
                .tpp,
            15840
        );
        assert!(
            catalogue.identify(None, "NVIDIA H100").is_none(),
            "no substring matches"
        );
    }

    #[test]
    fn ids_and_aliases_are_case_insensitive() {
        let catalogue = Catalogue::from_toml(SMALL).unwrap();
        assert_eq!(catalogue.by_id("h100").unwrap().id, "H100-SXM5-80GB");
        assert_eq!(catalogue.by_id("h100-pcie-80gb").unwrap().tpp, 12224);
        assert!(catalogue.by_id("H200").is_none());
        assert_eq!(catalogue.suggestions("h100pcie"), vec!["H100-PCIE-80GB"]);
    }

    #[test]
    fn reports_every_bad_entry_with_its_key() {
        let text = SMALL
            .replace("tpp = 12224", "tpp = 0")
            .replace("\"10de:2331\", ", "\"10de:2330\", \"zz:1\", ")
            .replace(
                "nvml_names = [\"NVIDIA H100 PCIe\"]",
                "nvml_names = [\"H100 80GB HBM3\"]",
            )
            .replace(
                "aliases = [\"H100\"]",
                "aliases = [\"H100\", \"h100-sxm5-80gb\"]",
            );
        let Err(CatalogueError::Invalid(errors)) = Catalogue::from_toml(&text) else {
            panic!("expected validation errors");
        };
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "accelerator[0].aliases[1]",
                "accelerator[1].nvml_names[0]",
                "accelerator[1].pci[0]",
                "accelerator[1].pci[1]",
                "accelerator[1].tpp",
            ]
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_parse_errors() {
        let text = SMALL.replace(
            "confirmed = true\n\n[[accelerator]]",
            "confirmd = true\n\n[[accelerator]]",
        );
        let error = Catalogue::from_toml(&text).unwrap_err().to_string();
        assert!(error.contains("confirmd"), "{error}");
        assert!(Catalogue::from_toml("format = 1\naccelerator = 3").is_err());
    }

    #[test]
    fn digest_is_of_the_exact_bytes() {
        let a = Catalogue::from_toml(SMALL).unwrap();
        let b = Catalogue::from_toml(&format!("{SMALL}\n# comment")).unwrap();
        assert_eq!(a.digest(), Digest::of(SMALL.as_bytes()));
        assert_ne!(a.digest(), b.digest());
    }
}
