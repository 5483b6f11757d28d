//! Accuracy against the true continuation, and validity of raw model output.

use fine_drums_codec::{Format, Groove};
use serde::{Deserialize, Serialize};

use crate::structure::ratio;

/// Matches of one system against the truth, summed over pieces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Accuracy {
    /// Per voice: true positives, false positives, false negatives.
    pub counts: Vec<[usize; 3]>,
    /// Sum of absolute velocity differences of matched onsets.
    pub velocity_error: f64,
}

impl Accuracy {
    /// An empty tally for `voices` voices.
    pub fn new(voices: usize) -> Accuracy {
        Accuracy { counts: vec![[0; 3]; voices], velocity_error: 0.0 }
    }

    /// Adds one piece: onsets of each voice match one to one, in time order, when no more
    /// than `tolerance` ticks apart. Bars the system did not produce count as silence.
    pub fn add(&mut self, truth: &Groove, generated: &Groove, tolerance: i64) {
        let (t, g) = (onsets(truth), onsets(generated));
        for (v, c) in self.counts.iter_mut().enumerate() {
            let tv: Vec<(i64, u8)> = t.iter().filter(|o| o.0 == v).map(|o| (o.1, o.2)).collect();
            let gv: Vec<(i64, u8)> = g.iter().filter(|o| o.0 == v).map(|o| (o.1, o.2)).collect();
            let (mut i, mut j, mut tp) = (0, 0, 0);
            while i < tv.len() && j < gv.len() {
                let d = gv[j].0 - tv[i].0;
                if d.abs() <= tolerance {
                    tp += 1;
                    self.velocity_error += f64::from(tv[i].1.abs_diff(gv[j].1));
                    i += 1;
                    j += 1;
                } else if d < 0 {
                    j += 1;
                } else {
                    i += 1;
                }
            }
            c[0] += tp;
            c[1] += gv.len() - tp;
            c[2] += tv.len() - tp;
        }
    }

    /// The F1 of one voice's onsets (0 when the voice never occurs in either).
    pub fn f1(&self, voice: usize) -> f64 {
        self.counts.get(voice).map_or(0.0, |&[tp, fp, fneg]| f1(tp, fp, fneg))
    }

    /// The F1 over all onsets of all voices (micro-averaged).
    pub fn f1_all(&self) -> f64 {
        let s = self.counts.iter().fold([0; 3], |a, c| [a[0] + c[0], a[1] + c[1], a[2] + c[2]]);
        f1(s[0], s[1], s[2])
    }

    /// The mean absolute velocity difference of matched onsets.
    pub fn velocity_mae(&self) -> f64 {
        let tp: usize = self.counts.iter().map(|c| c[0]).sum();
        if tp == 0 { 0.0 } else { self.velocity_error / tp as f64 }
    }
}

fn f1(tp: usize, fp: usize, fneg: usize) -> f64 {
    if tp == 0 { 0.0 } else { 2.0 * tp as f64 / (2 * tp + fp + fneg) as f64 }
}

/// Every onset of a groove: (voice, absolute tick, velocity), in time order.
fn onsets(g: &Groove) -> Vec<(usize, i64, u8)> {
    let mut out = Vec::with_capacity(g.hit_count());
    let mut start = 0i64;
    for bar in &g.bars {
        for h in &bar.hits {
            let tick = start + g.grid.step_tick(h.step, g.ticks_per_quarter) + i64::from(h.offset);
            out.push((h.voice.index(), tick, h.velocity.as_int()));
        }
        start += i64::from(bar.meter.bar_ticks(g.ticks_per_quarter).unwrap_or(0));
    }
    out.sort_unstable();
    out
}

/// How raw model outputs decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Validity {
    /// Outputs that decode strictly.
    pub strict: usize,
    /// Outputs that only decode leniently (some bars dropped).
    pub lenient: usize,
    /// Outputs with no usable bar.
    pub none: usize,
    /// Bars asked for.
    pub bars_asked: usize,
    /// Bars produced and kept.
    pub bars_produced: usize,
}

impl Validity {
    /// Scores one raw output (the bars between the separator and the stop sequence).
    pub fn add(&mut self, format: &Format, body: &str, context: &fine_drums_codec::Context) {
        if format.decode(body, context).is_ok_and(|g| !g.bars.is_empty()) {
            self.strict += 1;
        } else if format.decode_lenient(body, context).is_ok_and(|l| !l.groove.bars.is_empty()) {
            self.lenient += 1;
        } else {
            self.none += 1;
        }
    }

    /// Outputs scored.
    pub fn outputs(&self) -> usize {
        self.strict + self.lenient + self.none
    }

    /// Shares of strict, lenient-only and unusable outputs.
    pub fn shares(&self) -> [f64; 3] {
        let n = self.outputs();
        [ratio(self.strict, n), ratio(self.lenient, n), ratio(self.none, n)]
    }
}
