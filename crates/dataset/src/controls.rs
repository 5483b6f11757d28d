//! What the GMD says about each file and bar, as the controls a model can be steered by:
//! style, a tempo bucket, a per-bar intensity and a per-bar fill marker. All of it is read
//! from the index and from the beat-format bars themselves, so a prompt (with no index
//! behind it) gets the same controls as training did.
//!
//! ```
//! use fine_drums_codec::beat::BeatOptions;
//! use fine_drums_dataset::controls;
//!
//! let beat = BeatOptions::default();
//! let groove = "Kh..h. Sh..h. Kh..Kh. Sh..h.";
//! let fill = "S.s.S.s T.T.T.T L.L.L.L S.S.S.S";
//! let bars = [groove, groove, groove, fill, groove];
//! assert_eq!(controls::intensity(groove, &beat), Some(2));
//! assert_eq!(controls::fills(&bars, &beat, false), [false, false, false, true, false]);
//! assert_eq!(controls::tempo_bucket(96.0), 1);
//! # Ok::<(), fine_drums_dataset::Error>(())
//! ```
//!
//! # Definitions
//!
//! - **Style**: the genre of the GMD's style label (`funk` of `funk/groove1`).
//! - **Tempo**: a bucket of the file's BPM, edges [`TEMPO_EDGES`] (below 80, 80 to 99, 100
//!   to 119, 120 to 139, 140 and up).
//! - **Intensity**, 1 to [`INTENSITIES`]: a bar's loudness-weighted density, the sum over its
//!   hits of `(1 + level) / (1 + levels)` per 16 steps (a loud hit counts more than a ghost
//!   note), bucketed at [`INTENSITY_EDGES`], the quintiles of the GMD train split's bars.
//! - **Departure** of a bar from another: the hits (step and voice, velocity left out) that
//!   one has and the other has not, both ways ([`departure`]).
//! - **Fill**: every bar of a GMD fill recording that holds at least [`FILL_MIN_HITS`] hits;
//!   and in any file, a bar that departs from the bar before it by at least
//!   [`FILL_DEPARTURE`] while the bar after it comes back nearer to the bar before (or is
//!   the end), unless the bar before is a fill itself: a change that returns, as a fill
//!   does, not a new groove that stays, nor the groove a fill returns to.

use fine_drums_codec::beat::{BeatOptions, split_bar};
use serde::{Deserialize, Serialize};

/// The upper edges of the tempo buckets 0 to 3, in BPM; bucket 4 is the rest.
pub const TEMPO_EDGES: [f64; 4] = [80.0, 100.0, 120.0, 140.0];

/// Tempo buckets.
pub const TEMPOS: u8 = TEMPO_EDGES.len() as u8 + 1;

/// Intensity buckets, numbered from 1.
pub const INTENSITIES: u8 = 5;

/// The upper edges of intensity buckets 1 to 4 (see the module's definitions).
pub const INTENSITY_EDGES: [f64; 4] = [10.25, 12.75, 15.25, 18.25];

/// The fewest hits a bar of a fill recording needs to be marked a fill.
pub const FILL_MIN_HITS: usize = 4;

/// The departure from the bar before that marks a bar of a groove recording as a fill.
pub const FILL_DEPARTURE: usize = 20;

/// The tempo bucket of `bpm`, 0 to [`TEMPOS`] - 1.
pub fn tempo_bucket(bpm: f64) -> u8 {
    TEMPO_EDGES.iter().take_while(|&&e| bpm >= e).count() as u8
}

/// A bar's hits, per step: the voices struck (as bits) with their levels summed, or `None`
/// for a line that is not a bar of `beat`.
fn steps(line: &str, beat: &BeatOptions) -> Option<Vec<(u64, u32, usize)>> {
    let bar = split_bar(line.trim())?;
    bar.steps
        .iter()
        .map(|s| {
            let step = beat.parse_step(s).ok()?;
            let mask = step.hits.iter().fold(0u64, |m, (v, _)| m | 1 << (v.index() & 63));
            let level: u32 = step.hits.iter().map(|&(_, l)| u32::from(l)).sum();
            Some((mask, level, step.hits.len()))
        })
        .collect()
}

fn hit_count(steps: &[(u64, u32, usize)]) -> usize {
    steps.iter().map(|s| s.0.count_ones() as usize).sum()
}

/// A bar's loudness-weighted density per 16 steps (see the module's definitions), or
/// `None` for a line that is not a bar of `beat`.
pub fn intensity_score(line: &str, beat: &BeatOptions) -> Option<f64> {
    let steps = steps(line, beat)?;
    if steps.is_empty() {
        return Some(0.0);
    }
    let levels = f64::from(beat.levels.count());
    let sum: f64 = steps
        .iter()
        .map(|&(_, level, hits)| (hits as f64 + f64::from(level)) / (1.0 + levels))
        .sum();
    Some(sum * 16.0 / steps.len() as f64)
}

/// A bar's intensity bucket, 1 to [`INTENSITIES`], or `None` for a line that is not a bar.
pub fn intensity(line: &str, beat: &BeatOptions) -> Option<u8> {
    let score = intensity_score(line, beat)?;
    Some(1 + INTENSITY_EDGES.iter().take_while(|&&e| score >= e).count() as u8)
}

/// The hits (step and voice) that one bar has and the other has not, both ways. Bars of
/// different lengths depart by all their hits; a line that is not a bar has none.
pub fn departure(a: &str, b: &str, beat: &BeatOptions) -> usize {
    departure_of(&steps(a, beat).unwrap_or_default(), &steps(b, beat).unwrap_or_default())
}

/// [`departure`] of bars already split into steps.
fn departure_of(a: &[(u64, u32, usize)], b: &[(u64, u32, usize)]) -> usize {
    if a.len() != b.len() {
        return hit_count(a) + hit_count(b);
    }
    a.iter().zip(b).map(|(x, y)| (x.0 ^ y.0).count_ones() as usize).sum()
}

/// The fill marker of each bar of a piece (see the module's definitions); `fill_recording`
/// for a file the GMD lists as a fill.
pub fn fills(bars: &[&str], beat: &BeatOptions, fill_recording: bool) -> Vec<bool> {
    // Each bar is read once; a line that is not a bar has no hits.
    let parsed: Vec<_> = bars.iter().map(|l| steps(l, beat).unwrap_or_default()).collect();
    let mut out = Vec::with_capacity(bars.len());
    for i in 0..parsed.len() {
        let fill = if fill_recording {
            hit_count(&parsed[i]) >= FILL_MIN_HITS
        } else if i == 0 || out[i - 1] {
            false
        } else {
            let away = departure_of(&parsed[i - 1], &parsed[i]);
            away >= FILL_DEPARTURE
                && parsed.get(i + 1).is_none_or(|next| departure_of(&parsed[i - 1], next) < away)
        };
        out.push(fill);
    }
    out
}

/// A whole file as the drum GPT trains on it: its bars, and what the index says about it.
/// One line of a `*.pieces.jsonl` file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Piece {
    /// The file, relative to the dataset folder.
    pub path: String,
    /// Its genre (`funk`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// The tempo the drummer played to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpm: Option<f64>,
    /// Whether the index lists it as a fill recording.
    #[serde(default)]
    pub fill: bool,
    /// Its bars, one a line, in the manifest's format.
    pub text: String,
}

impl Piece {
    /// A piece from its text alone.
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Piece {
        Piece { path: path.into(), style: None, bpm: None, fill: false, text: text.into() }
    }

    /// The piece with its style, tempo and fill flag.
    pub fn with(mut self, style: Option<String>, bpm: Option<f64>, fill: bool) -> Piece {
        (self.style, self.bpm, self.fill) = (style, bpm, fill);
        self
    }

    /// Its bars: the lines that are not blank.
    pub fn bars(&self) -> Vec<&str> {
        self.text.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
    }

    /// The piece as one JSONL line (with its newline).
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

/// The pieces of a `*.pieces.jsonl` file. A line that does not read is an error naming
/// the file and line.
pub fn read_pieces(name: &str, jsonl: &str) -> crate::Result<Vec<Piece>> {
    let mut out = Vec::new();
    for (i, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let piece = serde_json::from_str(line).map_err(|source| crate::Error::Example {
            file: name.to_string(),
            line: i + 1,
            source,
        })?;
        out.push(piece);
    }
    Ok(out)
}
