//! Disks on the sphere and the bounding box of their intersection.

use proto_evidence::Coordinates;

/// Mean Earth radius (IUGG), km.
pub const EARTH_RADIUS_KM: f64 = 6_371.008_8;

/// Great-circle distance on the mean sphere differs from the ellipsoid's geodesic by under
/// 0.56 %; every radius grows by this fraction so a disk never leaves out a point it holds.
pub const SPHERE_MARGIN: f64 = 0.006;

/// Great-circle distance, km (haversine on the mean sphere).
pub fn distance_km(a: Coordinates, b: Coordinates) -> f64 {
    let (lat1, lat2) = (a.latitude().to_radians(), b.latitude().to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.longitude() - a.longitude()).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// The radius a round trip of `rtt_us` allows at `speed_km_per_ms`: half the round trip at
/// that speed, plus [`SPHERE_MARGIN`].
pub fn radius_km(rtt_us: u64, speed_km_per_ms: f64) -> f64 {
    rtt_us as f64 / 1000.0 / 2.0 * speed_km_per_ms * (1.0 + SPHERE_MARGIN)
}

/// Where one landmark's measurement puts the host: within `radius_km` of `centre`.
#[derive(Debug, Clone, PartialEq)]
pub struct Disk {
    /// The landmark.
    pub landmark: String,
    /// Its coordinates.
    pub centre: Coordinates,
    /// The radius, km.
    pub radius_km: f64,
    /// The round trip it comes from, µs.
    pub rtt_us: u64,
    /// When the landmark measured, ms since the Unix epoch.
    pub measured_at_ms: i64,
}

impl Disk {
    /// Whether `point` lies in the disk.
    pub fn holds(&self, point: Coordinates) -> bool {
        distance_km(self.centre, point) <= self.radius_km
    }

    /// Whether two disks share a point (exact on the sphere).
    pub fn meets(&self, other: &Disk) -> bool {
        distance_km(self.centre, other.centre) <= self.radius_km + other.radius_km
    }

    /// The disk's bounding box in degrees.
    pub fn bounds(&self) -> Region {
        let d = self.radius_km / EARTH_RADIUS_KM;
        let lat = self.centre.latitude().to_radians();
        let lon = self.centre.longitude();
        if d >= std::f64::consts::PI {
            return Region::WORLD;
        }
        let (south, north) = (lat - d, lat + d);
        let half = std::f64::consts::FRAC_PI_2;
        if north >= half || south <= -half {
            // The disk holds a pole: every longitude.
            return Region {
                south: south.max(-half).to_degrees(),
                north: north.min(half).to_degrees(),
                west: -180.0,
                east: 180.0,
            };
        }
        let dlon = (d.sin() / lat.cos()).min(1.0).asin().to_degrees();
        Region {
            south: south.to_degrees(),
            north: north.to_degrees(),
            west: wrap(lon - dlon),
            east: wrap(lon + dlon),
        }
    }
}

/// A latitude–longitude box, degrees. `west > east` means it crosses the antimeridian;
/// `west = -180, east = 180` is every longitude.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    /// Southern edge.
    pub south: f64,
    /// Northern edge.
    pub north: f64,
    /// Western edge.
    pub west: f64,
    /// Eastern edge.
    pub east: f64,
}

impl Region {
    /// The whole globe.
    pub const WORLD: Region = Region {
        south: -90.0,
        north: 90.0,
        west: -180.0,
        east: 180.0,
    };

    /// Longitude width, degrees.
    fn width(&self) -> f64 {
        if self.west <= self.east {
            self.east - self.west
        } else {
            360.0 - (self.west - self.east)
        }
    }

    fn wraps(&self) -> bool {
        self.west > self.east
    }

    /// A box holding the intersection of the disks (`None` for no disk). Latitudes intersect
    /// exactly; longitudes too when no box crosses the antimeridian, otherwise the narrowest
    /// box's longitudes are kept (a larger box, never a smaller one).
    pub fn around(disks: &[Disk]) -> Option<Region> {
        let boxes: Vec<Region> = disks.iter().map(Disk::bounds).collect();
        let first = *boxes.first()?;
        let south = boxes.iter().map(|b| b.south).fold(first.south, f64::max);
        let north = boxes.iter().map(|b| b.north).fold(first.north, f64::min);
        let narrowest = boxes
            .iter()
            .copied()
            .min_by(|a, b| a.width().total_cmp(&b.width()))
            .unwrap_or(first);
        let (mut west, mut east) = (narrowest.west, narrowest.east);
        if boxes.iter().all(|b| !b.wraps()) {
            west = boxes.iter().map(|b| b.west).fold(first.west, f64::max);
            east = boxes.iter().map(|b| b.east).fold(first.east, f64::min);
        }
        // The disks all meet pairwise before this is asked (the verdict checks), but their
        // boxes may still not overlap in a degenerate case: keep a box, never an empty one.
        if south > north || west > east && boxes.iter().all(|b| !b.wraps()) {
            return Some(narrowest);
        }
        Some(Region {
            south,
            north,
            west,
            east,
        })
    }
}

/// Longitude into −180..180.
fn wrap(lon: f64) -> f64 {
    if lon > 180.0 {
        lon - 360.0
    } else if lon < -180.0 {
        lon + 360.0
    } else {
        lon
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64) -> Coordinates {
        Coordinates::from_degrees(lat, lon).unwrap()
    }

    fn disk(lat: f64, lon: f64, radius_km: f64) -> Disk {
        Disk {
            landmark: "l".into(),
            centre: at(lat, lon),
            radius_km,
            rtt_us: 0,
            measured_at_ms: 0,
        }
    }

    #[test]
    fn distances_match_known_great_circles() {
        // Frankfurt–Singapore is about 10,260 km; London–Paris about 344 km.
        let fra_sin = distance_km(at(50.1109, 8.6821), at(1.3521, 103.8198));
        assert!((fra_sin - 10_260.0).abs() < 60.0, "{fra_sin}");
        let lon_par = distance_km(at(51.5074, -0.1278), at(48.8566, 2.3522));
        assert!((lon_par - 344.0).abs() < 3.0, "{lon_par}");
        assert_eq!(distance_km(at(10.0, 10.0), at(10.0, 10.0)), 0.0);
    }

    #[test]
    fn radius_is_half_the_round_trip_at_the_speed() {
        // 10 ms at the speed of light: 1,499 km, plus the sphere margin.
        let r = radius_km(10_000, crate::LIGHT_KM_PER_MS);
        assert!((r - 1_498.96 * 1.006).abs() < 0.1, "{r}");
    }

    #[test]
    fn a_disk_box_holds_the_disk() {
        for (lat, lon, r) in [
            (50.0, 8.0, 300.0),
            (-33.9, 151.2, 2_000.0),
            (65.0, 179.5, 500.0),
            (85.0, 0.0, 1_000.0),
        ] {
            let d = disk(lat, lon, r);
            let b = d.bounds();
            // Points on the circle at many bearings lie inside the box.
            for step in 0..360 {
                let bearing = f64::from(step).to_radians();
                let (la, lo) = destination(lat, lon, r * 0.999, bearing);
                assert!(
                    la >= b.south - 1e-9 && la <= b.north + 1e-9,
                    "{lat},{lon},{r}: {la}"
                );
                let inside = if b.west <= b.east {
                    lo >= b.west - 1e-9 && lo <= b.east + 1e-9
                } else {
                    lo >= b.west - 1e-9 || lo <= b.east + 1e-9
                };
                assert!(inside, "{lat},{lon},{r}: lon {lo} not in {b:?}");
            }
        }
        assert_eq!(disk(0.0, 0.0, 30_000.0).bounds(), Region::WORLD);
    }

    #[test]
    fn intersections_shrink_to_the_common_part() {
        let a = disk(50.0, 8.0, 500.0);
        let b = disk(50.0, 14.0, 500.0);
        assert!(a.meets(&b));
        let region = Region::around(&[a.clone(), b.clone()]).unwrap();
        assert!(region.west > a.bounds().west && region.east < b.bounds().east);
        let far = disk(1.35, 103.8, 100.0);
        assert!(!a.meets(&far));
    }

    /// The point `distance` km from (lat, lon) along `bearing` (radians).
    fn destination(lat: f64, lon: f64, distance: f64, bearing: f64) -> (f64, f64) {
        let d = distance / EARTH_RADIUS_KM;
        let (lat1, lon1) = (lat.to_radians(), lon.to_radians());
        let lat2 = (lat1.sin() * d.cos() + lat1.cos() * d.sin() * bearing.cos()).asin();
        let lon2 =
            lon1 + (bearing.sin() * d.sin() * lat1.cos()).atan2(d.cos() - lat1.sin() * lat2.sin());
        (lat2.to_degrees(), wrap(lon2.to_degrees()))
    }
}
