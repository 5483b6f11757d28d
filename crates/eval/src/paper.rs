//! Structure as the analysis script of Zhang & Callison-Burch 2023 computes it, on text as
//! they published it: 6 columns a line, one line a 16th, 16 lines a bar, no separators.
//!
//! Their bar string is a bar's 16 lines, each with its newline, joined by newlines (127
//! characters for 6 columns); only the first 16 bars of a piece count, prompt included.
//! Mean stability pools every bar of every piece; the 2-means distance and spread are
//! averaged over pieces; a bar is identical to a neighbour when its stability is 0.

use serde::{Deserialize, Serialize};

use crate::structure::{levenshtein, two_means};

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

/// The script's figures over `pieces` (each a piece's published text). The 2-means is the
/// exact one-dimensional optimum, which scikit-learn's `KMeans(n_clusters=2)` with ten
/// initialisations reaches on these values; a piece with all its stabilities equal has
/// both centres there.
pub fn structure(pieces: &[&str]) -> PaperStructure {
    let mut pooled = Vec::new();
    let (mut distance, mut spread, mut counted) = (0.0, 0.0, 0usize);
    for text in pieces {
        let st = stabilities(&bar_strings(text));
        if let Some(k) = two_means(&st) {
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

/// Python's `random` (MT19937, as CPython seeds it from an integer), for the paper's random
/// baseline: `random.seed(29)`, then `random.choice(['-', 'o'])` for every cell.
struct PythonRandom {
    state: [u32; 624],
    index: usize,
}

impl PythonRandom {
    /// `random.seed(seed)` for a seed below 2^32 (`init_by_array` with one key word).
    fn new(seed: u32) -> PythonRandom {
        let mut mt = [0u32; 624];
        mt[0] = 19_650_218;
        for i in 1..624 {
            mt[i] =
                1_812_433_253u32.wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_add(i as u32);
        }
        let (mut i, key) = (1usize, [seed]);
        for k in 0..624usize.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[k % key.len()])
                .wrapping_add((k % key.len()) as u32);
            i += 1;
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
        }
        for _ in 0..623 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= 624 {
                mt[0] = mt[623];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
        PythonRandom { state: mt, index: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for i in 0..624 {
                let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
                let mut v = self.state[(i + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.state[i] = v;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random.choice` of two: `getrandbits(2)` until below 2.
    fn coin(&mut self) -> bool {
        loop {
            let r = self.next_u32() >> 30;
            if r < 2 {
                return r == 1;
            }
        }
    }
}

/// The paper's random baseline, as their script draws it: `random.seed(29)`, then for each
/// of `pieces` pieces, 256 lines of six coin flips between `-` and `o`.
pub fn random_texts(pieces: usize) -> Vec<String> {
    let mut rng = PythonRandom::new(29);
    (0..pieces)
        .map(|_| {
            let mut text = String::with_capacity(256 * (COLUMNS + 1));
            for _ in 0..256 {
                (0..COLUMNS).for_each(|_| text.push(if rng.coin() { 'o' } else { '-' }));
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

/// The table as Markdown, as the paper lays it out.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| system | mean stability | 2-means centre distance | in-cluster spread | bars identical to a neighbour |\n|---|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let st = &r.structure;
        s.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.1}% |\n",
            r.name,
            st.stability,
            st.distance,
            st.spread,
            100.0 * st.identical
        ));
    }
    for r in rows.iter().filter(|r| r.missing > 0) {
        s.push_str(&format!(
            "\n{}: no text for {} of {} pieces, left out of its figures.",
            r.name,
            r.missing,
            r.structure.pieces + r.missing
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::PythonRandom;

    /// CPython 3: `random.seed(29); [random.getrandbits(32) for _ in range(3)]`.
    #[test]
    fn the_generator_is_pythons() {
        let mut r = PythonRandom::new(29);
        let first: Vec<u32> = (0..3).map(|_| r.next_u32()).collect();
        assert_eq!(first, [2_354_153_409, 326_915_759, 1_485_336_377]);
    }
}
