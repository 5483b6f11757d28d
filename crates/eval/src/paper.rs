//! Structure as the analysis script of Zhang & Callison-Burch 2023 computes it, on text as
//! they published it: 6 columns a line, one line a 16th, 16 lines a bar, no separators.
//!
//! Their bar string is a bar's 16 lines, each with its newline, joined by newlines (127
//! characters for 6 columns); only the first 16 bars of a piece count, prompt included.
//! Mean stability pools every bar of every piece; the 2-means distance and spread are
//! averaged over pieces; a bar is identical to a neighbour when its stability is 0.

use serde::{Deserialize, Serialize};

use crate::kmeans::Mt19937;
pub use crate::kmeans::sklearn_two_means;
use crate::structure::levenshtein;
use crate::table::{Table, page};

/// Lines a bar in the published text.
pub const LINES_PER_BAR: usize = 16;
/// Bars of a piece the script scores.
pub const BARS: usize = 16;

/// A piece's bar strings as the script builds them: lines (newlines kept) 16 at a time,
/// joined by newlines; the first 16 bars. Malformed lines count as the script counted
/// them: as text.
pub fn bar_strings(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    lines.chunks(LINES_PER_BAR).take(BARS).map(|bar| bar.join("\n")).collect()
}

/// The stability of every bar with two neighbours: its smaller Levenshtein distance to
/// them.
pub fn stabilities(bars: &[String]) -> Vec<f64> {
    (1..bars.len().saturating_sub(1))
        .map(|i| {
            let d = |j: usize| levenshtein(bars[i].as_bytes(), bars[j].as_bytes());
            d(i - 1).min(d(i + 1)) as f64
        })
        .collect()
}

/// The script's figures for one system.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PaperStructure {
    /// Pieces scored.
    pub pieces: usize,
    /// The mean stability of every scored bar of every piece, pooled.
    pub stability: f64,
    /// The mean over pieces of the distance between the two 2-means centres.
    pub distance: f64,
    /// The mean over pieces of the mean distance of a bar to its own centre.
    pub spread: f64,
    /// The share of scored bars whose stability is 0.
    pub identical: f64,
}

/// The script's figures over `pieces` (each a piece's published text). The 2-means is
/// scikit-learn's, pinned as [`sklearn_two_means`] says: `random_state=0` as the script
/// set it and `n_init=10` (scikit-learn's default before 1.4), so that it settles where
/// the script's did, local optima included.
pub fn structure(pieces: &[&str]) -> PaperStructure {
    let mut pooled = Vec::new();
    let (mut distance, mut spread, mut counted) = (0.0, 0.0, 0usize);
    for text in pieces {
        let st = stabilities(&bar_strings(text));
        if let Some(k) = sklearn_two_means(&st) {
            distance += k.distance;
            spread += k.spread;
            counted += 1;
        }
        pooled.extend(st);
    }
    let n = pooled.len().max(1) as f64;
    PaperStructure {
        pieces: pieces.len(),
        stability: pooled.iter().sum::<f64>() / n,
        distance: distance / counted.max(1) as f64,
        spread: spread / counted.max(1) as f64,
        identical: pooled.iter().filter(|&&x| x == 0.0).count() as f64 / n,
    }
}

/// The paper's six columns, in their order: crash, ride, snare, kick, hi-hat, tom.
const COLUMNS: usize = 6;

/// The column each pitch merges into, as their script merges articulations; `None` for a
/// pitch it leaves out (44, the pedal hi-hat, among them).
fn column(pitch: u8) -> Option<usize> {
    match pitch {
        49 | 55 | 57 | 52 => Some(0),
        51 | 53 | 59 => Some(1),
        38 | 40 | 37 => Some(2),
        36 => Some(3),
        42 | 46 | 22 | 26 => Some(4),
        50 | 48 | 47 | 45 | 43 | 58 => Some(5),
        _ => None,
    }
}

/// A groove (read with [`VoiceMap::Full`](fine_drums_codec::VoiceMap::Full), exact ticks)
/// as the paper's `midi_to_text.py` writes it: 16 bars of the meter's beats, a line per
/// 16th, an `o` or `-` per column. Each note goes to the 16th whose window holds its tick
/// (`[0, q/8)` for the first, then `[(2i-1) q/8, (2i+1) q/8)`, `q` the ticks of a quarter,
/// their divisions truncated as theirs); the first note past the last window ends the
/// reading. `None` for a meter whose denominator is not 4 (they skipped those).
pub fn text_of(groove: &fine_drums_codec::Groove) -> Option<String> {
    let meter = groove.bars.last()?.meter;
    if meter.denominator() != 4 {
        return None;
    }
    let tpb = i64::from(groove.ticks_per_quarter);
    let (q, e) = (tpb / 4, tpb / 8);
    let sixteenths = 16 * 4 * usize::from(meter.numerator());
    let mut hits: Vec<(i64, u8)> = Vec::with_capacity(groove.hit_count());
    let mut start = 0i64;
    for bar in &groove.bars {
        for h in &bar.hits {
            let tick = start
                + groove.grid.step_tick(h.step, groove.ticks_per_quarter)
                + i64::from(h.offset);
            hits.push((tick, groove.voices.pitch_of(h.voice).as_int()));
        }
        start += i64::from(bar.meter.bar_ticks(groove.ticks_per_quarter).ok()?);
    }
    hits.sort_by_key(|h| h.0);
    let mut grid = vec![[false; COLUMNS]; sixteenths];
    for (tick, pitch) in hits {
        let index = if (0..e).contains(&tick) {
            Some(0)
        } else if tick >= q - e && q > 0 {
            let k = (tick - (q - e)) / q;
            (k < sixteenths as i64 - 1 && tick < q + e + k * q).then_some(k as usize + 1)
        } else {
            None
        };
        let Some(i) = index else { break };
        if let Some(c) = column(pitch) {
            grid[i][c] = true;
        }
    }
    let mut text = String::with_capacity(sixteenths * (COLUMNS + 1));
    for row in grid {
        row.iter().for_each(|&o| text.push(if o { 'o' } else { '-' }));
        text.push('\n');
    }
    Some(text)
}

/// `random.choice` of two, as CPython draws it: `getrandbits(2)` until below 2.
fn coin(rng: &mut Mt19937) -> bool {
    loop {
        let r = rng.next_u32() >> 30;
        if r < 2 {
            return r == 1;
        }
    }
}

/// The paper's random baseline, as their script draws it: `random.seed(29)`, then for each
/// of `pieces` pieces, 256 lines of six coin flips between `-` and `o`.
pub fn random_texts(pieces: usize) -> Vec<String> {
    let mut rng = Mt19937::python(29);
    (0..pieces)
        .map(|_| {
            let mut text = String::with_capacity(256 * (COLUMNS + 1));
            for _ in 0..256 {
                (0..COLUMNS).for_each(|_| text.push(if coin(&mut rng) { 'o' } else { '-' }));
                text.push('\n');
            }
            text
        })
        .collect()
}

/// The paper's repeat baseline: the first bar, then the second fifteen times.
pub fn repeat_text(gold: &str) -> String {
    let lines: Vec<&str> = gold.split_inclusive('\n').collect();
    let first = lines.get(..LINES_PER_BAR).unwrap_or(&lines[..]).concat();
    let second = lines.get(LINES_PER_BAR..2 * LINES_PER_BAR).unwrap_or(&[]).concat();
    first + &second.repeat(15)
}

/// A row of the paper's table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Row {
    /// `human`, an import's name, `random` or `repeat`.
    pub name: String,
    /// Its figures, over the pieces it has a text for.
    pub structure: PaperStructure,
    /// Pieces it has no text for: counted, never scored.
    pub missing: usize,
}

/// The paper's table: the drummers (`human`, their text of each piece), each import (its
/// text of each piece, `None` where it has none), and the two baselines as their script
/// draws them.
pub fn table(human: &[String], imports: &[(String, Vec<Option<String>>)]) -> Vec<Row> {
    let row = |name: &str, texts: &[Option<String>]| {
        let present: Vec<&str> = texts.iter().flatten().map(String::as_str).collect();
        Row {
            name: name.to_string(),
            structure: structure(&present),
            missing: texts.len() - present.len(),
        }
    };
    let wrap = |t: Vec<String>| t.into_iter().map(Some).collect::<Vec<_>>();
    let mut rows = vec![row("human", &wrap(human.to_vec()))];
    rows.extend(imports.iter().map(|(name, texts)| row(name, texts)));
    rows.push(row("random", &wrap(random_texts(human.len()))));
    rows.push(row("repeat", &wrap(human.iter().map(|h| repeat_text(h)).collect())));
    rows
}

/// The table, as the paper lays it out, with a note for each system that lacks pieces.
fn paper_table(rows: &[Row]) -> Table {
    let mut t = Table::new(
        "",
        &[
            "system",
            "mean stability",
            "2-means centre distance",
            "in-cluster spread",
            "bars identical to a neighbour",
        ],
    );
    for r in rows {
        let st = &r.structure;
        t.rows.push(vec![
            r.name.clone(),
            format!("{:.2}", st.stability),
            format!("{:.2}", st.distance),
            format!("{:.2}", st.spread),
            format!("{:.1}%", 100.0 * st.identical),
        ]);
    }
    let missing: Vec<String> = rows
        .iter()
        .filter(|r| r.missing > 0)
        .map(|r| {
            let of = r.structure.pieces + r.missing;
            format!(
                "{}: no text for {} of {of} pieces, left out of its figures.",
                r.name, r.missing
            )
        })
        .collect();
    t.after = missing.join("\n");
    t
}

/// The table as Markdown, as the paper lays it out.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::new();
    paper_table(rows).markdown(&mut s);
    s
}

/// The table as a page of HTML (`report.html`), viewable offline.
pub fn html(rows: &[Row]) -> String {
    let mut body = String::from(
        "<p>Structure as the analysis script of Zhang &amp; Callison-Burch 2023 computes it, on the \
         GMD made text their way and on each system's published text.</p>\n",
    );
    paper_table(rows).html(&mut body);
    page("The paper's table, reproduced", &body)
}
