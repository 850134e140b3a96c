//! `docs/bench-throughput.svg`: the throughput plot of the bench boots.

use super::goals::Results;
use super::gnumach::size_label;
use std::fmt::Write as _;

impl Results {
    /// Throughput (MiB/s) by request size (log scale), one line per path and operation.
    pub fn throughput_svg(&self) -> String {
        const W: f64 = 640.0;
        const H: f64 = 400.0;
        // Margins: left (axis labels), right (legend), top (title), bottom (size labels).
        const L: f64 = 70.0;
        const R: f64 = 150.0;
        const T: f64 = 30.0;
        const B: f64 = 50.0;
        let guest = self.guest();
        let sizes = guest.sizes();
        /// One line of the plot: (request size, MiB/s) points.
        struct Series {
            path: &'static str,
            op: &'static str,
            colour: &'static str,
            points: Vec<(u64, f64)>,
        }
        let series: Vec<Series> = [
            ("direct", "read", "#1f77b4"),
            ("server", "read", "#aec7e8"),
            ("direct", "write", "#d62728"),
            ("server", "write", "#ff9896"),
        ]
        .into_iter()
        .map(|(path, op, colour)| {
            let points = sizes
                .iter()
                .filter_map(|&b| Some((b, self.mib_per_s(b, guest.ticks(path, op, b)?))))
                .collect();
            Series {
                path,
                op,
                colour,
                points,
            }
        })
        .collect();
        let top = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.1;
        let (lo, hi) = (
            sizes.first().copied().unwrap_or(1) as f64,
            sizes.last().copied().unwrap_or(2) as f64,
        );
        let span = (hi / lo).log2().max(1.0);
        let x = |b: u64| L + (W - L - R) * ((b as f64 / lo).log2() / span);
        let y = |v: f64| H - B - (H - T - B) * (v / top);
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n\
             <text x=\"{}\" y=\"18\" text-anchor=\"middle\">throughput by request size (MiB/s, median request)</text>\n\
             <line x1=\"{L}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{L}\" y1=\"{T}\" x2=\"{L}\" y2=\"{}\" stroke=\"black\"/>\n",
            (W - R + L) / 2.0,
            H - B,
            W - R,
            H - B,
            H - B
        );
        for &b in &sizes {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x(b),
                H - B + 18.0,
                size_label(b)
            );
        }
        for i in 0..=4 {
            let v = top * f64::from(i) / 4.0;
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.1}</text><line x1=\"{L}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
                L - 6.0,
                y(v) + 4.0,
                y(v),
                W - R,
                y(v)
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">request size</text>",
            (W - R + L) / 2.0,
            H - 12.0
        );
        for (
            i,
            Series {
                path,
                op,
                colour,
                points,
            },
        ) in series.iter().enumerate()
        {
            let line: Vec<String> = points
                .iter()
                .map(|&(b, v)| format!("{:.1},{:.1}", x(b), y(v)))
                .collect();
            let dash = if *path == "server" {
                " stroke-dasharray=\"6 3\""
            } else {
                ""
            };
            let _ = writeln!(svg, "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"/>", line.join(" "));
            let ly = T + 20.0 * i as f64 + 10.0;
            let _ = writeln!(
                svg,
                "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\">{path} {op}</text>",
                W - R + 10.0,
                W - R + 34.0,
                W - R + 40.0,
                ly + 4.0
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}
