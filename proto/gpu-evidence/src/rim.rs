//! Reference integrity manifests (RIMs): NVIDIA's SWID tags listing, per driver version and per
//! VBIOS version, the measurement values a GPU running them must report.
//!
//! A RIM's `Meta` element names the chip (`product="GH100"`) and the version
//! (`colloquialVersion="550.144.03"` for a driver, `"96.00.5E.00.01"` for a VBIOS). Each
//! `Resource type="Measurement"` has a 0-based `index` (report block `index + 1`), `active`
//! (`True` when the value is to be compared), `alternatives` and one attribute `…:Hash<n>`
//! (hex SHA-384) per alternative. The report's block must equal one of the alternatives of
//! every active measurement; the driver's and the VBIOS's RIMs must not both claim an index.
//! As NVIDIA's verifiers do, block 36 is not compared when the report says the NVDEC0 video
//! decoder is disabled ([`NVDEC0_BLOCK`]).
//!
//! **RIM signatures are not checked.** A RIM is signed with XMLDSig under NVIDIA's RIM root;
//! checking it needs exclusive XML canonicalisation, which this crate does not implement (nor,
//! therefore, the validity of the RIM signing certificates: NVIDIA's expired RIMs load). So a
//! `RimSet` must come from a source the operator trusts (files NVIDIA published, fetched over
//! TLS and reviewed); the verifier compares measurements against it and nothing more.
//!
//! This module reads only what it needs of the XML (element names, attributes, comments); it is
//! no general XML parser. It is bounded ([`MAX_RIM_BYTES`], [`MAX_RIM_MEASUREMENTS`]) and never
//! panics.

use crate::spdm::{self, Measurement};

/// The largest RIM accepted (NVIDIA's are about 21 KiB).
pub const MAX_RIM_BYTES: usize = 256 * 1024;
/// The most measurements a RIM may list.
pub const MAX_RIM_MEASUREMENTS: usize = 256;
/// The most alternatives one measurement may list.
pub const MAX_ALTERNATIVES: usize = 16;

/// What a RIM covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RimKind {
    /// The GPU driver (version like `550.144.03`).
    Driver,
    /// The VBIOS (version like `96.00.5E.00.01`).
    Vbios,
}

/// One active measurement of a RIM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RimMeasurement {
    /// The report's block index (the RIM's index plus one).
    pub block_index: u8,
    /// The accepted values.
    pub alternatives: Vec<Vec<u8>>,
}

/// One parsed RIM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rim {
    /// Where it came from (the caller's name, e.g. the file name).
    pub name: String,
    /// Driver or VBIOS.
    pub kind: RimKind,
    /// The chip, e.g. `GH100`.
    pub product: String,
    /// The driver or VBIOS version.
    pub version: String,
    /// The active measurements.
    pub measurements: Vec<RimMeasurement>,
}

/// A RIM that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("RIM {name}: {problem}")]
pub struct RimError {
    /// The RIM's name as given.
    pub name: String,
    /// What is wrong.
    pub problem: String,
}

/// RIMs by chip, kind and version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RimSet {
    rims: Vec<Rim>,
}

impl RimSet {
    /// An empty set.
    pub fn new() -> RimSet {
        RimSet::default()
    }

    /// Parses each `(name, bytes)` (e.g. a directory's files, read by the caller) into a set.
    /// Two RIMs for the same chip, kind and version are an error.
    pub fn from_files<N: AsRef<str>, B: AsRef<[u8]>>(
        files: impl IntoIterator<Item = (N, B)>,
    ) -> Result<RimSet, RimError> {
        let mut set = RimSet::new();
        for (name, bytes) in files {
            set.add(name.as_ref(), bytes.as_ref())?;
        }
        Ok(set)
    }

    /// Parses one RIM and adds it.
    pub fn add(&mut self, name: &str, xml: &[u8]) -> Result<(), RimError> {
        let rim = parse_rim(name, xml)?;
        if let Some(existing) = self.find(rim.kind, &rim.product, &rim.version) {
            return Err(RimError {
                name: name.to_owned(),
                problem: format!(
                    "{} {:?} {} is already given by {}",
                    rim.product, rim.kind, rim.version, existing.name
                ),
            });
        }
        self.rims.push(rim);
        Ok(())
    }

    /// The RIMs, in the order added.
    pub fn rims(&self) -> &[Rim] {
        &self.rims
    }

    /// The RIM for `product`, `kind` and `version` (versions compared without regard to case).
    pub fn find(&self, kind: RimKind, product: &str, version: &str) -> Option<&Rim> {
        self.rims.iter().find(|rim| {
            rim.kind == kind && rim.product == product && rim.version.eq_ignore_ascii_case(version)
        })
    }
}

/// The comparison of a report's measurements with its RIMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Comparison {
    /// Every active measurement of the RIMs found matched; names of the RIMs found.
    Matched {
        driver: Option<String>,
        vbios: Option<String>,
    },
    /// A measurement differs.
    Mismatch(String),
}

/// The report block NVIDIA's verifiers leave uncompared when the report says the NVDEC0 video
/// decoder is disabled (RIM index 35; nvtrust `verifier.py`, `is_msr_35_valid`).
pub const NVDEC0_BLOCK: u8 = 36;

/// Whether the report says NVDEC0 is disabled (opaque type 11 holding 0x55; 0xAA is enabled).
pub(crate) fn nvdec0_disabled(report: &spdm::Report<'_>) -> bool {
    report.opaque_field(spdm::OPAQUE_NVDEC0_STATUS) == Some(&[spdm::NVDEC0_DISABLED][..])
}

pub(crate) fn compare(
    set: &RimSet,
    product: &str,
    driver_version: &str,
    vbios_version: &str,
    measurements: &[Measurement],
    nvdec0_disabled: bool,
) -> Comparison {
    let driver = set.find(RimKind::Driver, product, driver_version);
    let vbios = set.find(RimKind::Vbios, product, vbios_version);
    if let (Some(driver), Some(vbios)) = (driver, vbios)
        && let Some(shared) = driver.measurements.iter().find(|ours| {
            vbios
                .measurements
                .iter()
                .any(|theirs| theirs.block_index == ours.block_index)
        })
    {
        return Comparison::Mismatch(format!(
            "RIMs {} and {} both claim measurement block {}",
            driver.name, vbios.name, shared.block_index
        ));
    }
    for rim in driver.into_iter().chain(vbios) {
        for wanted in &rim.measurements {
            if nvdec0_disabled && wanted.block_index == NVDEC0_BLOCK {
                continue;
            }
            let found = measurements
                .iter()
                .find(|measurement| measurement.index == wanted.block_index);
            match found {
                None => {
                    return Comparison::Mismatch(format!(
                        "report has no measurement block {} that RIM {} requires",
                        wanted.block_index, rim.name
                    ));
                }
                Some(found) if !wanted.alternatives.contains(&found.value) => {
                    return Comparison::Mismatch(format!(
                        "measurement block {} is {}, RIM {} accepts {}",
                        wanted.block_index,
                        crate::chain::hex_lower(&found.value),
                        rim.name,
                        wanted
                            .alternatives
                            .iter()
                            .map(|value| crate::chain::hex_lower(value))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Comparison::Matched {
        driver: driver.map(|rim| rim.name.clone()),
        vbios: vbios.map(|rim| rim.name.clone()),
    }
}

/// One element start tag: its local name and attributes (local names, raw values).
struct Tag<'a> {
    local_name: &'a str,
    attributes: Vec<(&'a str, &'a str)>,
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// The start tags of `text`, skipping comments, processing instructions, declarations and end
/// tags. `None` if the markup is malformed where this reader looks.
fn start_tags(text: &str) -> Option<Vec<Tag<'_>>> {
    let mut tags = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = &after[after.find("-->")? + 3..];
            continue;
        }
        if rest.starts_with("<?") || rest.starts_with("<!") || rest.starts_with("</") {
            rest = &rest[rest.find('>')? + 1..];
            continue;
        }
        let end = tag_end(rest)?;
        let body = rest[1..end].trim_end_matches('/');
        rest = &rest[end + 1..];
        let name_end = body
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(body.len());
        let mut attributes = Vec::new();
        let mut attrs = body[name_end..].trim_start();
        while !attrs.is_empty() {
            let equals = attrs.find('=')?;
            let name = attrs[..equals].trim();
            let value_part = attrs[equals + 1..].trim_start();
            let quote = value_part.chars().next()?;
            if quote != '"' && quote != '\'' {
                return None;
            }
            let close = value_part[1..].find(quote)? + 1;
            attributes.push((local(name), &value_part[1..close]));
            attrs = value_part[close + 1..].trim_start();
        }
        tags.push(Tag {
            local_name: local(&body[..name_end]),
            attributes,
        });
    }
    Some(tags)
}

/// The offset of the `>` closing the tag at the start of `text`, outside quoted values.
fn tag_end(text: &str) -> Option<usize> {
    let mut quote = None;
    for (at, c) in text.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(open), _) if c == open => quote = None,
            (None, '>') => return Some(at),
            _ => {}
        }
    }
    None
}

fn parse_rim(name: &str, xml: &[u8]) -> Result<Rim, RimError> {
    let problem = |problem: String| RimError {
        name: name.to_owned(),
        problem,
    };
    if xml.len() > MAX_RIM_BYTES {
        return Err(problem(format!(
            "has {} bytes, at most {MAX_RIM_BYTES} are accepted",
            xml.len()
        )));
    }
    let text =
        std::str::from_utf8(xml).map_err(|error| problem(format!("is not UTF-8: {error}")))?;
    let tags = start_tags(text).ok_or_else(|| problem("is not well-formed XML".to_owned()))?;
    let attribute = |tag: &Tag<'_>, wanted: &str| -> Option<String> {
        tag.attributes
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, value)| (*value).to_owned())
    };
    let meta = tags
        .iter()
        .find(|tag| tag.local_name == "Meta" && attribute(tag, "colloquialVersion").is_some())
        .ok_or_else(|| problem("has no Meta element with colloquialVersion".to_owned()))?;
    let version = attribute(meta, "colloquialVersion").unwrap_or_default();
    let product =
        attribute(meta, "product").ok_or_else(|| problem("Meta has no product".to_owned()))?;
    let kind = if spdm::encode_vbios_version(&version).is_some() {
        RimKind::Vbios
    } else {
        RimKind::Driver
    };
    let mut measurements: Vec<RimMeasurement> = Vec::new();
    let mut listed = 0usize;
    for tag in tags.iter().filter(|tag| {
        tag.local_name == "Resource" && attribute(tag, "type").as_deref() == Some("Measurement")
    }) {
        listed += 1;
        if listed > MAX_RIM_MEASUREMENTS {
            return Err(problem(format!(
                "lists more than {MAX_RIM_MEASUREMENTS} measurements"
            )));
        }
        let index_text = attribute(tag, "index").unwrap_or_default();
        let block_index = index_text
            .parse::<u8>()
            .ok()
            .and_then(|index| index.checked_add(1))
            .ok_or_else(|| {
                problem(format!(
                    "measurement index \"{index_text}\" is not 0 to 254"
                ))
            })?;
        match attribute(tag, "active").as_deref() {
            Some("True" | "true") => {}
            Some("False" | "false") => continue,
            other => {
                return Err(problem(format!(
                    "measurement {index_text} has active={other:?}, expected True or False"
                )));
            }
        }
        let count_text = attribute(tag, "alternatives").unwrap_or_default();
        let count = count_text
            .parse::<usize>()
            .ok()
            .filter(|count| (1..=MAX_ALTERNATIVES).contains(count))
            .ok_or_else(|| {
                problem(format!(
                    "measurement {index_text} has alternatives=\"{count_text}\", expected 1 to {MAX_ALTERNATIVES}"
                ))
            })?;
        let mut alternatives = Vec::with_capacity(count);
        for alternative in 0..count {
            let hash_name = format!("Hash{alternative}");
            let hex = attribute(tag, &hash_name)
                .ok_or_else(|| problem(format!("measurement {index_text} has no {hash_name}")))?;
            alternatives.push(unhex(&hex).ok_or_else(|| {
                problem(format!("measurement {index_text} {hash_name} is not hex"))
            })?);
        }
        if measurements
            .iter()
            .any(|measurement| measurement.block_index == block_index)
        {
            return Err(problem(format!(
                "measurement index {index_text} appears twice"
            )));
        }
        measurements.push(RimMeasurement {
            block_index,
            alternatives,
        });
    }
    if measurements.is_empty() {
        return Err(problem("has no active measurement".to_owned()));
    }
    Ok(Rim {
        name: name.to_owned(),
        kind,
        product,
        version,
        measurements,
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.is_empty() {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_36_is_compared_unless_nvdec0_is_disabled() {
        let xml = format!(
            "<SoftwareIdentity><Meta colloquialVersion=\"590.12\" product=\"GH100\"/>\
             <Resource type=\"Measurement\" index=\"35\" active=\"True\" alternatives=\"1\" \
             ns2:Hash0=\"{}\"/></SoftwareIdentity>",
            "11".repeat(48)
        );
        let set = RimSet::from_files([("driver", xml.as_bytes())]).expect("parses");
        let measurements = [Measurement {
            index: NVDEC0_BLOCK,
            value_type: 1,
            value: vec![0x22; 48],
        }];
        let matched = Comparison::Matched {
            driver: Some("driver".to_owned()),
            vbios: None,
        };
        assert_eq!(
            compare(&set, "GH100", "590.12", "x", &measurements, true),
            matched
        );
        assert!(matches!(
            compare(&set, "GH100", "590.12", "x", &measurements, false),
            Comparison::Mismatch(_)
        ));
    }
}
