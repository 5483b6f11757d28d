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
