//! The scores of every system, and their tables, JSON and pictures.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::accuracy::Validity;
use crate::dist::{Comparison, Distributions};
use crate::structure::Structure;

/// One system's scores on every piece.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Scores {
    /// The system (`human`, `repeat`, `random`, a backend's name, an import's name).
    pub name: String,
    /// Pieces scored.
    pub pieces: usize,
    /// Bars asked for, over all pieces.
    pub bars_asked: usize,
    /// Bars produced.
    pub bars_produced: usize,
    /// Pieces it gave no output for at all (an import without the piece's file).
    pub missing: usize,
    /// How its raw outputs decoded (`None` for systems that write no text).
    pub validity: Option<Validity>,
    /// Structure, as Zhang & Callison-Burch 2023 define it, over the pieces whose
    /// continuation has every bar asked for (`structure.pieces` of them).
    pub structure: Structure,
    /// Feature histograms of its continuations.
    pub distributions: Distributions,
    /// Those histograms against the human ones.
    pub versus_human: Comparison,
    /// Onset F1 against the true continuations, every voice together.
    pub onset_f1: f64,
    /// Onset F1 per voice.
    pub onset_f1_per_voice: BTreeMap<String, f64>,
    /// Velocity error of matched onsets.
    pub velocity_mae: f64,
    /// The negative log-likelihood (nats) per bar of the drummers' true continuations, for
    /// systems that can score text.
    pub nll_per_bar: Option<f64>,
}

/// What an evaluation found: the scores of every system, the human drummers first, and the
/// pictures of every piece.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Evaluation {
    /// The split the pieces come from.
    pub split: fine_drums_dataset::Split,
    /// Pieces (windows) scored.
    pub pieces: usize,
    /// Prompt bars of a window.
    pub prompt_bars: usize,
    /// Bars generated after the prompt.
    pub bars: usize,
    /// Every system's scores, in the order they were run.
    pub scores: Vec<Scores>,
    /// A piano roll per piece (file name, SVG text), every system in one picture.
    pub pictures: Vec<(String, String)>,
}

impl Evaluation {
    /// The scores as pretty JSON (`results.json`).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.scores).unwrap_or_default()
    }

    /// The stability curve of every system, as SVG text (`stability.svg`).
    pub fn stability_svg(&self) -> String {
        let curves: Vec<(&str, Vec<f64>)> =
            self.scores.iter().map(|s| (s.name.as_str(), s.structure.curve.clone())).collect();
        crate::svg::stability_curves(&curves)
    }

    /// The three tables (structure and accuracy; distributions; validity) as Markdown
    /// (`results.md`).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let (pieces, p, c) = (self.pieces, self.prompt_bars, self.bars);
        let split = self.split.as_str();
        let _ = writeln!(s, "GMD {split} split: {pieces} pieces of {p} prompt bars + {c} bars.\n");
        let _ = writeln!(
            s,
            "| system | stability | 2-means distance | spread | identical to a neighbour | bars seen in training | onset F1 | velocity MAE |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
        let mut partial = Vec::new();
        for r in &self.scores {
            let st = &r.structure;
            // No whole continuation: no structure to show, never a perfect score.
            let structure = if st.pieces == 0 {
                "n/a | n/a | n/a | n/a | n/a".to_string()
            } else {
                format!(
                    "{:.2} | {:.2} | {:.2} | {:.1}% | {:.1}%",
                    st.stability,
                    st.centre_distance,
                    st.spread,
                    100.0 * st.identical,
                    100.0 * st.duplicated
                )
            };
            let mark = if st.pieces < r.pieces { " †" } else { "" };
            if st.pieces < r.pieces {
                partial.push(format!(
                    "{}: structure over {} of {} pieces; {} had a short or unusable continuation, {} none at all",
                    r.name,
                    st.pieces,
                    r.pieces,
                    r.pieces.saturating_sub(st.pieces + r.missing),
                    r.missing
                ));
            }
            let _ = writeln!(
                s,
                "| {}{mark} | {structure} | {:.3} | {:.1} |",
                r.name, r.onset_f1, r.velocity_mae
            );
        }
        if !partial.is_empty() {
            let _ = writeln!(s, "\n† {}.", partial.join("; "));
        }
        let _ = writeln!(
            s,
            "\nDistributions against the human continuations: overlapping area (1 = same) / KL(human ‖ system) in nats.\n"
        );
        let _ = writeln!(s, "| system | voices | onsets per bar | velocity | microtiming |");
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        for r in &self.scores {
            let v = &r.versus_human;
            let f = |x: (f64, f64)| format!("{:.3} / {:.3}", x.0, x.1);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                r.name,
                f(v.voices),
                f(v.hits_per_bar),
                f(v.velocity),
                f(v.microtiming)
            );
        }
        let _ = writeln!(
            s,
            "\nValidity of raw model outputs (every sample, resamples included) and bars produced.\n"
        );
        let _ = writeln!(
            s,
            "| system | outputs | strict | lenient only | unusable | bars produced / asked |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
        for r in &self.scores {
            let (outputs, shares) = r.validity.map_or(
                ("—".to_string(), ["—".to_string(), "—".to_string(), "—".to_string()]),
                |v| (v.outputs().to_string(), v.shares().map(|x| format!("{:.1}%", 100.0 * x))),
            );
            let _ = writeln!(
                s,
                "| {} | {outputs} | {} | {} | {} | {} / {} |",
                r.name, shares[0], shares[1], shares[2], r.bars_produced, r.bars_asked
            );
        }
        if self.scores.iter().any(|r| r.nll_per_bar.is_some()) {
            let _ = writeln!(
                s,
                "\nLikelihood of the drummers' true continuations: negative log-likelihood per bar, in nats (lower is better).\n"
            );
            let _ = writeln!(s, "| system | NLL per bar |");
            let _ = writeln!(s, "|---|---:|");
            for r in &self.scores {
                if let Some(n) = r.nll_per_bar {
                    let _ = writeln!(s, "| {} | {n:.2} |", r.name);
                }
            }
        }
        s
    }
}
