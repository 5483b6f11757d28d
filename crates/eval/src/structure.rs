//! Structure, as Zhang & Callison-Burch 2023 measure it on their drumroll rendering.

use std::collections::HashSet;

use fine_drums_codec::{Format, Groove};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Each bar of `groove` as the paper's drumroll writes it: 16 lines of 6 characters (crash,
/// ride, snare, kick, hi-hat, tom; `o` or `-`) for a 4/4 bar, joined without newlines.
pub fn roll_bars(groove: &Groove) -> Result<Vec<String>> {
    let text = Format::DRUMROLL.encode(groove)?;
    let mut bars = vec![String::new()];
    for line in text.lines() {
        match line {
            "SEP" => bars.push(String::new()),
            "END" => {}
            row => bars.last_mut().map(|b| b.push_str(row)).unwrap_or_default(),
        }
    }
    if groove.bars.is_empty() {
        bars.clear();
    }
    Ok(bars)
}

/// The Levenshtein distance between two byte strings (insertions, deletions and
/// substitutions each cost 1).
pub fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let next = (diag + usize::from(x != y)).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The stability of every bar that has two neighbours: its smallest Levenshtein distance
/// to the bar before or after. For the paper's 16-bar pieces these are bars 2 to 15.
pub fn stabilities(bars: &[String]) -> Vec<usize> {
    (1..bars.len().saturating_sub(1))
        .map(|i| {
            let d = |j: usize| levenshtein(bars[i].as_bytes(), bars[j].as_bytes());
            d(i - 1).min(d(i + 1))
        })
        .collect()
}

/// The two clusters of a 1-D 2-means.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TwoMeans {
    /// The lower centre.
    pub low: f64,
    /// The higher centre.
    pub high: f64,
    /// `high - low`: how far variation sits from repetition.
    pub distance: f64,
    /// The mean absolute distance of each value to its own centre.
    pub spread: f64,
}

/// The optimal 2-means of `values` (the split of the sorted values that minimises the
/// within-cluster sum of squares; exact in one dimension). `None` for fewer than two values.
pub fn two_means(values: &[f64]) -> Option<TwoMeans> {
    if values.len() < 2 {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let sse = |s: &[f64]| {
        let m = mean(s);
        s.iter().map(|x| (x - m).powi(2)).sum::<f64>()
    };
    let split = (1..v.len())
        .min_by(|&a, &b| (sse(&v[..a]) + sse(&v[a..])).total_cmp(&(sse(&v[..b]) + sse(&v[b..]))))
        .unwrap_or(1);
    let (lo, hi) = v.split_at(split);
    let (low, high) = (mean(lo), mean(hi));
    let spread = (lo.iter().map(|x| (x - low).abs()).sum::<f64>()
        + hi.iter().map(|x| (x - high).abs()).sum::<f64>())
        / v.len() as f64;
    Some(TwoMeans { low, high, distance: high - low, spread })
}

/// Structure figures over a set of pieces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Structure {
    /// Pieces scored.
    pub pieces: usize,
    /// The mean over pieces of each piece's mean stability (lower is more repetitive).
    pub stability: f64,
    /// The mean over pieces of the 2-means centre distance.
    pub centre_distance: f64,
    /// The mean over pieces of the 2-means within-cluster spread.
    pub spread: f64,
    /// The share of scored bars identical to a neighbour (stability 0).
    pub identical: f64,
    /// The share of continuation bars found verbatim in the training split.
    pub duplicated: f64,
    /// The share of continuation bars never seen in training: `1 - duplicated`.
    pub unseen: f64,
    /// The mean stability at each bar position (bar 2 first), across pieces.
    pub curve: Vec<f64>,
}

/// A piece for [`structure`]: all its bars in drumroll form, and where the continuation
/// starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollPiece {
    /// Prompt and continuation bars.
    pub bars: Vec<String>,
    /// The index of the first continuation bar.
    pub continuation: usize,
}

/// Structure of `pieces`, with duplication counted against the `training` bars.
pub fn structure(pieces: &[RollPiece], training: &HashSet<String>) -> Structure {
    let mut s = Structure { pieces: pieces.len(), ..Structure::default() };
    let (mut scored, mut identical, mut new_bars, mut dup) = (0usize, 0usize, 0usize, 0usize);
    let mut curve: Vec<(f64, usize)> = Vec::new();
    let mut counted = 0usize;
    for p in pieces {
        let st = stabilities(&p.bars);
        for c in p.bars.iter().skip(p.continuation) {
            new_bars += 1;
            dup += usize::from(training.contains(c));
        }
        if st.is_empty() {
            continue;
        }
        counted += 1;
        let values: Vec<f64> = st.iter().map(|&x| x as f64).collect();
        s.stability += values.iter().sum::<f64>() / values.len() as f64;
        if let Some(k) = two_means(&values) {
            s.centre_distance += k.distance;
            s.spread += k.spread;
        }
        scored += st.len();
        identical += st.iter().filter(|&&x| x == 0).count();
        for (i, &x) in values.iter().enumerate() {
            if curve.len() <= i {
                curve.push((0.0, 0));
            }
            curve[i].0 += x;
            curve[i].1 += 1;
        }
    }
    if counted > 0 {
        s.stability /= counted as f64;
        s.centre_distance /= counted as f64;
        s.spread /= counted as f64;
    }
    s.identical = ratio(identical, scored);
    s.duplicated = ratio(dup, new_bars);
    s.unseen = if new_bars == 0 { 0.0 } else { 1.0 - s.duplicated };
    s.curve = curve.into_iter().map(|(sum, n)| sum / n as f64).collect();
    s
}

pub(crate) fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}
