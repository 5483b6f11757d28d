//! The Groove MIDI Dataset's `info.csv`: what each file is and which split it belongs to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One of the three splits of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Examples a model learns from.
    Train,
    /// Examples held out to tune settings.
    Validation,
    /// Examples held out for the final figures.
    Test,
}

impl Split {
    /// The three splits in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// `train`, `validation` or `test`, as `info.csv` writes them.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = Error;

    fn from_str(s: &str) -> Result<Split> {
        Split::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
            Error::invalid("split", format!("{s:?} (expected train, validation or test)"))
        })
    }
}

/// Whether a recording is a groove or a fill, as GMD labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BeatType {
    /// A groove, usually several bars long.
    Beat,
    /// A short fill.
    Fill,
}

impl FromStr for BeatType {
    type Err = Error;

    fn from_str(s: &str) -> Result<BeatType> {
        match s {
            "beat" => Ok(BeatType::Beat),
            "fill" => Ok(BeatType::Fill),
            _ => Err(Error::invalid("beat type", format!("{s:?} (expected beat or fill)"))),
        }
    }
}

/// One file of the dataset and what is known about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Entry {
    /// The MIDI file, relative to the dataset folder, with `/` separators.
    pub path: String,
    /// Its split.
    pub split: Split,
    /// The drummer (`drummer1`), when known.
    pub drummer: Option<String>,
    /// The session (`drummer1/eval_session`), when known.
    pub session: Option<String>,
    /// The style (`funk/groove1`), when known.
    pub style: Option<String>,
    /// The tempo the drummer played to, when known.
    pub bpm: Option<f64>,
    /// Groove or fill, when known.
    pub beat_type: Option<BeatType>,
    /// The meter as GMD writes it (`4-4`), when known.
    pub meter: Option<String>,
    /// The duration in seconds, when known.
    pub duration: Option<f64>,
}

impl Entry {
    /// An entry with only a path and a split, for a folder without an index.
    pub fn new(path: impl Into<String>, split: Split) -> Entry {
        Entry {
            path: path.into(),
            split,
            drummer: None,
            session: None,
            style: None,
            bpm: None,
            beat_type: None,
            meter: None,
            duration: None,
        }
    }

    /// The top-level style (`funk` of `funk/groove1`).
    pub fn genre(&self) -> Option<&str> {
        self.style.as_deref().map(|s| s.split('/').next().unwrap_or(s))
    }
}

/// What reading an index gave: the entries that parsed and an error per row that did not.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Index {
    /// Entries in file order.
    pub entries: Vec<Entry>,
    /// One [`Error::Index`] per malformed row.
    pub errors: Vec<Error>,
}

impl Index {
    /// Parses the text of GMD's `info.csv` (`file` names it in errors).
    ///
    /// The columns `midi_filename` and `split` are required; `drummer`, `session`, `style`,
    /// `bpm`, `beat_type`, `time_signature` and `duration` are read when present. A missing
    /// required column is an error for the whole file; a bad row is recorded in
    /// [`Index::errors`] and skipped, so one typo does not lose the rest. A file listed on
    /// two rows is used once, with its first row's split (the other row is an error), so
    /// that it is never trained on twice nor found in two splits. A file with no rows at all
    /// is an error.
    ///
    /// ```
    /// use fine_drums_dataset::{Index, Split};
    ///
    /// let csv = "midi_filename,split,beat_type\na/1.mid,train,beat\na/2.mid,tset,fill\n";
    /// let index = Index::parse("info.csv", csv.as_bytes())?;
    /// assert_eq!(index.entries.len(), 1);
    /// assert_eq!(index.entries[0].split, Split::Train);
    /// assert!(index.errors[0].to_string().starts_with("info.csv, row 3: "));
    /// # Ok::<(), fine_drums_dataset::Error>(())
    /// ```
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Index> {
        let at = |row: u64, message: String| Error::Index { file: file.to_string(), row, message };
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
        let headers = reader.headers().map_err(|e| at(1, e.to_string()))?.clone();
        let col = |name: &str| headers.iter().position(|h| h.trim() == name);
        let required = |name: &str| col(name).ok_or_else(|| at(1, format!("no column {name:?}")));
        let (path, split) = (required("midi_filename")?, required("split")?);
        let cols = [
            col("drummer"),
            col("session"),
            col("style"),
            col("bpm"),
            col("beat_type"),
            col("time_signature"),
            col("duration"),
        ];
        let mut index = Index::default();
        // The row each file was first listed on, and its split there.
        let mut first: std::collections::HashMap<String, (u64, Split)> = Default::default();
        let mut rows = 0;
        for (i, record) in reader.records().enumerate() {
            let row = i as u64 + 2;
            rows += 1;
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    index.errors.push(at(row, e.to_string()));
                    continue;
                }
            };
            match entry(&record, path, split, &cols) {
                // A file listed twice is used once, in its first row's split: a second row
                // would train on it twice, or put it in two splits (leakage).
                Ok(e) => match first.get(&e.path) {
                    Some(&(r, s)) if s == e.split => index.errors.push(at(
                        row,
                        format!("{} is listed again (first on row {r}): used once", e.path),
                    )),
                    Some(&(r, s)) => index.errors.push(at(
                        row,
                        format!(
                            "{} is listed in {} here but in {} on row {r}: it stays in {}, never in two splits",
                            e.path,
                            e.split.as_str(),
                            s.as_str(),
                            s.as_str()
                        ),
                    )),
                    None => {
                        first.insert(e.path.clone(), (row, e.split));
                        index.entries.push(e);
                    }
                },
                Err(message) => index.errors.push(at(row, message)),
            }
        }
        if rows == 0 {
            return Err(at(2, "no rows: the file lists no MIDI files".into()));
        }
        Ok(index)
    }
}

fn entry(
    record: &csv::StringRecord,
    path: usize,
    split: usize,
    cols: &[Option<usize>; 7],
) -> std::result::Result<Entry, String> {
    let field =
        |c: Option<usize>| c.and_then(|c| record.get(c)).map(str::trim).filter(|s| !s.is_empty());
    let number = |c: Option<usize>, name: &str| -> std::result::Result<Option<f64>, String> {
        field(c)
            .map(|s| {
                s.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| format!("{name} {s:?} is not a non-negative number"))
            })
            .transpose()
    };
    let p = field(Some(path)).ok_or("empty midi_filename")?;
    if p.starts_with('/') || p.split(['/', '\\']).any(|c| c == "..") {
        return Err(format!("midi_filename {p:?} leaves the dataset folder"));
    }
    let s = field(Some(split)).ok_or("empty split")?;
    let [drummer, session, style, bpm, beat_type, meter, duration] = *cols;
    Ok(Entry {
        path: p.replace('\\', "/"),
        split: s.parse().map_err(|e: Error| e.to_string())?,
        drummer: field(drummer).map(String::from),
        session: field(session).map(String::from),
        style: field(style).map(String::from),
        bpm: number(bpm, "bpm")?,
        beat_type: field(beat_type)
            .map(str::parse)
            .transpose()
            .map_err(|e: Error| e.to_string())?,
        meter: field(meter).map(String::from),
        duration: number(duration, "duration")?,
    })
}
