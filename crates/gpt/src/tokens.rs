//! The model's tokens: the codec's own units, not a text tokenizer's.
//!
//! A bar is `BAR`, its marks spelled out (a meter or tempo change, rare), then one unit per
//! step. A step the training data had is one token (`Kh`, `ss`, the rest ``); any other
//! step is spelled hit by hit (a token per voice and velocity level, then its microtiming
//! offset) and closed by `STEP_END`. So the vocabulary is closed under the beat format's
//! grammar: every bar the codec can write has tokens, steps never seen in training included.
//! A piece ends with `END`.
//!
//! A vocabulary may also hold **control tokens** ([`Control`]): the piece's style and tempo
//! bucket before its first bar, each bar's fill marker and intensity right after its `BAR`,
//! and the three markers of fill-in-the-middle (`PRE` prefix, `SUF` suffix, `MID` middle).
//! They write no text: decoding passes over them.
//!
//! Each token also carries where it sits, as a drummer counts: its step in the bar (`slot`,
//! 0 for bar and mark tokens) and its bar in the piece (`bar`), from which the model learns
//! 4-, 8- and 16-bar phrases.

use std::collections::HashMap;

use fine_drums_codec::beat::{BeatOptions, Layout, Step, split_bar};
use fine_drums_codec::{Meter, Voice};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Padding: never predicted, never input past a sequence's end.
pub const PAD: u32 = 0;
/// A bar starts.
pub const BAR: u32 = 1;
/// The piece (or the completion) ends.
pub const END: u32 = 2;
/// A step spelled hit by hit ends.
pub const STEP_END: u32 = 3;
/// A meter mark starts (`3/4`), spelled with the character tokens.
pub const METER: u32 = 4;
/// A tempo mark starts (`q=96`), spelled with the character tokens.
pub const TEMPO: u32 = 5;
/// A mark ends.
pub const MARK_END: u32 = 6;
/// The characters of marks: digits, `/` and `.`.
const MARK_CHARS: &[u8; 12] = b"0123456789/.";
const FIRST_CHAR: u32 = 7;
const FIRST_HIT: u32 = FIRST_CHAR + MARK_CHARS.len() as u32;

/// A text as tokens, with where each token sits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Encoded {
    /// The token ids.
    pub ids: Vec<u32>,
    /// Per token: its step in the bar from 1, or 0 for bar, mark and end tokens.
    pub slot: Vec<u16>,
    /// Per token: its bar, from 0 at the text's first bar.
    pub bar: Vec<u16>,
}

impl Encoded {
    /// Tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there is no token.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub(crate) fn push(&mut self, id: u32, slot: usize, bar: usize) {
        self.ids.push(id);
        self.slot.push(u16::try_from(slot).unwrap_or(u16::MAX));
        self.bar.push(u16::try_from(bar).unwrap_or(u16::MAX));
    }

    /// Appends tokens `range` of `other`.
    pub(crate) fn extend_from(&mut self, other: &Encoded, range: std::ops::Range<usize>) {
        self.ids.extend_from_slice(&other.ids[range.clone()]);
        self.slot.extend_from_slice(&other.slot[range.clone()]);
        self.bar.extend_from_slice(&other.bar[range]);
    }

    /// Appends `other` (its bars keep their numbers: each piece counts its own).
    pub fn extend(&mut self, other: &Encoded) {
        self.ids.extend_from_slice(&other.ids);
        self.slot.extend_from_slice(&other.slot);
        self.bar.extend_from_slice(&other.bar);
    }

    /// Appends the end token, in the last bar.
    pub fn end(&mut self) {
        let bar = self.bar.last().copied().unwrap_or(0);
        self.ids.push(END);
        self.slot.push(0);
        self.bar.push(bar);
    }
}

/// The vocabulary: the fixed tokens, a token per voice and level and per offset, and a token
/// per step that training saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocabulary {
    /// The beat format these tokens spell, as its text (`beat`, `beat:levels=4`).
    format: String,
    /// Whole-step tokens, in id order after the fixed, hit and offset tokens.
    steps: Vec<String>,
    /// The control tokens, after the whole-step tokens; `None` for a model trained without
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    controls: Option<Controls>,
    #[serde(skip)]
    parsed: Option<Parsed>,
}

/// The control tokens a vocabulary holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controls {
    /// The styles it knows, in id order.
    pub styles: Vec<String>,
}

/// A control token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// Fill-in-the-middle: the prefix (the bars before) follows.
    Prefix,
    /// Fill-in-the-middle: the suffix (the bars after) follows.
    Suffix,
    /// Fill-in-the-middle: the middle (the bars to write) follows.
    Middle,
    /// The bar is a fill (`true`) or not.
    Fill(bool),
    /// The bar's intensity, 1 to [`INTENSITIES`].
    Intensity(u8),
    /// The piece's tempo bucket, 0 to [`TEMPOS`] - 1.
    Tempo(u8),
    /// The piece's style, by its index in [`Controls::styles`].
    Style(usize),
}

pub use fine_drums_dataset::controls::{INTENSITIES, TEMPOS};

/// Control tokens before the styles: prefix, suffix, middle, fill, no fill, the
/// intensities and the tempo buckets.
const FIXED_CONTROLS: u32 = 5 + INTENSITIES as u32 + TEMPOS as u32;

/// What the vocabulary works out once from its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Parsed {
    beat: BeatOptions,
    voices: u32,
    levels: u32,
    /// The largest offset, in divisions of a step (half the microtiming resolution).
    max_offset: i32,
    index: HashMap<String, u32>,
}

impl Vocabulary {
    /// A vocabulary for `beat` with a token for each of `steps` (duplicates and symbols that
    /// are not steps are refused); the rest `""` always has one.
    pub fn new(beat: BeatOptions, steps: impl IntoIterator<Item = String>) -> Result<Vocabulary> {
        let mut all = vec![String::new()];
        for s in steps {
            if !all.contains(&s) {
                all.push(s);
            }
        }
        let mut v = Vocabulary {
            format: fine_drums_codec::Format::Beat(beat).to_string(),
            steps: all,
            controls: None,
            parsed: None,
        };
        v.settle()?;
        Ok(v)
    }

    /// A vocabulary for `beat` from the steps of `texts` (beat-format bars, one per line)
    /// that occur at least `min_count` times, commonest first. Lines that are not bars are
    /// skipped.
    pub fn learn<'a>(
        beat: BeatOptions,
        texts: impl IntoIterator<Item = &'a str>,
        min_count: usize,
    ) -> Result<Vocabulary> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for text in texts {
            for line in text.lines() {
                if let Some(bar) = split_bar(line.trim()) {
                    for s in bar.steps {
                        *counts.entry(s).or_default() += 1;
                    }
                }
            }
        }
        let mut steps: Vec<(&str, usize)> = counts
            .into_iter()
            .filter(|&(s, n)| n >= min_count.max(1) && beat.parse_step(s).is_ok())
            .collect();
        steps.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        Vocabulary::new(beat, steps.into_iter().map(|(s, _)| s.to_string()))
    }

    /// The vocabulary with control tokens for `styles` (see [`Control`]).
    pub fn with_controls(mut self, styles: Vec<String>) -> Vocabulary {
        self.controls = Some(Controls { styles });
        self
    }

    /// Its control tokens, if it has them.
    pub fn controls(&self) -> Option<&Controls> {
        self.controls.as_ref()
    }

    fn first_control(&self) -> u32 {
        self.first_step() + self.steps.len() as u32
    }

    /// The token of a control, if the vocabulary has it.
    pub fn control(&self, c: &Control) -> Option<u32> {
        let controls = self.controls.as_ref()?;
        let base = self.first_control();
        let offset = match *c {
            Control::Prefix => 0,
            Control::Suffix => 1,
            Control::Middle => 2,
            Control::Fill(true) => 3,
            Control::Fill(false) => 4,
            Control::Intensity(i) if (1..=INTENSITIES).contains(&i) => 4 + u32::from(i),
            Control::Tempo(t) if t < TEMPOS => 5 + u32::from(INTENSITIES) + u32::from(t),
            Control::Style(s) if s < controls.styles.len() => FIXED_CONTROLS + s as u32,
            _ => return None,
        };
        Some(base + offset)
    }

    /// The control a token is, if it is one.
    pub fn as_control(&self, id: u32) -> Option<Control> {
        let controls = self.controls.as_ref()?;
        let i = id.checked_sub(self.first_control())?;
        let intensities = u32::from(INTENSITIES);
        Some(match i {
            0 => Control::Prefix,
            1 => Control::Suffix,
            2 => Control::Middle,
            3 => Control::Fill(true),
            4 => Control::Fill(false),
            i if i < 5 + intensities => Control::Intensity((i - 4) as u8),
            i if i < FIXED_CONTROLS => Control::Tempo((i - 5 - intensities) as u8),
            i if ((i - FIXED_CONTROLS) as usize) < controls.styles.len() => {
                Control::Style((i - FIXED_CONTROLS) as usize)
            }
            _ => return None,
        })
    }

    /// Works out the token layout after construction or deserialisation.
    pub(crate) fn settle(&mut self) -> Result<()> {
        let format: fine_drums_codec::Format = self.format.parse()?;
        let fine_drums_codec::Format::Beat(beat) = format else {
            return Err(Error::invalid(
                "vocabulary",
                format!("{} is not the beat format", self.format),
            ));
        };
        let voices = beat.voices.len() as u32;
        let levels = u32::from(beat.levels.count());
        let max_offset = beat.microtiming.map_or(0, |r| i32::from(r / 2));
        let first_step = FIRST_HIT + voices * levels + 2 * max_offset as u32;
        let mut index = HashMap::with_capacity(self.steps.len());
        for (i, s) in self.steps.iter().enumerate() {
            beat.parse_step(s).map_err(|e| {
                Error::invalid("vocabulary", format!("step token {s:?} is not a step: {e}"))
            })?;
            if index.insert(s.clone(), first_step + i as u32).is_some() {
                return Err(Error::invalid("vocabulary", format!("step {s:?} twice")));
            }
        }
        self.parsed = Some(Parsed { beat, voices, levels, max_offset, index });
        Ok(())
    }

    fn p(&self) -> &Parsed {
        // `settle` runs in every constructor and after every load.
        self.parsed.as_ref().expect("a settled vocabulary")
    }

    /// The beat format the tokens spell.
    pub fn beat(&self) -> &BeatOptions {
        &self.p().beat
    }

    /// Tokens in all.
    pub fn len(&self) -> usize {
        let controls =
            self.controls.as_ref().map_or(0, |c| FIXED_CONTROLS as usize + c.styles.len());
        self.first_step() as usize + self.steps.len() + controls
    }

    /// Whether there are no tokens (never: the fixed tokens are always there).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The whole-step tokens' symbols, in id order.
    pub fn steps(&self) -> &[String] {
        &self.steps
    }

    /// The id of the first whole-step token.
    pub fn first_step(&self) -> u32 {
        let p = self.p();
        FIRST_HIT + p.voices * p.levels + 2 * p.max_offset as u32
    }

    /// The token of `voice` at `level` (1 to the format's levels).
    pub fn hit(&self, voice: Voice, level: u8) -> u32 {
        let p = self.p();
        FIRST_HIT + voice.index() as u32 * p.levels + u32::from(level.max(1)) - 1
    }

    /// The voice and level of a hit token.
    pub fn as_hit(&self, id: u32) -> Option<(Voice, u8)> {
        let p = self.p();
        let i = id.checked_sub(FIRST_HIT).filter(|&i| i < p.voices * p.levels)?;
        Some((Voice::new((i / p.levels) as u8), (i % p.levels + 1) as u8))
    }

    /// The token of a microtiming offset (in divisions of a step, not 0).
    pub fn offset(&self, units: i32) -> Option<u32> {
        let p = self.p();
        let first = FIRST_HIT + p.voices * p.levels;
        match units {
            0 => None,
            u if u.abs() > p.max_offset => None,
            u if u < 0 => Some(first + (u + p.max_offset) as u32),
            u => Some(first + p.max_offset as u32 + u as u32 - 1),
        }
    }

    /// The offset of an offset token.
    pub fn as_offset(&self, id: u32) -> Option<i32> {
        let p = self.p();
        let first = FIRST_HIT + p.voices * p.levels;
        let i = id.checked_sub(first).filter(|&i| i < 2 * p.max_offset as u32)? as i32;
        Some(if i < p.max_offset { i - p.max_offset } else { i - p.max_offset + 1 })
    }

    /// The whole-step token of `symbol`, if the vocabulary has one.
    pub fn step(&self, symbol: &str) -> Option<u32> {
        self.p().index.get(symbol).copied()
    }

    /// The symbol of a whole-step token.
    pub fn as_step(&self, id: u32) -> Option<&str> {
        let i = id.checked_sub(self.first_step())? as usize;
        self.steps.get(i).map(String::as_str)
    }

    /// The character of a mark token.
    pub fn as_char(&self, id: u32) -> Option<u8> {
        id.checked_sub(FIRST_CHAR).and_then(|i| MARK_CHARS.get(i as usize)).copied()
    }

    /// The token of a mark character.
    fn char(c: u8) -> Option<u32> {
        MARK_CHARS.iter().position(|&m| m == c).map(|i| FIRST_CHAR + i as u32)
    }

    /// Beat-format text (one bar a line; blank lines skipped) as tokens. A line that is not
    /// a bar, or a step the format cannot read, is an error naming its line.
    pub fn encode(&self, text: &str) -> Result<Encoded> {
        let mut out = Encoded::default();
        let mut bar = 0;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            self.encode_bar(line, bar, &mut out)
                .map_err(|e| Error::Text { line: n + 1, message: e.to_string() })?;
            bar += 1;
        }
        Ok(out)
    }

    fn encode_bar(&self, line: &str, bar: usize, out: &mut Encoded) -> Result<()> {
        self.encode_bar_with(line, bar, &[], out)
    }

    /// One bar (`line`, bar number `bar`) onto `out`, its bar controls (fill marker, then
    /// intensity) right after its `BAR`.
    pub(crate) fn encode_bar_with(
        &self,
        line: &str,
        bar: usize,
        controls: &[u32],
        out: &mut Encoded,
    ) -> Result<()> {
        let steps = split_bar(line).ok_or_else(|| {
            Error::invalid("bar", "its words do not all hold the same number of steps")
        })?;
        out.push(BAR, 0, bar);
        for &c in controls {
            out.push(c, 0, bar);
        }
        for (mark, text) in [(METER, steps.meter), (TEMPO, steps.tempo)] {
            let Some(text) = text else { continue };
            out.push(mark, 0, bar);
            for c in text.bytes() {
                let id = Vocabulary::char(c).ok_or_else(|| {
                    Error::invalid("mark", format!("{text:?} holds {:?}", char::from(c)))
                })?;
                out.push(id, 0, bar);
            }
            out.push(MARK_END, 0, bar);
        }
        for (i, s) in steps.steps.iter().enumerate() {
            let slot = i + 1;
            if let Some(id) = self.step(s) {
                out.push(id, slot, bar);
                continue;
            }
            let step = self.beat().parse_step(s)?;
            for &(voice, level) in &step.hits {
                out.push(self.hit(voice, level), slot, bar);
            }
            if let Some(id) = self.offset(i32::from(step.offset)) {
                out.push(id, slot, bar);
            }
            out.push(STEP_END, slot, bar);
        }
        Ok(())
    }

    /// Tokens as beat-format text, one bar a line, the first bar in `meter` (marks change
    /// it). Stops at `END`. Tokens that break the grammar are an error naming the token.
    pub fn decode(&self, ids: &[u32], meter: Meter) -> Result<String> {
        let mut text = String::new();
        let mut grammar = Grammar::new(meter, self.beat());
        for (i, &id) in ids.iter().enumerate() {
            if id == END {
                break;
            }
            grammar
                .push(self, id, &mut text)
                .map_err(|e| Error::invalid("tokens", format!("token {i} ({id}): {e}")))?;
        }
        if grammar.in_bar() {
            return Err(Error::invalid("tokens", "the last bar is cut short"));
        }
        Ok(text)
    }
}

/// Where a token sequence stands in the grammar of bars: what may come next, and the text
/// so far. Decoding and constrained sampling both walk it.
#[derive(Clone, Debug)]
pub struct Grammar {
    meter: Meter,
    layout: Option<Layout>,
    grid: fine_drums_codec::Grid,
    /// Steps written in the current bar; `None` between bars.
    step: Option<usize>,
    /// Inside a mark: the mark token and its text so far.
    mark: Option<(u32, String)>,
    /// Inside a step spelled hit by hit: its hits and offset so far.
    hits: Option<Step>,
    /// The bar controls taken since the bar began: 0 none, 1 its fill marker, 2 its
    /// intensity, 3 none may come (a mark began).
    bar_controls: u8,
}

/// What the grammar allows next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Next {
    /// A bar (or the end).
    Bar,
    /// A step: a whole-step token, or the first hit of a spelled step.
    Step,
    /// More hits of a spelled step (voices after the last), its offset, or its end.
    Hits,
    /// Characters of a mark, or its end.
    Mark,
}

impl Grammar {
    /// Between bars, the next bar in `meter`.
    pub fn new(meter: Meter, beat: &BeatOptions) -> Grammar {
        Grammar {
            meter,
            layout: Layout::of(meter, beat.grid).ok(),
            grid: beat.grid,
            step: None,
            mark: None,
            hits: None,
            bar_controls: 0,
        }
    }

    /// Whether a bar is open.
    pub fn in_bar(&self) -> bool {
        self.step.is_some()
    }

    /// The bar controls taken since the bar began: 0 none, 1 its fill marker, 2 its
    /// intensity, 3 none may come any more.
    pub fn bar_controls(&self) -> u8 {
        self.bar_controls
    }

    /// The current meter.
    pub fn meter(&self) -> Meter {
        self.meter
    }

    /// The step the next step token fills, from 1 (0 between bars).
    pub fn slot(&self) -> usize {
        self.step.map_or(0, |s| s + 1)
    }

    /// What may come next.
    pub fn next(&self) -> Next {
        if self.mark.is_some() {
            Next::Mark
        } else if self.hits.is_some() {
            Next::Hits
        } else if self.step.is_some() {
            Next::Step
        } else {
            Next::Bar
        }
    }

    /// Whether `id` may come next (`END` only between bars). Spelled steps keep voice order
    /// and take one offset at most, after their hits.
    /// Piece controls (style, tempo, the fill-in-the-middle markers) come between bars; a
    /// bar's fill marker and then its intensity right after its `BAR`.
    pub fn allows(&self, vocab: &Vocabulary, id: u32) -> bool {
        match self.next() {
            Next::Bar => {
                id == BAR
                    || id == END
                    || vocab
                        .as_control(id)
                        .is_some_and(|c| !matches!(c, Control::Intensity(_) | Control::Fill(_)))
            }
            Next::Mark => id == MARK_END || vocab.as_char(id).is_some(),
            Next::Step => {
                let first = self.step == Some(0);
                (first && (id == METER || id == TEMPO))
                    || vocab.as_step(id).is_some()
                    || vocab.as_hit(id).is_some()
                    || (first
                        && match vocab.as_control(id) {
                            Some(Control::Fill(_)) => self.bar_controls < 1,
                            Some(Control::Intensity(_)) => self.bar_controls < 2,
                            _ => false,
                        })
            }
            Next::Hits => {
                let hits = self.hits.as_ref().map_or(&[][..], |h| &h.hits[..]);
                let offset = self.hits.as_ref().is_some_and(|h| h.offset != 0);
                if id == STEP_END {
                    return !hits.is_empty();
                }
                if let Some((v, _)) = vocab.as_hit(id) {
                    return !offset && hits.last().is_none_or(|&(last, _)| v > last);
                }
                vocab.as_offset(id).is_some() && !offset && !hits.is_empty()
            }
        }
    }

    /// Takes token `id`, appending what it writes to `text`.
    pub fn push(&mut self, vocab: &Vocabulary, id: u32, text: &mut String) -> Result<()> {
        if !self.allows(vocab, id) {
            return Err(Error::invalid(
                "token",
                format!("{id} cannot come here ({:?})", self.next()),
            ));
        }
        match self.next() {
            Next::Bar => {
                if id == BAR {
                    self.step = Some(0);
                    self.bar_controls = 0;
                }
            }
            Next::Mark => {
                let (mark, mut so_far) = self.mark.take().unwrap_or((METER, String::new()));
                if id == MARK_END {
                    if mark == METER {
                        self.meter = so_far.parse()?;
                        self.layout = Some(Layout::of(self.meter, self.grid)?);
                        text.push_str(&so_far);
                    } else {
                        text.push_str("q=");
                        text.push_str(&so_far);
                    }
                    text.push(' ');
                } else {
                    so_far.push(char::from(vocab.as_char(id).unwrap_or(b'?')));
                    self.mark = Some((mark, so_far));
                }
            }
            Next::Step if id == METER || id == TEMPO => {
                self.bar_controls = 3;
                self.mark = Some((id, String::new()));
            }
            Next::Step if vocab.as_control(id).is_some() => {
                let fill = matches!(vocab.as_control(id), Some(Control::Fill(_)));
                self.bar_controls = if fill { 1 } else { 2 };
            }
            Next::Step => {
                if let Some(symbol) = vocab.as_step(id) {
                    self.write_step(symbol, text)?;
                } else if let Some(hit) = vocab.as_hit(id) {
                    let mut step = Step::default();
                    step.hits.push(hit);
                    self.hits = Some(step);
                }
            }
            Next::Hits => {
                let mut step = self.hits.take().unwrap_or_default();
                if id == STEP_END {
                    let mut symbol = String::new();
                    vocab.beat().write_step(&step, &mut symbol);
                    self.write_step(&symbol, text)?;
                    return Ok(());
                }
                if let Some(hit) = vocab.as_hit(id) {
                    step.hits.push(hit);
                } else if let Some(o) = vocab.as_offset(id) {
                    step.offset = o as i8;
                }
                self.hits = Some(step);
            }
        }
        Ok(())
    }

    fn write_step(&mut self, symbol: &str, text: &mut String) -> Result<()> {
        let layout = self.layout.ok_or_else(|| {
            Error::invalid("meter", format!("{} has no bar layout on this grid", self.meter))
        })?;
        let s = self.step.unwrap_or(0);
        if s > 0 {
            text.push(if s.is_multiple_of(usize::from(layout.per.max(1))) { ' ' } else { '.' });
        }
        text.push_str(symbol);
        let s = s + 1;
        if s == layout.steps() {
            text.push('\n');
            self.step = None;
        } else {
            self.step = Some(s);
        }
        Ok(())
    }
}
