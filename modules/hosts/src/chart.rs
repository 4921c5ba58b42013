//! Line charts drawn on the server as SVG: no script, no external library, readable on a phone
//! (the SVG scales to its box).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::repo::Point;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 140.0;
const PAD: f64 = 4.0;

/// A chart of `points` over `[from, to]`. Percentages are drawn on a 0–100 scale; other values on
/// 0 to their maximum. Returns the SVG element (numbers only: nothing from the user is in it).
pub fn line(points: &[Point], from: DateTime<Utc>, to: DateTime<Utc>, percent: bool) -> String {
    let span = (to - from).num_milliseconds().max(1) as f64;
    let top = if percent {
        100.0
    } else {
        points
            .iter()
            .map(|p| p.value)
            .fold(0.0_f64, f64::max)
            .max(1e-9)
            * 1.1
    };
    let x =
        |t: DateTime<Utc>| PAD + (t - from).num_milliseconds() as f64 / span * (WIDTH - 2.0 * PAD);
    let y = |v: f64| HEIGHT - PAD - (v.clamp(0.0, top) / top) * (HEIGHT - 2.0 * PAD);
    let mut path = String::new();
    for (i, p) in points.iter().enumerate() {
        let _ = write!(
            path,
            "{}{:.1},{:.1}",
            if i == 0 { "M" } else { " L" },
            x(p.at),
            y(p.value)
        );
    }
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" preserveAspectRatio=\"none\" role=\"img\">\
         <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" class=\"chart-bg\"/>"
    );
    for fraction in [0.25, 0.5, 0.75] {
        let gy = y(top * fraction);
        let _ = write!(
            svg,
            "<line x1=\"0\" x2=\"{WIDTH}\" y1=\"{gy:.1}\" y2=\"{gy:.1}\" class=\"chart-grid\"/>"
        );
    }
    if !path.is_empty() {
        let _ = write!(svg, "<path d=\"{path}\" class=\"chart-line\"/>");
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_land_inside_the_box_and_scale_to_their_range() {
        let from = Utc::now();
        let to = from + chrono::Duration::minutes(10);
        let points = vec![
            Point {
                at: from,
                value: 0.0,
            },
            Point {
                at: to,
                value: 100.0,
            },
        ];
        let svg = line(&points, from, to, true);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("M4.0,136.0 L596.0,4.0"), "{svg}");
        assert!(
            !line(&[], from, to, false).contains("<path"),
            "no line without points"
        );
    }
}
