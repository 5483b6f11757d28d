//! From entries and their bytes to examples per split, with every skipped file counted.
//! No I/O: the caller reads the files (see [`crate::fs`]) and hands over bytes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::controls::Piece;
use crate::error::Error;
use crate::index::{BeatType, Entry, Split};
use crate::pairs::{CountTokens, Pair, Windows};
use crate::template::Template;

/// Which files are used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Filter {
    /// Beat types kept; empty keeps all. Files without a beat type are always kept.
    /// Default: grooves only (fills are one or two bars, too short to continue).
    pub beat_types: Vec<BeatType>,
    /// Meters kept, as GMD writes them (`4-4`); empty keeps all. Default: all.
    pub meters: Vec<String>,
    /// Styles kept: a genre (`funk`) or a full style (`funk/groove1`); empty keeps all.
    /// Default: all.
    pub styles: Vec<String>,
    /// The fewest bars a file needs after leading silence is stripped; the windows'
    /// own minimum applies too. Default: 0.
    pub min_bars: usize,
}

impl Default for Filter {
    fn default() -> Filter {
        Filter {
            beat_types: vec![BeatType::Beat],
            meters: Vec::new(),
            styles: Vec::new(),
            min_bars: 0,
        }
    }
}

impl Filter {
    /// Why an entry is left out before its file is read, if it is.
    pub fn reject(&self, entry: &Entry) -> Option<Skip> {
        if let Some(b) = entry.beat_type
            && !self.beat_types.is_empty()
            && !self.beat_types.contains(&b)
        {
            return Some(Skip::BeatType);
        }
        if !self.meters.is_empty() && !entry.meter.as_ref().is_some_and(|m| self.meters.contains(m))
        {
            return Some(Skip::Meter);
        }
        if !self.styles.is_empty()
            && !self
                .styles
                .iter()
                .any(|s| entry.style.as_deref() == Some(s) || entry.genre() == Some(s))
        {
            return Some(Skip::Style);
        }
        None
    }
}

/// Why a file gave no example.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Skip {
    /// Its beat type is filtered out.
    BeatType,
    /// Its meter is filtered out.
    Meter,
    /// Its style is filtered out.
    Style,
    /// The file could not be read from disk.
    Missing,
    /// The bytes are not a usable drum MIDI file.
    Unreadable,
    /// Too few bars for one window after leading silence is stripped.
    TooShort,
    /// Every window is over the token budget.
    OverBudget,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Skip::BeatType => "beat type filtered out",
            Skip::Meter => "meter filtered out",
            Skip::Style => "style filtered out",
            Skip::Missing => "file missing or unreadable",
            Skip::Unreadable => "not a usable drum MIDI file",
            Skip::TooShort => "too short",
            Skip::OverBudget => "over the token budget",
        })
    }
}

/// A file that was used, and what it gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Source {
    /// The file, relative to the dataset folder.
    pub path: String,
    /// Its split.
    pub split: Split,
    /// Bars after leading silence was stripped.
    pub bars: usize,
    /// Examples cut from it.
    pub examples: usize,
}

/// A file that was left out, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Skipped {
    /// The file, relative to the dataset folder.
    pub path: String,
    /// Its split.
    pub split: Split,
    /// Why it was left out.
    pub reason: Skip,
    /// The error behind it, for missing and unreadable files.
    pub detail: Option<String>,
}

/// An example with the file it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Example {
    /// Index into [`Prepared::sources`].
    pub source: usize,
    /// The split.
    pub split: Split,
    /// The pair.
    pub pair: Pair,
}

/// Everything prepared so far.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Prepared {
    /// Files used, in the order they were added.
    pub sources: Vec<Source>,
    /// Files left out.
    pub skipped: Vec<Skipped>,
    /// Examples of every split, in order.
    pub examples: Vec<Example>,
    /// Windows dropped for the token budget, inside files that kept others.
    pub windows_over_budget: usize,
    /// Notes of the files read that the voice map does not list, by pitch: left out of
    /// every example.
    pub unmapped: BTreeMap<u8, u64>,
    /// Every file read whole, with its split: what the drum GPT trains on. Fill recordings
    /// and files too short for a window are here too; files the meter and style filters
    /// leave out are not.
    pub pieces: Vec<(Split, Piece)>,
}

/// Figures for one split.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SplitStats {
    /// The split.
    pub split: Option<Split>,
    /// Files used.
    pub files: usize,
    /// Files skipped, by reason.
    pub skipped: BTreeMap<Skip, usize>,
    /// Examples.
    pub examples: usize,
    /// Bars in examples (prompt plus completion).
    pub bars: usize,
    /// cl100k_base tokens in examples (prompt plus completion): what one epoch trains on.
    pub tokens: usize,
    /// The most tokens in one example.
    pub max_example_tokens: usize,
    /// Whole files (pieces) read: what the drum GPT trains on.
    #[serde(default)]
    pub pieces: usize,
    /// Bars in the pieces.
    #[serde(default)]
    pub piece_bars: usize,
}

/// Turns entries and bytes into examples.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Preparer {
    /// How grooves become text.
    pub template: Template,
    /// How grooves are cut.
    pub windows: Windows,
    /// Which files are used.
    pub filter: Filter,
}

impl Preparer {
    /// Checks the settings once, before any file.
    pub fn check(&self) -> crate::Result<()> {
        self.template.check()?;
        self.windows.check()
    }

    /// Adds one file from its bytes, and says what became of it.
    ///
    /// A file the filter leaves out, one too short for a window, or one whose windows are all
    /// over the token budget is recorded as skipped and is `Ok` ([`Added::Skipped`]). A file
    /// that does not read as MIDI, or that no window can be cut from, is recorded as
    /// [`Skip::Unreadable`] too, and its error is returned, so that a strict caller can
    /// stop and a lenient one go on.
    pub fn add(
        &self,
        prepared: &mut Prepared,
        entry: &Entry,
        bytes: &[u8],
        tokens: &dyn CountTokens,
    ) -> Result<Added, Error> {
        // The drum GPT learns from every bar: a file the windows leave out for its beat type
        // (a fill recording) is still read for its piece.
        let reject = self.filter.reject(entry);
        if let Some(reason) = reject.filter(|&r| r != Skip::BeatType) {
            prepared.skip(entry, reason, None);
            return Ok(Added::Skipped(reason));
        }
        let groove = match self.template.read_counting(bytes) {
            Ok((g, unmapped)) => {
                for (p, &n) in unmapped.iter().enumerate().filter(|(_, n)| **n > 0) {
                    *prepared.unmapped.entry(p as u8).or_default() += u64::from(n);
                }
                g
            }
            Err(e) => {
                let e = match e {
                    Error::Codec(source) => Error::Midi { path: entry.path.clone(), source },
                    e => e,
                };
                prepared.skip(entry, Skip::Unreadable, Some(e.to_string()));
                return Err(e);
            }
        };
        if !groove.bars.is_empty() {
            let text = match self.template.codec.format.encode(&groove) {
                Ok(t) => t,
                Err(source) => {
                    let e = Error::Midi { path: entry.path.clone(), source };
                    prepared.skip(entry, Skip::Unreadable, Some(e.to_string()));
                    return Err(e);
                }
            };
            let piece = Piece::new(&entry.path, text).with(
                entry.genre().map(str::to_string),
                entry.bpm,
                entry.beat_type == Some(BeatType::Fill),
            );
            prepared.pieces.push((entry.split, piece));
        }
        if let Some(reason) = reject {
            prepared.skip(entry, reason, None);
            return Ok(Added::Skipped(reason));
        }
        let bars = groove.bars.len();
        if bars < self.windows.min_bars().max(self.filter.min_bars) {
            prepared.skip(entry, Skip::TooShort, Some(format!("{bars} bars")));
            return Ok(Added::Skipped(Skip::TooShort));
        }
        let cut = match self.windows.cut(&groove, &self.template, tokens) {
            Ok(c) => c,
            Err(e) => {
                prepared.skip(entry, Skip::Unreadable, Some(format!("{}: {e}", entry.path)));
                return Err(e);
            }
        };
        if cut.pairs.is_empty() {
            prepared.skip(entry, Skip::OverBudget, Some(format!("{} windows", cut.over_budget)));
            return Ok(Added::Skipped(Skip::OverBudget));
        }
        prepared.windows_over_budget += cut.over_budget;
        let source = prepared.sources.len();
        let examples = cut.pairs.len();
        prepared.sources.push(Source {
            path: entry.path.clone(),
            split: entry.split,
            bars,
            examples,
        });
        prepared.examples.extend(cut.pairs.into_iter().map(|pair| Example {
            source,
            split: entry.split,
            pair,
        }));
        Ok(Added::Used { examples })
    }

    /// Records a file whose bytes could not be read (`error` says why) as
    /// [`Skip::Missing`], and returns the error, unless the filter leaves the file out
    /// anyway ([`Added::Skipped`]).
    pub fn add_missing(
        &self,
        prepared: &mut Prepared,
        entry: &Entry,
        error: Error,
    ) -> Result<Added, Error> {
        if let Some(reason) = self.filter.reject(entry) {
            prepared.skip(entry, reason, None);
            return Ok(Added::Skipped(reason));
        }
        prepared.skip(entry, Skip::Missing, Some(error.to_string()));
        Err(error)
    }
}

/// What [`Preparer::add`] did with a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Added {
    /// Windows were cut from it.
    Used {
        /// Examples it gave.
        examples: usize,
    },
    /// It was left out, for this reason (recorded in [`Prepared::skipped`]).
    Skipped(Skip),
}

impl Prepared {
    fn skip(&mut self, entry: &Entry, reason: Skip, detail: Option<String>) {
        self.skipped.push(Skipped { path: entry.path.clone(), split: entry.split, reason, detail });
    }

    /// The examples of one split.
    pub fn split(&self, split: Split) -> impl Iterator<Item = &Pair> {
        self.examples.iter().filter(move |e| e.split == split).map(|e| &e.pair)
    }

    /// Figures per split, and a last row (with `split: None`) for all of them.
    pub fn stats(&self) -> Vec<SplitStats> {
        let mut rows: Vec<SplitStats> = Split::ALL
            .iter()
            .map(|&s| SplitStats { split: Some(s), ..SplitStats::default() })
            .collect();
        let mut all = SplitStats::default();
        let row = |s: Split| s as usize;
        for s in &self.sources {
            rows[row(s.split)].files += 1;
            all.files += 1;
        }
        for s in &self.skipped {
            *rows[row(s.split)].skipped.entry(s.reason).or_default() += 1;
            *all.skipped.entry(s.reason).or_default() += 1;
        }
        for e in &self.examples {
            for r in [&mut rows[row(e.split)], &mut all] {
                r.examples += 1;
                r.bars += e.pair.prompt_bars + e.pair.completion_bars;
                r.tokens += e.pair.tokens;
                r.max_example_tokens = r.max_example_tokens.max(e.pair.tokens);
            }
        }
        for (split, piece) in &self.pieces {
            let bars = piece.bars().len();
            for r in [&mut rows[row(*split)], &mut all] {
                r.pieces += 1;
                r.piece_bars += bars;
            }
        }
        rows.push(all);
        rows
    }

    /// The pieces of one split.
    pub fn pieces(&self, split: Split) -> impl Iterator<Item = &Piece> {
        self.pieces.iter().filter(move |(s, _)| *s == split).map(|(_, p)| p)
    }
}
