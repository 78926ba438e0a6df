//! Step charts of a share over the period as inline SVG: dates along the bottom, percentages
//! up the side, the policy's threshold as a dashed line. Spans where the share is undefined
//! (before the first evidence, or with nothing counted) are left blank and shaded, never drawn
//! as 0 %; spans where the chart's rule was broken are marked by a bar along the top, so the
//! chart says what the tables say without relying on colour. Floats here only place pixels.

use std::fmt::Write as _;

use crate::month::{DAY_MS, format_date};
use crate::report::SeriesPoint;

use super::text::escape;

const WIDTH: f64 = 880.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 64.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 34.0;
/// Height of the bar that marks a broken rule, above the plot.
const BAR: f64 = 7.0;
/// Narrowest shaded span that gets a label, in pixels.
const LABEL_MIN_WIDTH: f64 = 70.0;

/// Vertical scales: top value and tick step, in percent.
const SCALES: [(f64, f64); 4] = [(10.0, 2.0), (20.0, 5.0), (50.0, 10.0), (100.0, 25.0)];

/// Why a span is blank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BlankKind {
    /// Before the first evidence: nothing is known.
    NoEvidence,
    /// Evidence, but nothing counted: no share is defined.
    NoCompute,
}

/// A span `[from_ms, to_ms)` drawn blank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Blank {
    pub from_ms: i64,
    pub to_ms: i64,
    pub kind: BlankKind,
}

/// One chart.
#[derive(Debug)]
pub(super) struct StepChart<'a> {
    /// What is drawn, e.g. "Tier-1 share".
    pub title: &'a str,
    /// The series, oldest first.
    pub points: &'a [SeriesPoint],
    /// The threshold, as a percentage in text ("75.000").
    pub threshold: &'a str,
    /// The period's bounds: its start and its as-of instant.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Always scale to 100 % (minimum shares) rather than to the data (maximum shares).
    pub full_scale: bool,
    /// Spans where the share is undefined, oldest first, disjoint.
    pub blanks: &'a [Blank],
    /// Spans where this chart's rule was broken, `[from, to)`.
    pub broken: &'a [(i64, i64)],
}

impl StepChart<'_> {
    /// The chart as an `<svg>` element.
    pub(super) fn to_svg(&self) -> String {
        let threshold = percent(self.threshold);
        let highest = self
            .points
            .iter()
            .map(|p| percent(&p.share))
            .fold(threshold * 1.4, f64::max);
        let (top, step) = if self.full_scale {
            (100.0, 25.0)
        } else {
            SCALES
                .into_iter()
                .find(|(top, _)| *top >= highest)
                .unwrap_or((100.0, 25.0))
        };
        let plot = Plot {
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            top,
        };
        let title = escape(self.title);
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
             aria-label=\"{title}\"><title>{title}</title>"
        );
        self.shade_blanks(&mut svg, &plot);
        // Horizontal grid and percent labels.
        let mut value = 0.0;
        while value <= top + 1e-9 {
            let at = plot.y(value);
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{at:.1}\" y2=\"{at:.1}\"/>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} %</text>",
                LEFT + plot_width(),
                LEFT - 6.0,
                at + 4.0,
                number(value)
            );
            value += step;
        }
        self.day_grid(&mut svg, &plot);
        self.mark_broken(&mut svg, &plot);
        // The threshold.
        let at = plot.y(threshold);
        let _ = write!(
            svg,
            "<line class=\"threshold\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{at:.1}\" y2=\"{at:.1}\"/>\
             <text class=\"limit\" x=\"{:.1}\" y=\"{:.1}\">{} %</text>",
            LEFT + plot_width(),
            LEFT + plot_width() + 6.0,
            at + 4.0,
            number(threshold)
        );
        let path = self.path(&plot);
        if !path.is_empty() {
            let _ = write!(svg, "<path class=\"series\" d=\"{path}\"/>");
        }
        svg.push_str("</svg>");
        svg
    }

    /// Blank spans: shaded, outlined, and named where there is room.
    fn shade_blanks(&self, svg: &mut String, plot: &Plot) {
        for blank in merged(self.blanks, plot) {
            let (x1, x2) = (plot.x(blank.from_ms), plot.x(blank.to_ms));
            let (class, label) = match blank.kind {
                BlankKind::NoEvidence => ("blank-evidence", "no evidence"),
                BlankKind::NoCompute => ("blank-compute", "no compute"),
            };
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"{x1:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\"/>",
                (x2 - x1).max(1.0),
                plot_height()
            );
            if x2 - x1 >= LABEL_MIN_WIDTH {
                let _ = write!(
                    svg,
                    "<text class=\"blank-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
                    (x1 + x2) / 2.0,
                    TOP + plot_height() / 2.0
                );
            }
        }
    }

    /// Day lines, and dates often enough to read without crowding.
    fn day_grid(&self, svg: &mut String, plot: &Plot) {
        let days = (self.end_ms - self.start_ms + DAY_MS - 1) / DAY_MS;
        let every = ((days + 5) / 6).max(1);
        for day in 0..=days {
            let ms = self.start_ms + day * DAY_MS;
            if ms > self.end_ms {
                break;
            }
            let at = plot.x(ms);
            let _ = write!(
                svg,
                "<line class=\"day\" x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"/>",
                TOP + plot_height()
            );
            if day % every == 0 && ms < self.end_ms {
                let _ = write!(
                    svg,
                    "<text class=\"tick\" x=\"{at:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                    TOP + plot_height() + 18.0,
                    format_date(ms)
                );
            }
        }
    }

    /// A bar above the plot wherever the rule was broken.
    fn mark_broken(&self, svg: &mut String, plot: &Plot) {
        for (from, to) in self.broken {
            let (x1, x2) = (plot.x(*from), plot.x(*to));
            let _ = write!(
                svg,
                "<rect class=\"broken\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{BAR}\"/>",
                TOP - BAR - 3.0,
                (x2 - x1).max(1.5)
            );
        }
    }

    /// The series as steps (each value holds until the next point), with no line over a blank
    /// span.
    fn path(&self, plot: &Plot) -> String {
        let mut path = String::new();
        // Where the pen is: the instant and the height it stopped at.
        let mut pen: Option<(i64, f64)> = None;
        for (i, point) in self.points.iter().enumerate() {
            let until = self
                .points
                .get(i + 1)
                .map_or(self.end_ms, |next| next.at_ms)
                .min(self.end_ms);
            let y = plot.y(percent(&point.share));
            for (from, to) in visible(point.at_ms.max(self.start_ms), until, self.blanks) {
                match pen {
                    Some((at, height)) if at == from => {
                        if (height - y).abs() > 1e-9 {
                            let _ = write!(path, "V{y:.1}");
                        }
                    }
                    _ => {
                        let _ = write!(path, "M{:.1},{y:.1}", plot.x(from));
                    }
                }
                let _ = write!(path, "H{:.1}", plot.x(to));
                pen = Some((to, y));
            }
        }
        path
    }
}

/// Pixel placement of one chart.
struct Plot {
    start_ms: i64,
    end_ms: i64,
    top: f64,
}

impl Plot {
    fn x(&self, ms: i64) -> f64 {
        let span = (self.end_ms - self.start_ms).max(1) as f64;
        LEFT + plot_width() * ((ms - self.start_ms) as f64 / span).clamp(0.0, 1.0)
    }

    fn y(&self, value: f64) -> f64 {
        TOP + plot_height() * (1.0 - (value / self.top).clamp(0.0, 1.0))
    }
}

fn plot_width() -> f64 {
    WIDTH - LEFT - RIGHT
}

fn plot_height() -> f64 {
    HEIGHT - TOP - BOTTOM
}

/// The parts of `[from, to)` outside every blank span.
fn visible(from: i64, to: i64, blanks: &[Blank]) -> Vec<(i64, i64)> {
    let mut parts = Vec::new();
    let mut cursor = from;
    for blank in blanks {
        if blank.to_ms <= cursor || blank.from_ms >= to {
            continue;
        }
        if blank.from_ms > cursor {
            parts.push((cursor, blank.from_ms));
        }
        cursor = cursor.max(blank.to_ms);
        if cursor >= to {
            break;
        }
    }
    if cursor < to {
        parts.push((cursor, to));
    }
    parts
}

/// Blank spans of one kind closer than a pixel apart drawn as one, so that thousands of short
/// spans make a bounded picture.
fn merged(blanks: &[Blank], plot: &Plot) -> Vec<Blank> {
    let mut out: Vec<Blank> = Vec::new();
    for blank in blanks {
        match out.last_mut() {
            Some(last)
                if last.kind == blank.kind && plot.x(blank.from_ms) - plot.x(last.to_ms) < 1.0 =>
            {
                last.to_ms = last.to_ms.max(blank.to_ms);
            }
            _ => out.push(*blank),
        }
    }
    out
}

/// A share in text as a number, for drawing only.
fn percent(text: &str) -> f64 {
    text.parse().unwrap_or(0.0)
}

/// `75`, `7.5`: no trailing zeros.
fn number(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(values: &[(i64, &str)]) -> Vec<SeriesPoint> {
        values
            .iter()
            .map(|(at_ms, share)| SeriesPoint {
                at_ms: *at_ms,
                share: (*share).to_owned(),
            })
            .collect()
    }

    #[test]
    fn draws_steps_and_the_threshold() {
        let points = points(&[(0, "5.000"), (15 * DAY_MS, "8.000")]);
        let svg = StepChart {
            title: "MY share",
            points: &points,
            threshold: "7.000",
            start_ms: 0,
            end_ms: 30 * DAY_MS,
            full_scale: false,
            blanks: &[],
            broken: &[(15 * DAY_MS, 30 * DAY_MS)],
        }
        .to_svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(">7 %</text>"), "{svg}");
        assert!(svg.contains(">10 %</text>"), "{svg}");
        assert!(svg.contains(">1970-01-06</text>"), "{svg}");
        // Halfway along the plot, the step up from 5 % to 8 % on a 0–10 % scale.
        assert!(svg.contains("d=\"M56.0,114.0H436.0V58.8H816.0\""), "{svg}");
        // The breach from halfway on, as a bar above the plot.
        assert!(
            svg.contains("<rect class=\"broken\" x=\"436.0\" y=\"12.0\" width=\"380.0\""),
            "{svg}"
        );
        assert_eq!(number(7.5), "7.5");
        assert_eq!(number(100.0), "100");
    }

    #[test]
    fn spans_without_a_share_are_blank_never_zero() {
        // Evidence from day 5; nothing counted on days 10 to 12 (the series says 0.000 there).
        let points = points(&[
            (5 * DAY_MS, "90.000"),
            (10 * DAY_MS, "0.000"),
            (12 * DAY_MS, "80.000"),
        ]);
        let blanks = [
            Blank {
                from_ms: 0,
                to_ms: 5 * DAY_MS,
                kind: BlankKind::NoEvidence,
            },
            Blank {
                from_ms: 10 * DAY_MS,
                to_ms: 12 * DAY_MS,
                kind: BlankKind::NoCompute,
            },
        ];
        let svg = StepChart {
            title: "Tier-1 share",
            points: &points,
            threshold: "75.000",
            start_ms: 0,
            end_ms: 20 * DAY_MS,
            full_scale: true,
            blanks: &blanks,
            broken: &[],
        }
        .to_svg();
        // Two pieces: days 5–10 at 90 %, days 12–20 at 80 %; nothing at 0 % (y = 206).
        let path = svg.split("d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(path, "M246.0,40.4H436.0M512.0,58.8H816.0");
        assert!(!path.contains("206.0"), "{path}");
        assert!(svg.contains(">no evidence</text>"), "{svg}");
        assert!(svg.contains(">no compute</text>"), "{svg}");
        assert!(svg.contains("class=\"blank-compute\" x=\"436.0\""), "{svg}");
    }

    #[test]
    fn visible_parts_skip_blanks() {
        let blank = |from_ms, to_ms| Blank {
            from_ms,
            to_ms,
            kind: BlankKind::NoCompute,
        };
        assert_eq!(visible(0, 10, &[]), [(0, 10)]);
        assert_eq!(
            visible(0, 10, &[blank(2, 4), blank(6, 20)]),
            [(0, 2), (4, 6)]
        );
        assert_eq!(visible(3, 5, &[blank(0, 10)]), []);
    }
}
