//! The scores of every system, and their tables, JSON and pictures.

use fine_drums_codec::Groove;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::accuracy::Validity;
use crate::dist::{Comparison, Distributions, PROFILE_GROUPS};
use crate::phrase::Phrases;
use crate::structure::Structure;
use crate::table::{Table, escape, href, page};

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
    /// How its continuations move from their prompts and change at phrase ends, over the
    /// pieces whose continuation has every bar asked for.
    pub phrases: Phrases,
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
    /// Every piece as every system played it, in the order of `pictures`.
    pub played: Vec<Played>,
}

/// One piece as every system played it, to hear or draw.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Played {
    /// The piece: its file and the window's first bar.
    pub id: String,
    /// Its piano roll's file name in `pictures/`.
    pub picture: String,
    /// Each system (in the order of the scores) and its whole piece: the prompt, then its
    /// continuation.
    pub systems: Vec<(String, Groove)>,
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

    /// The line that says what was scored.
    pub(crate) fn title(&self) -> String {
        let (pieces, p, c) = (self.pieces, self.prompt_bars, self.bars);
        format!("GMD {} split: {pieces} pieces of {p} prompt bars + {c} bars.", self.split.as_str())
    }

    /// The tables: structure and accuracy; distributions; phrases; validity; likelihood
    /// (when a system scored it).
    pub(crate) fn tables(&self) -> Vec<Table> {
        let mut main = Table::new(
            "",
            &[
                "system",
                "stability",
                "2-means distance",
                "spread",
                "identical to a neighbour",
                "bars seen in training",
                "onset F1",
                "velocity MAE",
            ],
        );
        let mut partial = Vec::new();
        for r in &self.scores {
            let st = &r.structure;
            // No whole continuation: no structure to show, never a perfect score.
            let structure = if st.pieces == 0 {
                vec!["n/a".to_string(); 5]
            } else {
                vec![
                    format!("{:.2}", st.stability),
                    format!("{:.2}", st.centre_distance),
                    format!("{:.2}", st.spread),
                    format!("{:.1}%", 100.0 * st.identical),
                    format!("{:.1}%", 100.0 * st.duplicated),
                ]
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
            let mut row = vec![format!("{}{mark}", r.name)];
            row.extend(structure);
            row.extend([format!("{:.3}", r.onset_f1), format!("{:.1}", r.velocity_mae)]);
            main.rows.push(row);
        }
        if !partial.is_empty() {
            main.after = format!("† {}.", partial.join("; "));
        }
        let mut dist = Table::new(
            "Distributions against the human continuations: overlapping area (1 = same) / KL(human ‖ system) in nats.",
            &[
                "system",
                "voices",
                "onsets per bar",
                "velocity",
                "microtiming",
                "kick by 16th",
                "snare by 16th",
                "hi-hat by 16th",
                "other voices by 16th",
            ],
        );
        for r in &self.scores {
            let v = &r.versus_human;
            let f = |x: (f64, f64)| format!("{:.3} / {:.3}", x.0, x.1);
            let mut row = vec![
                r.name.clone(),
                f(v.voices),
                f(v.hits_per_bar),
                f(v.velocity),
                f(v.microtiming),
            ];
            row.extend(
                (0..PROFILE_GROUPS.len())
                    .map(|i| v.onset_profile.get(i).map_or_else(|| "—".to_string(), |&x| f(x))),
            );
            dist.rows.push(row);
        }
        dist.after = "The onset profile (the last four columns): where in a 4/4 bar each voice \
                      group's onsets fall, as shares of its onsets at each of the 16 steps."
            .to_string();
        let mut validity = Table::new(
            "Validity of raw model outputs (every sample, resamples included) and bars produced.",
            &["system", "outputs", "strict", "lenient only", "unusable", "bars produced / asked"],
        );
        for r in &self.scores {
            let (outputs, shares) = r.validity.map_or(
                ("—".to_string(), ["—".to_string(), "—".to_string(), "—".to_string()]),
                |v| (v.outputs().to_string(), v.shares().map(|x| format!("{:.1}%", 100.0 * x))),
            );
            let [strict, lenient, unusable] = shares;
            let bars = format!("{} / {}", r.bars_produced, r.bars_asked);
            validity.rows.push(vec![r.name.clone(), outputs, strict, lenient, unusable, bars]);
        }
        let mut phrase = Table::new(
            "Phrases: onsets per bar (by 16th and voice) of the continuation less the prompt's; how far a phrase's last bar (4, 8, 12, 16, numbered from the prompt's first) departs from the bar before, against the other bars (hits by 16th and voice in one bar and not the other); tom hits per bar; phrase starts (5, 9, 13) with a crash on their first 16th.",
            &[
                "system",
                "density drift",
                "change at bars 4, 8, 12, 16",
                "change elsewhere",
                "extra change",
                "tom hits per bar",
                "crash on bars 5, 9, 13",
            ],
        );
        for r in &self.scores {
            let ph = &r.phrases;
            phrase.rows.push(vec![
                r.name.clone(),
                format!("{:+.2}", ph.density_drift),
                format!("{:.2}", ph.phrase_end_change),
                format!("{:.2}", ph.other_change),
                format!("{:+.2}", ph.extra_change()),
                format!("{:.2}", ph.toms_per_bar),
                format!("{:.1}%", 100.0 * ph.crash_on_phrase_start),
            ]);
        }
        let mut tables = vec![main, dist, phrase, validity];
        if self.scores.iter().any(|r| r.nll_per_bar.is_some()) {
            let mut nll = Table::new(
                "Likelihood of the drummers' true continuations: negative log-likelihood per bar, in nats (lower is better).",
                &["system", "NLL per bar"],
            );
            for r in &self.scores {
                if let Some(n) = r.nll_per_bar {
                    nll.rows.push(vec![r.name.clone(), format!("{n:.2}")]);
                }
            }
            tables.push(nll);
        }
        tables
    }

    /// The tables as Markdown (`results.md`).
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "{}

",
            self.title()
        );
        for table in self.tables() {
            table.markdown(&mut s);
        }
        s
    }

    /// The report as one page of HTML (`report.html`), to open offline beside the files that
    /// [`fs`](crate::fs) writes: the tables, the stability curves, and each piece's piano
    /// roll with a player per system. `audio(piece, system)` gives the path (relative to the
    /// page) of a system's recording of a piece, or `None` for no player.
    pub fn html(&self, audio: &dyn Fn(&str, &str) -> Option<String>) -> String {
        let mut b = format!("<p>{}</p>\n", escape(&self.title()));
        for table in self.tables() {
            table.html(&mut b);
        }
        b.push_str("<h2>Stability bar by bar</h2>\n");
        b.push_str("<img src=\"stability.svg\" alt=\"Mean stability of each bar, per system\">\n");
        b.push_str("<h2>Pieces</h2>\n<p>Each piano roll shows the prompt bars on grey, then every system's continuation; each player plays the prompt, then that continuation.</p>\n<p>");
        let links: Vec<String> = (0..self.played.len())
            .map(|i| format!("<a href=\"#piece-{i}\">{}</a>", i + 1))
            .collect();
        b.push_str(&links.join(" "));
        b.push_str("</p>\n");
        for (i, piece) in self.played.iter().enumerate() {
            let id = escape(&piece.id);
            let lazy = if i < 4 { "" } else { " loading=\"lazy\"" };
            let _ = writeln!(
                b,
                "<section id=\"piece-{i}\">\n<h3>{}. {id}</h3>\n<img src=\"pictures/{}\" alt=\"Piano roll of {id}\"{lazy}>",
                i + 1,
                href(&piece.picture)
            );
            let players: Vec<String> = piece
                .systems
                .iter()
                .filter_map(|(name, _)| {
                    let src = audio(&piece.id, name)?;
                    Some(format!(
                        "<tr><th scope=\"row\">{}</th><td><audio controls preload=\"none\" src=\"{}\"></audio></td></tr>",
                        escape(name),
                        href(&src)
                    ))
                })
                .collect();
            if players.is_empty() {
                b.push_str("<p class=\"note\">No recordings of this piece.</p>\n");
            } else {
                let _ = writeln!(
                    b,
                    "<table class=\"players\">\n<tbody>\n{}\n</tbody>\n</table>",
                    players.join("\n")
                );
            }
            b.push_str("</section>\n");
        }
        page(&format!("Drum continuations on the GMD {} split", self.split.as_str()), &b)
    }
}
