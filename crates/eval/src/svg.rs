//! Pictures: piano rolls and stability curves, as SVG text.

use std::fmt::Write as _;

use fine_drums_codec::Groove;

use crate::table::escape;

const STEP: f64 = 4.0;
const ROW: f64 = 7.0;
const LABEL: f64 = 90.0;
const COLORS: [&str; 6] = ["#222222", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];

/// A piano roll of one piece: a panel per system (name, prompt + continuation), one row
/// per voice (named), a square per onset where it was played (microtiming included), darker
/// the louder, the prompt bars on grey, bars numbered from 1, a line on every beat, and a
/// legend of the shading under the title.
pub fn piano_roll(
    title: &str,
    voices: &[String],
    prompt_bars: usize,
    panels: &[(&str, &Groove)],
) -> String {
    let steps = panels
        .iter()
        .map(|(_, g)| {
            g.bars.iter().map(|b| b.meter.steps(g.grid).unwrap_or(16) as usize).sum::<usize>()
        })
        .max()
        .unwrap_or(0);
    let panel_h = ROW * voices.len() as f64 + 26.0;
    let width = (LABEL + STEP * steps as f64 + 10.0).max(420.0);
    let height = 40.0 + panel_h * panels.len() as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="9">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="4" y="14" font-size="12">{}</text>"#,
        escape(title)
    );
    // The legend: what the grey, the squares and their shades mean.
    let _ = writeln!(
        s,
        r##"<rect x="4" y="21" width="10" height="8" fill="#e8e8e8" stroke="#cccccc" stroke-width="0.5"/><text x="17" y="28">prompt</text>"##
    );
    for (i, (v, label)) in [(20.0, "soft"), (70.0, ""), (127.0, "loud")].iter().enumerate() {
        let opacity = 0.25 + 0.75 * v / 127.0;
        let x = 80.0 + 10.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="21" width="{}" height="{}" fill="{}" fill-opacity="{opacity:.2}"/>"#,
            STEP * 2.0 - 0.5,
            ROW,
            COLORS[0]
        );
        if !label.is_empty() {
            let tx = if i == 0 { x - 3.0 } else { x + 12.0 };
            let anchor = if i == 0 { "end" } else { "start" };
            let _ = writeln!(s, r#"<text x="{tx}" y="28" text-anchor="{anchor}">{label}</text>"#);
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="150" y="28">a square per hit, where it was played; a line on every beat</text>"#
    );
    for (p, (name, g)) in panels.iter().enumerate() {
        let top = 40.0 + panel_h * p as f64;
        let _ = writeln!(
            s,
            r#"<text x="4" y="{}" font-weight="bold">{}</text>"#,
            top + 10.0,
            escape(name)
        );
        let grid_top = top + 22.0;
        let step_ticks = (g.grid.step_tick(1, g.ticks_per_quarter) as f64).max(1.0);
        let mut x0 = LABEL;
        for (i, bar) in g.bars.iter().enumerate() {
            let n = bar.meter.steps(g.grid).unwrap_or(16) as f64;
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{}" fill="#555555">{}</text>"##,
                x0 + 1.0,
                grid_top - 2.0,
                i + 1
            );
            let fill = if i < prompt_bars {
                "#e8e8e8"
            } else if i % 2 == 0 {
                "#f7f7ff"
            } else {
                "#ffffff"
            };
            let _ = writeln!(
                s,
                r##"<rect x="{x0}" y="{grid_top}" width="{}" height="{}" fill="{fill}" stroke="#cccccc" stroke-width="0.5"/>"##,
                n * STEP,
                ROW * voices.len() as f64
            );
            let beats = f64::from(bar.meter.numerator().max(1));
            for b in 1..bar.meter.numerator() {
                let x = x0 + n * STEP * f64::from(b) / beats;
                let _ = writeln!(
                    s,
                    r##"<line x1="{x}" y1="{grid_top}" x2="{x}" y2="{}" stroke="#dddddd" stroke-width="0.5"/>"##,
                    grid_top + ROW * voices.len() as f64
                );
            }
            for h in &bar.hits {
                let v = h.voice.index();
                if v >= voices.len() {
                    continue;
                }
                let opacity = 0.25 + 0.75 * f64::from(h.velocity.as_int()) / 127.0;
                let played = f64::from(h.step) + f64::from(h.offset) / step_ticks;
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.2}" y="{}" width="{}" height="{}" fill="{}" fill-opacity="{opacity:.2}"/>"#,
                    x0 + played * STEP,
                    grid_top + ROW * v as f64 + 0.5,
                    STEP - 0.5,
                    ROW - 1.0,
                    COLORS[p % COLORS.len()]
                );
            }
            x0 += n * STEP;
        }
        for (v, name) in voices.iter().enumerate() {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                LABEL - 3.0,
                grid_top + ROW * (v as f64 + 1.0) - 1.0,
                escape(name)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Stability curves: the mean stability at each bar position, one line per system.
pub fn stability_curves(curves: &[(&str, Vec<f64>)]) -> String {
    let (w, h, left, bottom, top) = (640.0, 320.0, 50.0, 40.0, 20.0);
    let n = curves.iter().map(|(_, c)| c.len()).max().unwrap_or(0).max(2);
    let max = curves.iter().flat_map(|(_, c)| c.iter().copied()).fold(1.0f64, f64::max).ceil();
    let x = |i: usize| left + (w - left - 130.0) * i as f64 / (n - 1) as f64;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / max);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
        y(0.0),
        x(n - 1),
        y(0.0)
    );
    let _ =
        writeln!(s, r#"<line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="black"/>"#, y(0.0));
    for i in 0..n {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x(i),
            y(0.0) + 14.0,
            i + 2
        );
    }
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{v:.1}</text>"#,
            left - 4.0,
            y(v) + 4.0
        );
    }
    let _ =
        writeln!(s, r#"<text x="{}" y="{}" text-anchor="middle">bar</text>"#, x(n / 2), h - 6.0);
    let _ = writeln!(
        s,
        r#"<text x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">mean stability (Levenshtein; lower = steadier)</text>"#,
        h / 2.0,
        h / 2.0
    );
    for (k, (name, c)) in curves.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let points: Vec<String> =
            c.iter().enumerate().map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v))).collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            points.join(" ")
        );
        let ly = top + 16.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            w - 120.0,
            w - 100.0,
            w - 96.0,
            ly + 4.0,
            escape(name)
        );
    }
    s.push_str("</svg>\n");
    s
}
