//! A plain SVG line chart for group reports (no plotting dependency; the
//! simulation crate has its own, which measuring does not depend on).

use std::fmt::Write;

/// One named series of (x, y) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const COLOURS: [&str; 8] = [
    "#1d3557", "#e63946", "#2a9d8f", "#f4a261", "#6a4c93", "#8d99ae", "#ff006e", "#3a86ff",
];
const W: f64 = 680.0;
const H: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 210.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// A line chart with dots, axes from the data (and `reference`, a dashed
/// horizontal line, when given), ticks and a legend. Points that are not
/// finite are left out.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    reference: Option<f64>,
) -> String {
    let f = Frame::of(series, reference);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="22" font-size="14" font-weight="bold">{}</text>"#,
        esc(title)
    );
    f.axes(&mut s, x_label, y_label);
    if let Some(r) = reference {
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{XR}" y2="{y:.1}" stroke="#999" stroke-dasharray="5,4"/>"##,
            y = f.py(r)
        );
    }
    for (i, se) in series.iter().enumerate() {
        f.series(&mut s, i, se);
    }
    s.push_str("</svg>\n");
    s
}

/// The plot area's right edge and the x axis' height.
const XR: f64 = W - RIGHT;
const YB: f64 = H - BOTTOM;

/// The data's ranges, which the plot area maps to pixels.
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl Frame {
    /// The finite points' ranges and the reference line's, the y range
    /// from 0 or below; (0, 1) for no points, never empty.
    fn of(series: &[Series], reference: Option<f64>) -> Frame {
        let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
        let pts = series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite());
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if let Some(r) = reference {
            y0 = y0.min(r);
            y1 = y1.max(r);
        }
        if !x0.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        if !y0.is_finite() {
            (y0, y1) = (0.0, 1.0);
        }
        y0 = y0.min(0.0);
        if x1 - x0 < 1e-12 {
            x1 = x0 + 1.0;
        }
        if y1 - y0 < 1e-12 {
            y1 = y0 + 1.0;
        }
        Frame { x0, x1, y0, y1 }
    }

    fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        H - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)
    }

    /// The axes, five ticks on each with grid lines, and their labels.
    fn axes(&self, s: &mut String, x_label: &str, y_label: &str) {
        let (x0, x1, y0, y1) = (self.x0, self.x1, self.y0, self.y1);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{YB}" x2="{XR}" y2="{YB}" stroke="#333"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{YB}" stroke="#333"/>"##
        );
        for i in 0..=4 {
            let fx = x0 + (x1 - x0) * i as f64 / 4.0;
            let fy = y0 + (y1 - y0) * i as f64 / 4.0;
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{}" text-anchor="middle">{}</text><text x="{}" y="{:.1}" text-anchor="end">{}</text><line x1="{LEFT}" y1="{:.1}" x2="{XR}" y2="{:.1}" stroke="#eee"/>"##,
                self.px(fx),
                YB + 16.0,
                tick(fx),
                LEFT - 6.0,
                self.py(fy) + 4.0,
                tick(fy),
                self.py(fy),
                self.py(fy)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="16" y="{m}" transform="rotate(-90 16 {m})" text-anchor="middle">{}</text>"#,
            (LEFT + XR) / 2.0,
            H - 10.0,
            esc(x_label),
            esc(y_label),
            m = (TOP + YB) / 2.0
        );
    }

    /// Series `i`: its line, its dots and its legend entry.
    fn series(&self, s: &mut String, i: usize, se: &Series) {
        let c = COLOURS[i % COLOURS.len()];
        let p: Vec<(f64, f64)> = se
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let line: Vec<String> = p
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
            line.join(" ")
        );
        for &(x, y) in &p {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{c}"/>"#,
                self.px(x),
                self.py(y)
            );
        }
        let ly = TOP + 16.0 * i as f64 + 6.0;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            XR + 10.0,
            XR + 28.0,
            XR + 33.0,
            ly + 4.0,
            esc(&truncate(&se.name, 30))
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n - 1).collect();
        format!("{t}…")
    }
}

fn tick(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 || a == 0.0 {
        format!("{v:.2}")
    } else if a >= 0.01 {
        format!("{v:.3}")
    } else if a >= 0.001 {
        format!("{v:.4}")
    } else {
        format!("{v:.1e}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_each_series_and_the_reference() {
        let svg = line_chart(
            "a <b> & c",
            "x",
            "y",
            &[
                Series {
                    name: "one".into(),
                    points: vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0)],
                },
                Series {
                    name: "two".into(),
                    points: vec![],
                },
            ],
            Some(1.0),
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        assert!(!svg.contains("NaN"));
        assert!(svg.ends_with("</svg>\n"));
    }
}
