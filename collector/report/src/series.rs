//! Step series for the charts, bounded in size.
//!
//! A series holds one point at its first instant (the month's start, or a Tier-2 country's
//! first instant with a host) and one per instant its three-decimal value changed. While that
//! is at most [`MAX_POINTS`] points, every one is kept. Past that, the month is cut into
//! [`SLICES`] equal slices of time (about 65 minutes in a 30-day month) and each slice keeps at
//! most three of its points, at their own instants and in time order: the one with the lowest
//! value, the one with the highest value (the first of equals, for both) and the last one, so
//! the level carried into the next slice is exact. The first point is always kept, and a point
//! equal to the one kept before it is dropped. Both extremes of every slice survive, so a
//! threshold crossing is never hidden; only the path between extremes inside a slice is lost.
//! At most `1 + 3 × SLICES` = 1,999 points remain.

use crate::report::SeriesPoint;
use crate::share::millipercent_text;

/// Most points a series keeps unmerged.
pub const MAX_POINTS: usize = 2000;

/// Number of equal time slices a long series is merged into.
pub const SLICES: i64 = 666;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    at_ms: i64,
    value: u64,
}

#[derive(Debug, Clone, Copy)]
struct Slice {
    lowest: Point,
    highest: Point,
    last: Point,
}

/// Collects a series point by point, in time order, in bounded memory.
#[derive(Debug, Clone)]
pub(crate) struct SeriesBuilder {
    start_ms: i64,
    end_ms: i64,
    first: Option<Point>,
    latest: Option<u64>,
    /// Every point after the first, until there are too many.
    raw: Vec<Point>,
    /// The merged slices once there were too many, by slice index.
    slices: Option<Vec<Option<Slice>>>,
}

impl SeriesBuilder {
    /// An empty series over the month `[start_ms, end_ms)`.
    pub(crate) fn new(start_ms: i64, end_ms: i64) -> Self {
        Self {
            start_ms,
            end_ms,
            first: None,
            latest: None,
            raw: Vec::new(),
            slices: None,
        }
    }

    /// Records the value (thousandths of a percent) from `at_ms` on; a repeat is ignored.
    pub(crate) fn push(&mut self, at_ms: i64, value: u64) {
        if self.latest == Some(value) {
            return;
        }
        self.latest = Some(value);
        let point = Point { at_ms, value };
        if self.first.is_none() {
            self.first = Some(point);
            return;
        }
        if let Some(slices) = &mut self.slices {
            merge(slices, slice_of(self.start_ms, self.end_ms, at_ms), point);
            return;
        }
        self.raw.push(point);
        if 1 + self.raw.len() > MAX_POINTS {
            let mut slices = vec![None; SLICES as usize];
            for point in self.raw.drain(..) {
                merge(
                    &mut slices,
                    slice_of(self.start_ms, self.end_ms, point.at_ms),
                    point,
                );
            }
            self.slices = Some(slices);
        }
    }

    /// The kept points.
    pub(crate) fn finish(self) -> Vec<SeriesPoint> {
        let mut points: Vec<Point> = self.first.into_iter().collect();
        match self.slices {
            None => points.extend(self.raw),
            Some(slices) => {
                for slice in slices.into_iter().flatten() {
                    let mut kept = [slice.lowest, slice.highest, slice.last];
                    kept.sort_by_key(|point| point.at_ms);
                    for point in kept {
                        if points.last().is_none_or(|last| last.at_ms != point.at_ms) {
                            points.push(point);
                        }
                    }
                }
            }
        }
        points.dedup_by(|later, earlier| later.value == earlier.value);
        points
            .into_iter()
            .map(|point| SeriesPoint {
                at_ms: point.at_ms,
                share: millipercent_text(point.value),
            })
            .collect()
    }
}

fn slice_of(start_ms: i64, end_ms: i64, at_ms: i64) -> usize {
    let span = i128::from(end_ms - start_ms).max(1);
    let index = i128::from(at_ms - start_ms) * i128::from(SLICES) / span;
    usize::try_from(index.clamp(0, i128::from(SLICES) - 1)).unwrap_or(0)
}

fn merge(slices: &mut [Option<Slice>], index: usize, point: Point) {
    let Some(entry) = slices.get_mut(index) else {
        return;
    };
    match entry {
        None => {
            *entry = Some(Slice {
                lowest: point,
                highest: point,
                last: point,
            });
        }
        Some(slice) => {
            if point.value < slice.lowest.value {
                slice.lowest = point;
            }
            if point.value > slice.highest.value {
                slice.highest = point;
            }
            slice.last = point;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(points: &[SeriesPoint]) -> Vec<(i64, &str)> {
        points.iter().map(|p| (p.at_ms, p.share.as_str())).collect()
    }

    #[test]
    fn keeps_every_change_of_a_short_series() {
        let mut series = SeriesBuilder::new(0, 1000);
        series.push(0, 75_000);
        series.push(10, 75_000);
        series.push(20, 74_999);
        series.push(30, 80_000);
        assert_eq!(
            values(&series.finish()),
            [(0, "75.000"), (20, "74.999"), (30, "80.000")]
        );
    }

    #[test]
    fn long_series_keep_extremes_and_the_carried_level() {
        let (start, end) = (0, 30 * 86_400_000);
        let mut series = SeriesBuilder::new(start, end);
        series.push(start, 50_000);
        // 100,000 changes at 25.92 s intervals, oscillating, with one dip and one spike.
        let mut expected_last = 0;
        for i in 1..100_000i64 {
            let at = i * (end / 100_000);
            let value = match i {
                41_234 => 1_000,
                77_777 => 99_000,
                _ => 50_000 + u64::try_from(i % 7).unwrap() * 10,
            };
            series.push(at, value);
            expected_last = value;
        }
        let points = series.finish();
        assert!(points.len() <= MAX_POINTS, "{}", points.len());
        assert!(points.len() > 1000);
        assert_eq!(points[0].at_ms, start);
        assert!(points.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
        assert!(points.windows(2).all(|w| w[0].share != w[1].share));
        let dip = i64::from(41_234) * (end / 100_000);
        let spike = i64::from(77_777) * (end / 100_000);
        assert!(values(&points).contains(&(dip, "1.000")));
        assert!(values(&points).contains(&(spike, "99.000")));
        assert_eq!(
            points.last().unwrap().share,
            millipercent_text(expected_last)
        );
    }

    #[test]
    fn slices_cover_the_month() {
        assert_eq!(slice_of(0, 666, 0), 0);
        assert_eq!(slice_of(0, 666, 665), 665);
        assert_eq!(slice_of(0, 666, 10_000), 665);
        assert_eq!(slice_of(0, 666, -5), 0);
    }
}
