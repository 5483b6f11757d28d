//! The seam every text format implements: [`TextFormat`], its [`Mode`]s and the report of a
//! lenient decode, with the line and header helpers the formats share.
//!
//! This module sits below the formats ([`beat`](crate::beat), [`drumroll`](crate::drumroll),
//! [`exact`](crate::exact)), which import it; the [`Format`](crate::Format) switch sits
//! above them.

use crate::error::{Error, Result};
use crate::groove::{Context, Groove, Limits};

pub(crate) mod sealed {
    /// Only this crate's formats implement [`TextFormat`](super::TextFormat): the grammar of
    /// each is documented and property-tested here, and callers match on
    /// [`Format`](crate::Format) knowing every case.
    pub trait Sealed {}
}

/// Whether a decode stops at the first error or drops the bar and goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// The first deviation from the grammar is an error.
    Strict,
    /// A bar that does not parse is dropped and reported in [`Lenient::dropped`]; lines are
    /// trimmed and blank lines skipped.
    Lenient,
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

/// A text format: its settings, and how a groove becomes text and back.
///
/// Four required methods; strict and lenient decoding are provided on top of
/// [`decode_with`](TextFormat::decode_with). Each format's options carry the
/// [`Limits`] its decoder enforces. The trait is sealed: [`BeatOptions`](crate::beat::BeatOptions),
/// [`DrumrollOptions`](crate::drumroll::DrumrollOptions), [`ExactOptions`](crate::exact::ExactOptions)
/// and the [`Format`](crate::Format) switch over them implement it.
///
/// ```
/// use fine_drums_codec::{Context, TextFormat, beat::BeatOptions, pattern::rock_groove};
///
/// let groove = rock_groove(2, 100.0)?;
/// let beat = BeatOptions::default();
/// let text = beat.encode(&groove)?;
/// // What a decode gives back is what the format keeps of the groove.
/// assert_eq!(beat.decode(&text, &groove.context())?, beat.quantise(&groove)?);
/// # Ok::<(), fine_drums_codec::Error>(())
/// ```
pub trait TextFormat: sealed::Sealed {
    /// A short name: `beat`, `drumroll` or `exact`.
    fn name(&self) -> &'static str;

    /// The bounds the decoder enforces.
    fn limits(&self) -> &Limits;

    /// Encodes a groove, quantising it first as the format requires.
    fn encode(&self, groove: &Groove) -> Result<String>;

    /// Decodes text in `mode`, read in `context` where the text names no resolution, meter
    /// or tempo. In [`Mode::Strict`] the first error is returned; in [`Mode::Lenient`] it is
    /// reported in [`Lenient::dropped`]. Either way, exceeding [`limits`](TextFormat::limits)
    /// or unusable settings fail the whole decode.
    fn decode_with(&self, text: &str, context: &Context, mode: Mode) -> Result<Lenient>;

    /// What `decode(encode(groove))` gives: the groove as this format keeps it.
    fn quantise(&self, groove: &Groove) -> Result<Groove>;

    /// Decodes text strictly: the first deviation from the grammar is an error.
    fn decode(&self, text: &str, context: &Context) -> Result<Groove> {
        self.decode_with(text, context, Mode::Strict).map(|l| l.groove)
    }

    /// Decodes text leniently: keeps every bar that parses and reports every line it drops
    /// (for the beat format, blank ones included). Fails only when the options themselves
    /// are unusable; the beat format, at a limit, keeps what came before and reports the
    /// rest as not read.
    fn decode_lenient(&self, text: &str, context: &Context) -> Result<Lenient> {
        self.decode_with(text, context, Mode::Lenient)
    }

    /// Decodes bytes leniently, as [`decode_lenient`](TextFormat::decode_lenient) decodes
    /// text: a line that is not UTF-8 is dropped (and reported, with the column of its first
    /// bad byte) like any other bad line, rather than failing the whole input.
    fn decode_lenient_bytes(&self, bytes: &[u8], context: &Context) -> Result<Lenient> {
        let mut text = String::with_capacity(bytes.len());
        let mut bad = Vec::new();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                text.push('\n');
            }
            match std::str::from_utf8(line) {
                Ok(l) => text.push_str(l),
                Err(e) => {
                    let good = std::str::from_utf8(&line[..e.valid_up_to()]).unwrap_or_default();
                    let byte = line[e.valid_up_to()];
                    let message = format!("not UTF-8 text (byte 0x{byte:02x})");
                    bad.push(Error::syntax(i + 1, good.chars().count() + 1, message));
                    // A character no format reads, so that every format drops the line as
                    // a bad one (an empty line would be an empty bar in the exact format).
                    text.push(char::REPLACEMENT_CHARACTER);
                }
            }
        }
        let mut lenient = self.decode_lenient(&text, context)?;
        if !bad.is_empty() {
            // Those lines were left empty: their report is the UTF-8 one.
            let lines: Vec<usize> = bad.iter().filter_map(|e| e.position()).map(|p| p.0).collect();
            lenient.dropped.retain(|e| e.position().is_none_or(|(l, _)| !lines.contains(&l)));
            lenient.dropped.extend(bad);
            lenient.dropped.sort_by_key(|e| e.position());
        }
        Ok(lenient)
    }
}

/// Lines of a text with their numbers, as every format reads them in both modes: a leading
/// byte-order mark is not part of line 1, a line may end in CRLF, and a final newline does
/// not start a line.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let body = text.strip_suffix('\n').unwrap_or(text);
    let empty = text.is_empty();
    body.split('\n')
        .enumerate()
        .filter(move |_| !empty)
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
}

/// The text without the blank lines at its end, for the formats in which a blank line is no
/// bar (beat, drumroll): an editor's or a model's trailing newlines are not an error.
pub(crate) fn without_trailing_blank_lines(text: &str) -> &str {
    text.trim_end_matches(['\n', '\r'])
}

/// The column (in characters, from 1) of byte `at` of `line`.
pub(crate) fn column(line: &str, at: usize) -> usize {
    line.get(..at).map_or(at, |s| s.chars().count()) + 1
}

/// Checks the bar limit before bar number `bars` (counting from 0) is added.
pub(crate) fn check_bars(bars: usize, limits: &Limits) -> Result<()> {
    if bars >= limits.max_bars {
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
    // Columns are counted on from the previous field's, so that a long header costs its
    // length, not its length times its fields.
    let mut seen = (0usize, 0usize);
    Ok(rest.split(' ').filter(|w| !w.is_empty()).map(move |w| {
        let at = base + (w.as_ptr() as usize - rest.as_ptr() as usize);
        let chars = seen.1 + line.get(seen.0..at).map_or(0, |s| s.chars().count());
        seen = (at, chars);
        let col = chars + 1;
        w.split_once('=')
            .map(|(k, v)| (k, v, col))
            .ok_or_else(|| Error::syntax(line_no, col, format!("expected key=value, found {w:?}")))
    }))
}

/// Parses a header's `tpq=` value: 1 to 32767 ticks per quarter note, what a MIDI file's
/// header can hold (its top bit marks SMPTE timing).
pub(crate) fn header_tpq(line_no: usize, col: usize, value: &str) -> Result<u16> {
    value.parse().ok().filter(|&t| (1..=0x7FFF).contains(&t)).ok_or_else(|| {
        let why = "a MIDI file holds 1 to 32767 ticks per quarter";
        Error::syntax(line_no, col, format!("tpq={value}: {why}"))
    })
}
