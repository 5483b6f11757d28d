//! The record of how training files were made, so that generation builds prompts the
//! same way.

use std::collections::BTreeMap;

use fine_drums_codec::Groove;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::export::Prices;
use crate::index::Split;
use crate::pairs::Windows;
use crate::prepare::{Filter, Prepared, Preparer, Skipped, Source, SplitStats};
use crate::split::HashSplit;
use crate::template::Template;

/// The manifest format this crate writes and reads.
pub const MANIFEST_VERSION: u32 = 2;

/// How files were assigned to splits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
#[non_exhaustive]
pub enum SplitRule {
    /// The official split of an index file (GMD's `info.csv`).
    Index {
        /// The index file, relative to the dataset folder.
        file: String,
    },
    /// A hash of each file's group (see [`HashSplit`]).
    Hash(HashSplit),
}

/// The files written for one split.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SplitFiles {
    /// Legacy prompt/completion JSONL.
    pub legacy: String,
    /// Chat JSONL.
    pub chat: String,
    /// Plain text.
    pub text: String,
    /// Whole files with their style, tempo and fill flag (see [`crate::controls::Piece`]):
    /// what the drum GPT trains on. Empty in manifests written before there were pieces.
    #[serde(default)]
    pub pieces: String,
}

impl SplitFiles {
    /// The conventional names: `train.jsonl`, `train.chat.jsonl`, `train.txt`.
    pub fn named(split: Split) -> SplitFiles {
        SplitFiles {
            legacy: format!("{split}.jsonl"),
            chat: format!("{split}.chat.jsonl"),
            text: format!("{split}.txt"),
            pieces: format!("{split}.pieces.jsonl"),
        }
    }
}

/// Everything needed to rebuild a prompt exactly as the training files did, and the
/// record of what went into them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// [`MANIFEST_VERSION`] when written.
    pub version: u32,
    /// The crate and version that wrote the files (`fine-drums-dataset 0.1.0`).
    pub written_by: String,
    /// How grooves became text.
    pub template: Template,
    /// How windows were cut.
    pub windows: Windows,
    /// Which files were used.
    pub filter: Filter,
    /// How files were assigned to splits.
    pub split_rule: SplitRule,
    /// The files written, per split.
    pub files: BTreeMap<Split, SplitFiles>,
    /// Figures per split, then all splits together.
    pub stats: Vec<SplitStats>,
    /// The training prices the cost estimate used.
    pub prices: Prices,
    /// Files used.
    pub sources: Vec<Source>,
    /// Files left out, and why.
    pub skipped: Vec<Skipped>,
    /// Rows of the dataset's index that were left out (malformed, or listing a file again),
    /// each with its reason: `info.csv, row 12: …`.
    #[serde(default)]
    pub skipped_rows: Vec<String>,
}

/// A prompt built from a MIDI file, with the bars behind it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Prompt {
    /// The text sent to the model, ending with the separator.
    pub text: String,
    /// The prompt bars as the format keeps them.
    pub bars: Groove,
    /// The first prompt bar's index in the source, from 0 (for [`Manifest::prompt`], the
    /// leading silent bars before it).
    pub first_bar: usize,
}

impl Manifest {
    /// The manifest of prepared examples.
    pub fn new(
        template: Template,
        windows: Windows,
        filter: Filter,
        split_rule: SplitRule,
        prices: Prices,
        prepared: &Prepared,
    ) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            written_by: concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION")).to_string(),
            template,
            windows,
            filter,
            split_rule,
            files: Split::ALL.into_iter().map(|s| (s, SplitFiles::named(s))).collect(),
            stats: prepared.stats(),
            prices,
            sources: prepared.sources.clone(),
            skipped: prepared.skipped.clone(),
            skipped_rows: Vec::new(),
        }
    }

    /// The manifest of `preparer`'s settings with no data behind it: what generation needs
    /// to build prompts when no training files were prepared (a model counted from the
    /// prompt alone, or one trained with these default settings).
    pub fn of_settings(preparer: &Preparer) -> Manifest {
        Manifest::new(
            preparer.template.clone(),
            preparer.windows,
            preparer.filter.clone(),
            SplitRule::Hash(HashSplit::default()),
            Prices::default(),
            &Prepared::default(),
        )
    }

    /// Reads a manifest from its JSON text. A manifest of another version is an error.
    pub fn from_json(text: &str) -> Result<Manifest> {
        let err = |line, message| Error::Json { what: "manifest".into(), line, message };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| err(e.line(), e.to_string()))?;
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(MANIFEST_VERSION)) {
            return Err(err(
                1,
                format!(
                    "manifest version {} is not supported (this build reads version {MANIFEST_VERSION}); prepare the data again",
                    version.map_or("(none)".to_string(), |v| v.to_string())
                ),
            ));
        }
        let m: Manifest = serde_json::from_value(value).map_err(|e| err(1, e.to_string()))?;
        m.template.check()?;
        m.windows.check()?;
        Ok(m)
    }

    /// The manifest as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The prompt for a new MIDI file: its first [`prompt_bars`](Windows::prompt_bars)
    /// bars (after leading silence) encoded exactly as the training prompts were.
    pub fn prompt(&self, midi: &[u8]) -> Result<Prompt> {
        let all = self.template.read_all(midi)?;
        let first_bar = self.template.first_bar(&all);
        let end = first_bar + self.windows.prompt_bars;
        if all.bars.len() < end {
            return Err(Error::invalid(
                "prompt",
                format!(
                    "the file has {} bars after {first_bar} silent ones; the prompt needs {}",
                    all.bars.len() - first_bar,
                    self.windows.prompt_bars
                ),
            ));
        }
        let bars = all.slice(first_bar..end);
        Ok(Prompt { text: self.template.prompt_text(&bars)?, bars, first_bar })
    }

    /// The prompt to continue a MIDI file from bar `end` (from 0; `None`: after its last
    /// bar): the `bars` bars before it, encoded as the training prompts were.
    pub fn prompt_before(&self, midi: &[u8], end: Option<usize>, bars: usize) -> Result<Prompt> {
        let all = self.template.read_all(midi)?;
        let end = end.unwrap_or(all.bars.len());
        if bars == 0 {
            return Err(Error::invalid("prompt", "a prompt needs at least one bar"));
        }
        if end > all.bars.len() {
            return Err(Error::invalid(
                "prompt",
                format!("the file has {} bars; there is no bar {}", all.bars.len(), end + 1),
            ));
        }
        if end < bars {
            return Err(Error::invalid(
                "prompt",
                format!(
                    "a prompt of {bars} bars cannot end before bar {}: only {end} {} before it (continue from a later bar, or ask for a prompt of at most {end} bar{})",
                    end + 1,
                    if end == 1 { "bar comes" } else { "bars come" },
                    if end == 1 { "" } else { "s" },
                ),
            ));
        }
        let prompt = all.slice(end - bars..end);
        Ok(Prompt {
            text: self.template.prompt_text(&prompt)?,
            bars: prompt,
            first_bar: end - bars,
        })
    }
}
