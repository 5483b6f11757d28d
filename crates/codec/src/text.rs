//! What the three text formats share: the [`Format`] switch, the report of a lenient decode,
//! and a cursor that knows its line and column.

use crate::error::{Error, Result};
use crate::groove::{Context, Groove, Limits};
use crate::{beat, drumroll, exact};

/// A text format and its settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// The beat format, made for language models (see [`beat`]).
    Beat(beat::BeatOptions),
    /// The drumroll of Zhang & Callison-Burch 2023 (see [`drumroll`]).
    Drumroll,
    /// The lossless format (see [`exact`]).
    Exact,
}

impl Default for Format {
    fn default() -> Format {
        Format::Beat(beat::BeatOptions::default())
    }
}

/// The result of a lenient decode: every well-formed bar, and why the others were dropped.
#[derive(Debug)]
#[non_exhaustive]
pub struct Lenient {
    /// The bars that parsed, in order.
    pub groove: Groove,
    /// One [`Error::Syntax`] per dropped bar, naming its line and column.
    pub dropped: Vec<Error>,
}

impl Format {
    /// Encodes a groove, quantising it first as the format requires.
    pub fn encode(&self, groove: &Groove) -> Result<String> {
        match self {
            Format::Beat(o) => beat::encode(groove, o),
            Format::Drumroll => drumroll::encode(groove),
            Format::Exact => exact::encode(groove),
        }
    }

    /// Decodes text strictly: the first deviation from the grammar is an error.
    pub fn decode(&self, text: &str, context: &Context) -> Result<Groove> {
        match self {
            Format::Beat(o) => beat::decode(text, o, context),
            Format::Drumroll => drumroll::decode(text, context),
            Format::Exact => exact::decode(text, context),
        }
    }

    /// Decodes text leniently: keeps every bar that parses and reports the others.
    /// Fails only when the options themselves are unusable.
    pub fn decode_lenient(&self, text: &str, context: &Context) -> Result<Lenient> {
        match self {
            Format::Beat(o) => beat::decode_lenient(text, o, context),
            Format::Drumroll => drumroll::decode_lenient(text, context),
            Format::Exact => exact::decode_lenient(text, context),
        }
    }

    /// What `decode(encode(groove))` gives: the groove as this format keeps it.
    pub fn quantise(&self, groove: &Groove) -> Result<Groove> {
        match self {
            Format::Beat(o) => groove.quantised(&o.quantise()),
            Format::Drumroll => drumroll::quantise(groove),
            Format::Exact => Ok(groove.clone()),
        }
    }

    /// A short name: `beat`, `drumroll` or `exact`.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Beat(_) => "beat",
            Format::Drumroll => "drumroll",
            Format::Exact => "exact",
        }
    }
}

/// Whether a decode stops at the first error or drops the bar and goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Strict,
    Lenient,
}

/// Lines of a text with their numbers; a final newline does not start a line.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let empty = text.is_empty();
    body.split('\n').enumerate().filter(move |_| !empty).map(|(i, l)| (i + 1, l))
}

/// The column (in characters, from 1) of byte `at` of `line`.
pub(crate) fn column(line: &str, at: usize) -> usize {
    line.get(..at).map_or(at, |s| s.chars().count()) + 1
}

/// Checks the bar limit before a bar is added.
pub(crate) fn check_bars(groove: &Groove, limits: &Limits) -> Result<()> {
    if groove.bars.len() >= limits.max_bars {
        return Err(Error::Limit { what: "bars", limit: limits.max_bars as u64 });
    }
    Ok(())
}

/// Parses `key=value` words after a header's name.
pub(crate) fn header_fields<'a>(
    line_no: usize,
    line: &'a str,
    name: &str,
) -> Result<impl Iterator<Item = Result<(&'a str, &'a str, usize)>> + 'a> {
    let rest =
        line.strip_prefix('#').map(str::trim_start).and_then(|r| r.strip_prefix(name)).ok_or_else(
            || Error::syntax(line_no, 1, format!("expected a header starting with `#{name}`")),
        )?;
    let base = line.len() - rest.len();
    Ok(rest.split(' ').filter(|w| !w.is_empty()).map(move |w| {
        let at = base + (w.as_ptr() as usize - rest.as_ptr() as usize);
        w.split_once('=').map(|(k, v)| (k, v, column(line, at))).ok_or_else(|| {
            Error::syntax(line_no, column(line, at), format!("expected key=value, found {w:?}"))
        })
    }))
}
