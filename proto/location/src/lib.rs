//! Where a host can be, from physics (docs/location.md).
//!
//! A landmark at known coordinates measured the fastest round trip `r` to an agent's key. No
//! signal travels faster than light, and delay can be added on a path but never removed, so
//! whoever answered with that key was within `r / 2 × v` of the landmark for any speed `v` at
//! least the signal's real one. Each measurement is a disk; the host lies in their
//! intersection, the *region*. [`locate`] is the one verdict every path uses (collector, audit,
//! report, offline verifier): the host's declared site must lie in every disk, and the host is
//! *location-verified* when the whole region lies within its site's country.
//!
//! Invariant: pure (no I/O, no clock, no crypto); the signatures of the measurements it is
//! given were checked before (`proto_seal::open_measurement`).

pub mod geometry;
pub mod landmarks;
pub mod probe;
mod verdict;

pub use geometry::{Disk, Region, distance_km, radius_km};
pub use landmarks::{Landmark, LandmarkError, Landmarks};
pub use verdict::{Declared, Location, LocationRule, Verdict, locate};

/// Light in vacuum, km per ms: nothing carries a signal faster, so radii at this speed are
/// sound whatever the path. The default.
pub const LIGHT_KM_PER_MS: f64 = 299.792_458;

/// Light in optical fibre (refractive index about 1.47), km per ms: tighter radii, sound only
/// where every path is fibre or slower (no microwave or free-space links).
pub const FIBRE_KM_PER_MS: f64 = 204.0;
