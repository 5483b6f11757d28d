//! Phrases: how a continuation moves away from its prompt, and whether it changes where a
//! drummer's 4-bar phrases end.

use std::collections::HashSet;

use fine_drums_codec::{Bar, Groove};
use serde::Serialize;

/// Phrase figures of a set of continuations, each after its prompt. Bars are numbered from
/// the prompt's first, from 1, so that with 2 prompt bars the continuation holds bars 3 to 16.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Phrases {
    /// Continuations counted.
    pub pieces: usize,
    /// Onsets per bar of the continuation less those of its prompt, averaged over pieces.
    /// Onsets are counted by 16th and voice, as a 16th-step text can write them: two hits
    /// of one drum in one 16th (a flam, a drag) count once, so that a model that writes
    /// 16ths does not seem to thin out where it cannot write a flam.
    pub density_drift: f64,
    /// How far a phrase's last bar (4, 8, 12, 16) departs from the bar before it: the hits,
    /// by 16th and voice, that one of the two bars has and the other has not.
    pub phrase_end_change: f64,
    /// The same for the continuation's other bars.
    pub other_change: f64,
    /// Hits of the toms per bar of the continuation.
    pub toms_per_bar: f64,
    /// The share of phrase starts (bars 5, 9, 13, ...) in the continuation with a crash on
    /// their first 16th.
    pub crash_on_phrase_start: f64,
}

impl Phrases {
    /// How much more a phrase's last bar changes than the other bars.
    pub fn extra_change(&self) -> f64 {
        self.phrase_end_change - self.other_change
    }
}

/// The hits of `bar` by 16th and voice.
fn hits(bar: &Bar) -> HashSet<(u32, usize)> {
    bar.hits.iter().map(|h| (h.step, h.voice.index())).collect()
}

fn mean(sum: f64, n: usize) -> f64 {
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// The phrase figures of `pieces` (prompt, continuation), whose voices are named `names`.
pub fn phrases<'a>(
    pieces: impl IntoIterator<Item = (&'a Groove, &'a Groove)>,
    names: &[String],
) -> Phrases {
    let tom: Vec<bool> = names.iter().map(|n| n.contains("tom")).collect();
    let crash: Vec<bool> = names.iter().map(|n| n.contains("crash")).collect();
    let is = |table: &[bool], v: usize| table.get(v).copied().unwrap_or(false);
    let mut out = Phrases::default();
    let (mut drift, mut toms, mut bars) = (0.0, 0usize, 0usize);
    let (mut ends, mut n_ends, mut others, mut n_others) = (0usize, 0usize, 0usize, 0usize);
    let (mut crashes, mut starts) = (0usize, 0usize);
    for (prompt, cont) in pieces {
        if prompt.bars.is_empty() || cont.bars.is_empty() {
            continue;
        }
        out.pieces += 1;
        // Every bar's hits, prompt then continuation, read once.
        let sets: Vec<HashSet<(u32, usize)>> =
            prompt.bars.iter().chain(&cont.bars).map(hits).collect();
        let p = prompt.bars.len();
        let per_bar = |s: &[HashSet<(u32, usize)>]| {
            s.iter().map(HashSet::len).sum::<usize>() as f64 / s.len() as f64
        };
        drift += per_bar(&sets[p..]) - per_bar(&sets[..p]);
        for (j, bar) in cont.bars.iter().enumerate() {
            let number = p + j + 1;
            // The hits, by 16th and voice, that this bar or the one before has and the other
            // has not (as `fine_drums_dataset::controls::departure` counts them in text).
            let d = sets[p + j - 1].symmetric_difference(&sets[p + j]).count();
            if number.is_multiple_of(4) {
                (ends, n_ends) = (ends + d, n_ends + 1);
            } else {
                (others, n_others) = (others + d, n_others + 1);
            }
            if number % 4 == 1 {
                starts += 1;
                crashes += usize::from(
                    bar.hits.iter().any(|h| h.step == 0 && is(&crash, h.voice.index())),
                );
            }
            toms += bar.hits.iter().filter(|h| is(&tom, h.voice.index())).count();
            bars += 1;
        }
    }
    out.density_drift = mean(drift, out.pieces);
    out.phrase_end_change = mean(ends as f64, n_ends);
    out.other_change = mean(others as f64, n_others);
    out.toms_per_bar = mean(toms as f64, bars);
    out.crash_on_phrase_start = mean(crashes as f64, starts);
    out
}
