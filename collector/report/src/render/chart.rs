//! Step charts of a share over the month as inline SVG: dates along the bottom, percentages
//! up the side, the policy's threshold as a dashed line. Floats here only place pixels.

use std::fmt::Write as _;

use crate::month::{DAY_MS, format_date};
use crate::report::SeriesPoint;

use super::html::escape;

const WIDTH: f64 = 880.0;
const HEIGHT: f64 = 230.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 64.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 34.0;

/// Vertical scales: top value and tick step, in percent.
const SCALES: [(f64, f64); 4] = [(10.0, 2.0), (20.0, 5.0), (50.0, 10.0), (100.0, 25.0)];

/// One chart.
#[derive(Debug)]
pub(super) struct StepChart<'a> {
    /// What is drawn, e.g. "Tier-1 share".
    pub title: &'a str,
    /// The series, oldest first.
    pub points: &'a [SeriesPoint],
    /// The threshold, as a percentage in text ("75.000").
    pub threshold: &'a str,
    /// The month's bounds.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Always scale to 100 % (minimum shares) rather than to the data (maximum shares).
    pub full_scale: bool,
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
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let span = (self.end_ms - self.start_ms).max(1) as f64;
        let x = |ms: i64| LEFT + plot_w * ((ms - self.start_ms) as f64 / span).clamp(0.0, 1.0);
        let y = |value: f64| TOP + plot_h * (1.0 - (value / top).clamp(0.0, 1.0));

        let title = escape(self.title);
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
             aria-label=\"{title}\"><title>{title}</title>"
        );
        // Horizontal grid and percent labels.
        let mut value = 0.0;
        while value <= top + 1e-9 {
            let at = y(value);
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{at:.1}\" y2=\"{at:.1}\"/>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} %</text>",
                LEFT + plot_w,
                LEFT - 6.0,
                at + 4.0,
                number(value)
            );
            value += step;
        }
        // Day grid, dates every seven days.
        let days = (self.end_ms - self.start_ms) / DAY_MS;
        for day in 0..=days {
            let ms = self.start_ms + day * DAY_MS;
            let at = x(ms);
            let _ = write!(
                svg,
                "<line class=\"day\" x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"/>",
                TOP + plot_h
            );
            if day % 7 == 0 && day < days {
                let _ = write!(
                    svg,
                    "<text class=\"tick\" x=\"{at:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                    TOP + plot_h + 18.0,
                    format_date(ms)
                );
            }
        }
        // The threshold.
        let at = y(threshold);
        let _ = write!(
            svg,
            "<line class=\"threshold\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{at:.1}\" y2=\"{at:.1}\"/>\
             <text class=\"limit\" x=\"{:.1}\" y=\"{:.1}\">{} %</text>",
            LEFT + plot_w,
            LEFT + plot_w + 6.0,
            at + 4.0,
            number(threshold)
        );
        // The series as steps: each value holds until the next point.
        if let Some(first) = self.points.first() {
            let mut path = format!("M{:.1},{:.1}", x(first.at_ms), y(percent(&first.share)));
            for point in &self.points[1..] {
                let _ = write!(
                    path,
                    "H{:.1}V{:.1}",
                    x(point.at_ms),
                    y(percent(&point.share))
                );
            }
            let _ = write!(path, "H{:.1}", LEFT + plot_w);
            let _ = write!(svg, "<path class=\"series\" d=\"{path}\"/>");
        }
        svg.push_str("</svg>");
        svg
    }
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

    #[test]
    fn draws_steps_and_the_threshold() {
        let points = [
            SeriesPoint {
                at_ms: 0,
                share: "5.000".into(),
            },
            SeriesPoint {
                at_ms: 15 * DAY_MS,
                share: "8.000".into(),
            },
        ];
        let svg = StepChart {
            title: "MY share",
            points: &points,
            threshold: "7.000",
            start_ms: 0,
            end_ms: 30 * DAY_MS,
            full_scale: false,
        }
        .to_svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(">7 %</text>"), "{svg}");
        assert!(svg.contains(">10 %</text>"), "{svg}");
        assert!(svg.contains(">1970-01-08</text>"), "{svg}");
        // Halfway along the plot, the step up from 5 % to 8 % on a 0–10 % scale.
        assert!(svg.contains("d=\"M56.0,105.0H436.0V50.4H816.0\""), "{svg}");
        assert_eq!(number(7.5), "7.5");
        assert_eq!(number(100.0), "100");
    }
}
