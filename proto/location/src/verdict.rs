//! The location verdict: one function, every path.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use country_boundaries::{BOUNDARIES_ODBL_360X180, BoundingBox, CountryBoundaries};
use proto_accounting::CountryCode;
use proto_evidence::{Coordinates, KeyId, Measurement};

use crate::geometry::{Disk, Region, radius_km};

/// What the host's books say of its place: its site's country, and the site's coordinates
/// when the registry gives them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Declared {
    /// Where its compute counts.
    pub country: CountryCode,
    /// The site's surveyed point, if known.
    pub site: Option<Coordinates>,
}

/// The policy's terms for turning round trips into disks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocationRule {
    /// Assumed signal speed, km/ms. Sound only if no path is faster; the default is light
    /// in vacuum ([`crate::LIGHT_KM_PER_MS`]).
    pub speed_km_per_ms: f64,
    /// A measurement counts this long after the landmark took it, ms.
    pub max_age_ms: i64,
}

impl Default for LocationRule {
    fn default() -> Self {
        Self {
            speed_km_per_ms: crate::LIGHT_KM_PER_MS,
            max_age_ms: 24 * 3_600_000,
        }
    }
}

impl From<&proto_accounting::LocationTerms> for LocationRule {
    fn from(terms: &proto_accounting::LocationTerms) -> Self {
        Self {
            speed_km_per_ms: terms.speed_m_per_ms as f64 / 1000.0,
            max_age_ms: terms.max_age_ms,
        }
    }
}

/// A host's location, as the measurements show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// No current measurement of the host's key.
    Unmeasured,
    /// Measured, consistent with the declared place, but the region reaches beyond the
    /// site's country (landmarks too far or too few).
    Unverified,
    /// The whole region lies within the site's country.
    Verified,
    /// The measurements contradict the declared place: a disk leaves the site out, the
    /// region misses the site's country, or the disks share no point at all.
    Inconsistent,
}

impl Verdict {
    /// The word in JSON, metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unmeasured => "unmeasured",
            Self::Unverified => "unverified",
            Self::Verified => "verified",
            Self::Inconsistent => "inconsistent",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict and what it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// The verdict.
    pub verdict: Verdict,
    /// One disk per landmark (its newest current measurement), by landmark id.
    pub disks: Vec<Disk>,
    /// Landmarks whose disk leaves the declared site out.
    pub excluding_site: Vec<String>,
    /// Pairs of landmarks whose disks share no point.
    pub disjoint: Vec<(String, String)>,
    /// A box holding the region (`None` when unmeasured).
    pub region: Option<Region>,
    /// Countries the region lies wholly within (at the boundary raster's 1° cells).
    pub within: Vec<CountryCode>,
    /// Countries the region may touch (every country in a cell the box touches); left empty
    /// for a region wider than [`MAX_TOUCHING_CELLS`] raster cells (`wide`).
    pub touching: Vec<CountryCode>,
    /// The region spans more than [`MAX_TOUCHING_CELLS`] cells: far landmarks, which cannot
    /// verify a host, and whose countries are not listed (it would cost a millisecond a host).
    pub wide: bool,
}

/// The most 1° raster cells a region may span for the countries it may touch to be listed
/// (and so for an inconsistency to be found from them): 20° × 20°, about 2,200 km across.
pub const MAX_TOUCHING_CELLS: f64 = 400.0;

impl Location {
    /// What the verdict rests on, in words: for an inconsistent host, what contradicts its
    /// declared place.
    pub fn explain(&self) -> String {
        let mut parts = Vec::new();
        if !self.excluding_site.is_empty() {
            parts.push(format!(
                "the declared site lies outside the disk of {}",
                self.excluding_site.join(", ")
            ));
        }
        for (a, b) in &self.disjoint {
            parts.push(format!("the disks of {a} and {b} share no point"));
        }
        if parts.is_empty() {
            let touching: Vec<&str> = self.touching.iter().map(|c| c.as_str()).collect();
            parts.push(match self.verdict {
                Verdict::Unmeasured => "no current measurement".to_owned(),
                Verdict::Verified => format!(
                    "the region lies within {}",
                    self.within
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Verdict::Unverified | Verdict::Inconsistent if self.wide => format!(
                    "the region spans more than {MAX_TOUCHING_CELLS} one-degree cells: the landmarks are too far"
                ),
                Verdict::Unverified | Verdict::Inconsistent => {
                    format!("the region may touch {}", touching.join(", "))
                }
            });
        }
        parts.join("; ")
    }
}

/// Where `declared`'s host, holding `key`, can be at `now_ms` by `measurements` (already
/// signature-checked; any host or key mixed in is ignored here): the newest measurement of
/// `key` from each landmark taken within `rule.max_age_ms` before `now_ms` makes a disk.
pub fn locate(
    declared: &Declared,
    key: &KeyId,
    measurements: &[Measurement],
    now_ms: i64,
    rule: &LocationRule,
) -> Location {
    let oldest = now_ms.saturating_sub(rule.max_age_ms);
    let mut newest: BTreeMap<&str, &Measurement> = BTreeMap::new();
    for m in measurements {
        if m.agent_key_id() != *key || m.measured_at_ms < oldest || m.measured_at_ms > now_ms {
            continue;
        }
        let slot = newest.entry(m.landmark.as_str()).or_insert(m);
        if m.measured_at_ms > slot.measured_at_ms {
            *slot = m;
        }
    }
    let disks: Vec<Disk> = newest
        .values()
        .map(|m| Disk {
            landmark: m.landmark.clone(),
            centre: m.at,
            radius_km: radius_km(m.min_rtt_us, rule.speed_km_per_ms),
            rtt_us: m.min_rtt_us,
            measured_at_ms: m.measured_at_ms,
        })
        .collect();
    let mut location = Location {
        verdict: Verdict::Unmeasured,
        excluding_site: Vec::new(),
        disjoint: Vec::new(),
        region: Region::around(&disks),
        within: Vec::new(),
        touching: Vec::new(),
        wide: false,
        disks,
    };
    let Some(region) = location.region else {
        return location;
    };
    if let Some(site) = declared.site {
        location.excluding_site = location
            .disks
            .iter()
            .filter(|d| !d.holds(site))
            .map(|d| d.landmark.clone())
            .collect();
    }
    for (i, a) in location.disks.iter().enumerate() {
        for b in &location.disks[i + 1..] {
            if !a.meets(b) {
                location
                    .disjoint
                    .push((a.landmark.clone(), b.landmark.clone()));
            }
        }
    }
    (location.within, location.touching, location.wide) = countries(&region);
    location.verdict = if !location.excluding_site.is_empty()
        || !location.disjoint.is_empty()
        || (!location.wide && !location.touching.contains(&declared.country))
    {
        Verdict::Inconsistent
    } else if location.within.contains(&declared.country) {
        Verdict::Verified
    } else {
        Verdict::Unverified
    };
    location
}

/// Countries (ISO 3166-1 alpha-2; subdivisions left out) wholly containing the box, and
/// those that may touch it, at the raster's cells: "within" is never claimed for a cell a
/// border crosses, and "touching" lists every country of every cell touched, unless the box
/// is wider than [`MAX_TOUCHING_CELLS`] (then `true` comes third and "touching" is empty).
fn countries(region: &Region) -> (Vec<CountryCode>, Vec<CountryCode>, bool) {
    let lon_width = if region.west <= region.east {
        region.east - region.west
    } else {
        360.0 - (region.west - region.east)
    };
    let cells = (region.north.ceil() - region.south.floor()).max(1.0) * (lon_width.ceil() + 1.0);
    let wide = cells > MAX_TOUCHING_CELLS;
    // The raster reads 180° as −180°: a box of every longitude must end just short of it.
    let east = if region.east >= 180.0 {
        179.999_999
    } else {
        region.east
    };
    let Ok(bounds) = BoundingBox::new(region.south, region.west, region.north, east) else {
        return (Vec::new(), Vec::new(), wide);
    };
    let codes = |ids: std::collections::HashSet<&str>| {
        let mut codes: Vec<CountryCode> = ids
            .into_iter()
            .filter(|id| id.len() == 2)
            .filter_map(|id| CountryCode::parse(id).ok())
            .collect();
        codes.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        codes
    };
    let Some(map) = boundaries() else {
        return (Vec::new(), Vec::new(), wide);
    };
    if wide {
        // No country holds 400 cells' worth of box bar the largest few, and listing what it
        // touches costs too much to do per host: only "within" is asked.
        return (codes(map.containing_ids(bounds)), Vec::new(), true);
    }
    (
        codes(map.containing_ids(bounds)),
        codes(map.intersecting_ids(bounds)),
        false,
    )
}

/// The compiled-in boundaries (OpenStreetMap contributors, ODbL), read once. Were they
/// unreadable, no region would lie within or touch any country: nothing verified, never a
/// wrong verification (a test reads them).
fn boundaries() -> Option<&'static CountryBoundaries> {
    static MAP: OnceLock<Option<CountryBoundaries>> = OnceLock::new();
    MAP.get_or_init(|| CountryBoundaries::from_reader(BOUNDARIES_ODBL_360X180).ok())
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRANKFURT: (f64, f64) = (50.1109, 8.6821);
    const SINGAPORE: (f64, f64) = (1.3521, 103.8198);
    const JOHOR: (f64, f64) = (1.4927, 103.7414);
    const ASHBURN: (f64, f64) = (39.0438, -77.4874);
    /// Kassel: its 1° raster cell and those around it lie wholly in Germany.
    const KASSEL: (f64, f64) = (51.3127, 9.4797);

    fn at((lat, lon): (f64, f64)) -> Coordinates {
        Coordinates::from_degrees(lat, lon).unwrap()
    }

    fn measurement(landmark: &str, at_: (f64, f64), rtt_us: u64, when: i64) -> Measurement {
        Measurement {
            landmark: landmark.into(),
            at: at(at_),
            host: "h".into(),
            agent_key: [1; 32],
            min_rtt_us: rtt_us,
            rounds: 5,
            measured_at_ms: when,
            nonce: [0; 32],
            answer: [0; 64],
        }
    }

    fn key() -> KeyId {
        KeyId::of_public_key(&[1; 32])
    }

    fn declared(country: &str, site: (f64, f64)) -> Declared {
        Declared {
            country: CountryCode::parse(country).unwrap(),
            site: Some(at(site)),
        }
    }

    /// Round trip of a signal over `km` of fibre and back, µs.
    fn fibre_rtt_us(km: f64) -> u64 {
        (2.0 * km / 200.0 * 1000.0) as u64
    }

    #[test]
    fn the_compiled_in_boundaries_are_readable() {
        assert!(boundaries().is_some());
    }

    #[test]
    fn a_host_near_its_landmark_is_verified() {
        let now = 1_000_000;
        let m = [measurement("kas", KASSEL, 300, now - 10)];
        let l = locate(
            &declared("DE", KASSEL),
            &key(),
            &m,
            now,
            &LocationRule::default(),
        );
        assert_eq!(l.verdict, Verdict::Verified, "{l:?}");
        assert_eq!(l.within, vec![CountryCode::parse("DE").unwrap()]);
        // Frankfurt lies 12 km from a raster line with France in the cell beyond it: the
        // same round trip there is consistent, but not verified at the raster's resolution.
        let m = [measurement("fra", FRANKFURT, 300, now - 10)];
        let l = locate(
            &declared("DE", FRANKFURT),
            &key(),
            &m,
            now,
            &LocationRule::default(),
        );
        assert_eq!(l.verdict, Verdict::Unverified, "{l:?}");
    }

    #[test]
    fn a_host_in_johor_claiming_frankfurt_is_inconsistent() {
        let now = 1_000_000;
        let far = fibre_rtt_us(crate::distance_km(at(JOHOR), at(FRANKFURT)));
        let m = [
            measurement("fra", FRANKFURT, far, now - 10),
            measurement("sin", SINGAPORE, fibre_rtt_us(25.0), now - 10),
        ];
        let l = locate(
            &declared("DE", FRANKFURT),
            &key(),
            &m,
            now,
            &LocationRule::default(),
        );
        assert_eq!(l.verdict, Verdict::Inconsistent);
        assert_eq!(l.excluding_site, vec!["sin".to_owned()]);
        assert!(!l.touching.contains(&CountryCode::parse("DE").unwrap()));
    }

    #[test]
    fn distant_landmarks_leave_a_host_unverified_never_verified() {
        let now = 1_000_000;
        let site = FRANKFURT;
        let m = [
            measurement(
                "sin",
                SINGAPORE,
                fibre_rtt_us(crate::distance_km(at(SINGAPORE), at(site)) + 500.0),
                now,
            ),
            measurement(
                "iad",
                ASHBURN,
                fibre_rtt_us(crate::distance_km(at(ASHBURN), at(site)) + 500.0),
                now,
            ),
        ];
        let l = locate(
            &declared("DE", site),
            &key(),
            &m,
            now,
            &LocationRule::default(),
        );
        assert_eq!(
            l.verdict,
            Verdict::Unverified,
            "{:?} {:?} {:?} {:?}",
            l.excluding_site,
            l.disjoint,
            l.region,
            l.touching.len()
        );
    }

    #[test]
    fn stale_foreign_and_older_measurements_do_not_count() {
        let now = 100_000_000;
        let rule = LocationRule::default();
        let stale = measurement("fra", FRANKFURT, 300, now - rule.max_age_ms - 1);
        let mut other_key = measurement("fra", FRANKFURT, 300, now);
        other_key.agent_key = [2; 32];
        let d = declared("DE", FRANKFURT);
        assert_eq!(
            locate(&d, &key(), &[stale, other_key], now, &rule).verdict,
            Verdict::Unmeasured
        );
        // The newest of a landmark's measurements is the one that counts.
        let old_far = measurement("sin", SINGAPORE, 300, now - 1000);
        let new_near = measurement("sin", SINGAPORE, 200_000, now - 10);
        let l = locate(&d, &key(), &[old_far, new_near], now, &rule);
        assert_eq!(l.disks.len(), 1);
        assert_eq!(l.disks[0].rtt_us, 200_000);
        assert_eq!(l.verdict, Verdict::Unverified);
    }

    #[test]
    fn disks_that_share_no_point_are_inconsistent_without_site_coordinates() {
        let now = 1_000_000;
        let m = [
            measurement("fra", FRANKFURT, 300, now),
            measurement("sin", SINGAPORE, 300, now),
        ];
        let d = Declared {
            country: CountryCode::parse("DE").unwrap(),
            site: None,
        };
        let l = locate(&d, &key(), &m, now, &LocationRule::default());
        assert_eq!(l.verdict, Verdict::Inconsistent);
        assert_eq!(l.disjoint, vec![("fra".to_owned(), "sin".to_owned())]);
    }

    #[test]
    fn a_tighter_speed_shrinks_the_region() {
        let now = 1_000_000;
        // 4 ms from Frankfurt: 600 km at light speed reaches France, 408 km in fibre does not
        // leave Germany's 1° cells around Frankfurt either way — but the radius shrinks.
        let m = [measurement("fra", FRANKFURT, 4_000, now)];
        let d = declared("DE", FRANKFURT);
        let light = locate(&d, &key(), &m, now, &LocationRule::default());
        let fibre = locate(
            &d,
            &key(),
            &m,
            now,
            &LocationRule {
                speed_km_per_ms: crate::FIBRE_KM_PER_MS,
                ..LocationRule::default()
            },
        );
        assert!(fibre.disks[0].radius_km < light.disks[0].radius_km);
        assert!(light.touching.len() >= fibre.touching.len());
    }
}
