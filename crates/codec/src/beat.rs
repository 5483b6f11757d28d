//! The beat format: one line per bar, one word per beat, one dot-separated slot per step.
//!
//! ```text
//! kh..h. sh..h.s h.s.Kh. sh..h.k
//! ```
//!
//! reads "beat 1: kick and hi-hat on the first 16th, hi-hat on the third; beat 2: snare and
//! hi-hat, hi-hat, snare; …". See the crate documentation for the grammar and the reasons
//! behind it.

use std::io::Write as _;

use crate::error::{Error, Result};
use crate::groove::{Bar, Context, Groove, Hit, Limits};
use crate::primitive::Velocity;
use crate::quantise::{Quantise, Quantiser, offset_of_units, units_of_offset};
use crate::text::{
    Lenient, Mode, TextFormat, check_bars, column, header_fields, header_tpq, lines, sealed,
    without_trailing_blank_lines,
};
use crate::units::{Grid, Levels, Meter, Tempo, TempoChange};
use crate::voice::{Voice, VoiceMap};

/// Settings of the beat format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BeatOptions {
    /// The step grid. Default: 16ths.
    pub grid: Grid,
    /// The voice map; it must have letters (`gmd9` or `paper6`). Default: `gmd9`.
    pub voices: VoiceMap,
    /// Velocity levels. Default: 3 (ghost `kk`, normal `k`, accent `K`).
    pub levels: Levels,
    /// Microtiming in divisions of a step, written after a step as `+n` or `-n`; `None`
    /// snaps every hit to the grid. Default: `None`.
    pub microtiming: Option<u8>,
    /// Whether the text starts with a `#beat` header naming the settings, resolution,
    /// meter and tempo, so that it decodes on its own. Default: `false`.
    pub header: bool,
    /// Bounds on what a decode accepts. Default: [`Limits::default`].
    pub limits: Limits,
}

impl Default for BeatOptions {
    fn default() -> BeatOptions {
        BeatOptions {
            grid: Grid::SIXTEENTH,
            voices: VoiceMap::Gmd9,
            levels: Levels::THREE,
            microtiming: None,
            header: false,
            limits: Limits::default(),
        }
    }
}

impl BeatOptions {
    /// The quantisation the format applies (see [`Groove::quantised`]).
    pub fn quantisation(&self) -> Quantise {
        Quantise {
            grid: self.grid,
            voices: self.voices,
            levels: self.levels,
            microtiming: self.microtiming,
        }
    }

    /// Checks that the settings can be written: microtiming of 2 divisions a step or more, and
    /// a voice map with letters.
    pub(crate) fn check(&self) -> Result<()> {
        if let Some(r) = self.microtiming.filter(|&r| r < 2) {
            return Err(Error::invalid(
                "microtiming",
                format!("{r} divisions per step (need 2 or more, or off)"),
            ));
        }
        if self.voices.letter(Voice::new(0)).is_none() {
            return Err(Error::invalid(
                "voice map",
                format!(
                    "the beat format writes voices as letters, and `{}` has none (use gmd9, paper6, or the exact format)",
                    self.voices
                ),
            ));
        }
        Ok(())
    }
}

impl sealed::Sealed for BeatOptions {}

impl TextFormat for BeatOptions {
    fn name(&self) -> &'static str {
        "beat"
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn encode(&self, groove: &Groove) -> Result<String> {
        encode_with(groove, self, true)
    }

    fn decode_with(&self, text: &str, context: &Context, mode: Mode) -> Result<Lenient> {
        run(text, self, context, mode)
    }

    fn quantise(&self, groove: &Groove) -> Result<Groove> {
        groove.quantised(&self.quantisation())
    }
}

/// [`encode`], with or without the one-pass path of [`Cells`] (the tests compare the two).
fn encode_with(groove: &Groove, options: &BeatOptions, one_pass: bool) -> Result<String> {
    options.check()?;
    let tpq = groove.ticks_per_quarter;
    let quantiser = Quantiser::new(&options.quantisation(), tpq)?;
    // Bars are quantised one at a time into `hits`, as `Groove::quantised` would.
    let g = groove.on(options.grid, options.voices)?;
    let mut out = Vec::with_capacity(g.bars.len() * 48 + 96);
    if options.header {
        let ctx = g.context();
        let micro = options.microtiming.map_or("off".to_string(), |r| r.to_string());
        let _ = writeln!(
            out,
            "#beat grid={} levels={} micro={} map={} tpq={} meter={} q={}",
            options.grid,
            options.levels.count(),
            micro,
            options.voices,
            tpq,
            ctx.meter,
            ctx.tempo.bpm_text()
        );
    }
    let letters = Letters::new(options);
    let mut cells = Cells::new(options, &letters).filter(|_| one_pass);
    let mut hits = Vec::new();
    // The meter the text is read in before its first mark: the header's, or else 4/4 (the
    // first bar of any other meter carries its mark, so that the text decodes on its own).
    let mut meter =
        if options.header { g.bars.first().map(|b| b.meter) } else { Some(Meter::FOUR_FOUR) };
    let mut prev_tempo = None;
    // The meter of the bar before, and its steps and steps per group.
    let mut shape = (
        Meter::FOUR_FOUR,
        16 * u32::from(options.grid.per_quarter()) / 4,
        u32::from(options.grid.per_quarter()),
    );
    for (bar, tempo) in g.bars.iter().zip(g.start_tempos()) {
        if Some(bar.meter) != meter {
            meter = Some(bar.meter);
            let _ = write!(out, "{} ", bar.meter);
        }
        if prev_tempo.is_some_and(|t| t != tempo) {
            let _ = write!(out, "q={} ", tempo.bpm_text());
        }
        prev_tempo = Some(tempo);
        if shape.0 != bar.meter {
            shape =
                (bar.meter, bar.meter.steps(options.grid)?, bar.meter.group_steps(options.grid)?);
        }
        let (_, steps, group) = shape;
        if let Some(cells) = cells.as_mut()
            && cells.bar(&bar.hits, steps, group, &mut out)
        {
            out.push(b'\n');
            continue;
        }
        hits.clear();
        quantiser.bar(&bar.hits, &mut hits);
        let mut next = hits.iter().peekable();
        let mut in_group = 0;
        for s in 0..steps {
            if s > 0 {
                in_group += 1;
                if in_group == group {
                    in_group = 0;
                    out.push(b' ');
                } else {
                    out.push(b'.');
                }
            }
            let mut offset = 0;
            while let Some(h) = next.next_if(|h| h.step == s) {
                offset = h.offset;
                letters.push(&mut out, h);
            }
            if let (Some(r), true) = (options.microtiming, offset != 0) {
                let units = units_of_offset(offset, r, options.grid, tpq);
                let _ = write!(out, "{units:+}");
            }
        }
        out.push(b'\n');
    }
    // Every byte written is ASCII.
    String::from_utf8(out).map_err(|e| Error::invalid("beat text", e))
}

/// How each voice and velocity is spelled, worked out once per encode.
struct Letters {
    /// Per voice: its letter (`0` for none).
    lower: [u8; 16],
    /// Per velocity: its level.
    level: [u8; 128],
    levels: u8,
}

impl Letters {
    fn new(options: &BeatOptions) -> Letters {
        let mut lower = [0; 16];
        for (v, l) in lower.iter_mut().enumerate() {
            *l = options.voices.letter(Voice::new(v as u8)).unwrap_or(b'?');
        }
        let mut level = [1; 128];
        for (v, l) in level.iter_mut().enumerate().skip(1) {
            *l = options.levels.level(Velocity::new(v as u8));
        }
        Letters { lower, level, levels: options.levels.count() }
    }

    #[inline]
    fn push(&self, out: &mut Vec<u8>, h: &Hit) {
        let letter = self.lower.get(h.voice.index()).copied().unwrap_or(b'?');
        let level = self.level[usize::from(h.velocity.as_int())];
        match (self.levels, level) {
            (1, _) | (2, 1) | (3, 2) => out.push(letter),
            (2, _) | (3, 3) => out.push(letter.to_ascii_uppercase()),
            (3, _) => out.extend_from_slice(&[letter, letter]),
            _ => {
                out.push(letter);
                let _ = write!(out, "{level}");
            }
        }
    }
}

/// The common case of [`encode`] in one pass per bar: no microtiming, at most three levels
/// and at most 16 voices. Each step is a word of two bits per voice holding the level of its
/// loudest hit, which is what [`Quantiser`] keeps of a step; the words are then spelled from a
/// table. Quantising into a list of hits first and spelling each hit took about twice as long.
struct Cells {
    /// Per voice and level: the letters (the second one unused when the count is 1) and how
    /// many of them.
    spell: [[([u8; 2], usize); 4]; 16],
    /// Per velocity: its level.
    level: [u8; 128],
    /// Per step of the bar being written: two bits per voice.
    steps: Vec<u32>,
    /// The bar's text, sized for the longest a bar can be.
    text: Vec<u8>,
}

impl Cells {
    fn new(options: &BeatOptions, letters: &Letters) -> Option<Cells> {
        if options.microtiming.is_some() || options.levels.count() > 3 || options.voices.len() > 16
        {
            return None;
        }
        let mut spell = [[([b'?'; 2], 1); 4]; 16];
        let mut word = Vec::with_capacity(2);
        for (v, row) in spell.iter_mut().enumerate() {
            for level in 1..=options.levels.count() {
                word.clear();
                let hit = Hit {
                    step: 0,
                    offset: 0,
                    voice: Voice::new(v as u8),
                    velocity: options.levels.velocity(level),
                    length: 0,
                };
                letters.push(&mut word, &hit);
                let mut pair = [word[0]; 2];
                pair[1] = word.get(1).copied().unwrap_or(word[0]);
                row[usize::from(level)] = (pair, word.len());
            }
        }
        Some(Cells { spell, level: letters.level, steps: Vec::new(), text: Vec::new() })
    }

    /// Writes one bar (without its newline), or returns `false` having written nothing when a
    /// hit's voice is beyond the table (the general path spells it).
    #[inline]
    fn bar(&mut self, hits: &[Hit], steps: u32, group: u32, out: &mut Vec<u8>) -> bool {
        let steps = steps as usize;
        self.steps.clear();
        self.steps.resize(steps, 0);
        for h in hits {
            let v = h.voice.index();
            if v >= 16 {
                return false;
            }
            // A hit past the bar's last step is not written, as in the general path.
            if let Some(cell) = self.steps.get_mut(h.step as usize) {
                let shift = 2 * v as u32;
                let level = u32::from(self.level[usize::from(h.velocity.as_int())]);
                let current = (*cell >> shift) & 3;
                *cell ^= (current ^ level.max(current)) << shift;
            }
        }
        // A step takes a separator and at most two letters per voice; one more byte lets a
        // single letter be written as a pair.
        let longest = steps * 33 + 2;
        if self.text.len() < longest {
            self.text.resize(longest, 0);
        }
        let text = &mut self.text[..longest];
        let mut at = 0;
        let mut in_group = 0;
        for (s, &cell) in self.steps.iter().enumerate() {
            if s > 0 {
                in_group += 1;
                text[at] = if in_group == group {
                    in_group = 0;
                    b' '
                } else {
                    b'.'
                };
                at += 1;
            }
            let mut cell = cell;
            while cell != 0 {
                let shift = cell.trailing_zeros() & !1;
                let (pair, n) = self.spell[(shift / 2) as usize][((cell >> shift) & 3) as usize];
                text[at] = pair[0];
                text[at + 1] = pair[1];
                at += n;
                cell &= !(3 << shift);
            }
        }
        out.extend_from_slice(&text[..at]);
        true
    }
}

struct State {
    options: BeatOptions,
    meter: Meter,
    groove: Groove,
    spell: Spelling,
    /// The hits of the bar being parsed.
    hits: Vec<Hit>,
    /// The last meter a bar was parsed in, with its steps and steps per group.
    shape: Option<(Meter, u32, u32)>,
}

/// What letters and levels mean under the current options, worked out once per decode.
struct Spelling {
    /// Per byte: the voice of the lowercase letter, or `u8::MAX`.
    voice: [u8; 256],
    /// Per level: the velocity written for it.
    velocity: [Velocity; 128],
    /// The length every hit gets.
    length: u32,
}

impl Spelling {
    fn new(options: &BeatOptions, tpq: u16) -> Spelling {
        let mut voice = [u8::MAX; 256];
        for v in 0..options.voices.len().min(usize::from(u8::MAX)) {
            if let Some(letter) = options.voices.letter(Voice::new(v as u8)) {
                voice[usize::from(letter)] = v as u8;
            }
        }
        let mut velocity = [Velocity::MIN; 128];
        for level in 1..=options.levels.count() {
            velocity[usize::from(level)] = options.levels.velocity(level);
        }
        Spelling { voice, velocity, length: Groove::default_length(tpq, options.grid) }
    }
}

fn run(text: &str, options: &BeatOptions, context: &Context, mode: Mode) -> Result<Lenient> {
    options.check()?;
    let text = without_trailing_blank_lines(text);
    let mut st = State {
        options: *options,
        meter: context.meter,
        groove: Groove::new(context.ticks_per_quarter, options.grid, options.voices),
        spell: Spelling::new(options, context.ticks_per_quarter),
        hits: Vec::new(),
        shape: None,
    };
    // Every hit takes a letter (a ghost note two), and only `q=` marks take other letters:
    // a text that must hold more hits than the limit is refused before anything is built.
    // (Only a text of over twice the limit in bytes can: others are not scanned twice.)
    let letters = || {
        text.split('\n')
            .filter(|l| !l.trim_start().starts_with('#'))
            .flat_map(str::bytes)
            .filter(|b| b.is_ascii_alphabetic() && !b.eq_ignore_ascii_case(&b'q'))
            .count()
    };
    // Lenient decoding keeps what fits instead (below), as memory stays bounded by the limits.
    if mode == Mode::Strict
        && text.len() / 2 > options.limits.max_hits
        && letters() / 2 > options.limits.max_hits
    {
        return Err(Error::Limit { what: "hits", limit: options.limits.max_hits as u64 });
    }
    let mut total_hits = 0usize;
    // One bar per line: make room for them all at once (within the limit).
    let lines_in_text = text.bytes().filter(|&b| b == b'\n').count() + 1;
    st.groove.bars.reserve(lines_in_text.min(options.limits.max_bars));
    let mut tempo = context.tempo;
    let mut dropped = Vec::new();
    for (n, raw) in lines(text) {
        let line = match mode {
            Mode::Strict => raw,
            Mode::Lenient => raw.trim(),
        };
        if line.starts_with('#') {
            let header = if n == 1 {
                parse_header(n, line, &mut st, &mut tempo)
            } else {
                Err(Error::syntax(n, 1, "a header is only allowed on the first line"))
            };
            match (header, mode) {
                (Ok(()), _) => {}
                (Err(e), Mode::Strict) => return Err(e),
                (Err(e), Mode::Lenient) => dropped.push(e),
            }
            continue;
        }
        if line.is_empty() && mode == Mode::Lenient {
            dropped.push(Error::syntax(n, 1, "a blank line (a bar is a line of beats)"));
            continue;
        }
        let limits = st.options.limits;
        if let Err(e) = check_bars(st.groove.bars.len(), &limits) {
            if mode == Mode::Strict {
                return Err(e);
            }
            dropped.push(past_the_limit(n, text, &e));
            break;
        }
        match parse_bar(n, line, &mut st, mode) {
            Ok((mut bar, mark)) => {
                total_hits += bar.hits.len();
                if total_hits > limits.max_hits {
                    let e = Error::Limit { what: "hits", limit: limits.max_hits as u64 };
                    if mode == Mode::Strict {
                        return Err(e);
                    }
                    dropped.push(past_the_limit(n, text, &e));
                    break;
                }
                if st.groove.bars.is_empty() {
                    tempo = mark.unwrap_or(tempo);
                    bar.tempos.push(TempoChange { tick: 0, tempo });
                } else if let Some(t) = mark.filter(|&t| t != tempo) {
                    // A mark of the tempo already in force changes nothing, and is not kept
                    // (the encoder writes none: a kept one broke the round trip).
                    tempo = t;
                    bar.tempos.push(TempoChange { tick: 0, tempo: t });
                }
                st.meter = bar.meter;
                st.groove.bars.push(bar);
            }
            Err(e) if mode == Mode::Lenient => dropped.push(e),
            Err(e) => return Err(e),
        }
    }
    Ok(Lenient { groove: st.groove, dropped })
}

/// What a lenient decode says when it stops at a limit on line `n`: that line and every
/// line after it are not read.
fn past_the_limit(n: usize, text: &str, limit: &Error) -> Error {
    let rest = lines(text).count().saturating_sub(n);
    Error::syntax(n, 1, format!("{limit}: this line and the {rest} after it were not read"))
}

fn parse_header(n: usize, line: &str, st: &mut State, tempo: &mut Tempo) -> Result<()> {
    // Read into copies, kept only if the whole line reads: a lenient decode that drops the
    // line goes on with the settings before it.
    let mut options = st.options;
    let o = &mut options;
    let (mut tpq, mut meter, mut q) = (st.groove.ticks_per_quarter, st.meter, *tempo);
    for field in header_fields(n, line, "beat")? {
        let (key, value, col) = field?;
        let bad = |e: Error| Error::syntax(n, col, e);
        match key {
            "grid" => o.grid = value.parse().map_err(bad)?,
            "levels" => {
                o.levels =
                    value.parse().ok().and_then(|l| Levels::new(l).ok()).ok_or_else(|| {
                        Error::syntax(n, col, format!("levels={value}: expected 1 to 127"))
                    })?;
            }
            "micro" => {
                o.microtiming = if value == "off" {
                    None
                } else {
                    Some(
                        value
                            .parse()
                            .ok()
                            .filter(|&r: &u8| r >= 2)
                            .ok_or_else(|| {
                                Error::syntax(
                                    n,
                                    col,
                                    format!(
                                        "micro={value}: expected off, or the divisions of a step that offsets count in, 2 to 255 (8 is usual)"
                                    ),
                                )
                            })?,
                    )
                };
            }
            "map" => o.voices = value.parse().map_err(bad)?,
            "tpq" => {
                tpq = header_tpq(n, col, value)?;
            }
            "meter" => meter = value.parse().map_err(bad)?,
            "q" => q = parse_bpm(value).map_err(bad)?,
            _ => return Err(Error::syntax(n, col, format!("unknown header field {key:?}"))),
        }
    }
    o.check().map_err(|e| Error::syntax(n, 1, e))?;
    st.options = options;
    (st.groove.ticks_per_quarter, st.meter, *tempo) = (tpq, meter, q);
    st.groove.grid = options.grid;
    st.groove.voices = options.voices;
    st.spell = Spelling::new(&options, tpq);
    st.shape = None;
    Ok(())
}

fn parse_bpm(s: &str) -> Result<Tempo> {
    s.parse::<f64>()
        .map_err(|_| Error::invalid("tempo", format!("{s:?} is not a number of BPM")))
        .and_then(Tempo::from_bpm)
}

/// Parses one bar line; returns the bar (without its tempo) and its tempo mark, if any.
fn parse_bar(n: usize, line: &str, st: &mut State, mode: Mode) -> Result<(Bar, Option<Tempo>)> {
    let o = &st.options;
    let hits = &mut st.hits;
    hits.clear();
    let b = line.as_bytes();
    let err = |at: usize, msg: String| Error::syntax(n, column(line, at), msg);
    let mut meter = st.meter;
    let mut tempo = None;
    let mut i = 0;
    // Marks: `N/D ` and `q=BPM ` before the first beat.
    loop {
        let end = b[i..].iter().position(|&c| c == b' ').map_or(b.len(), |p| i + p);
        let word = &line[i..end];
        if let Some(bpm) = word.strip_prefix("q=") {
            tempo = Some(parse_bpm(bpm).map_err(|e| err(i, e.to_string()))?);
        } else if word.contains('/') {
            meter = word.parse().map_err(|e: Error| err(i, e.to_string()))?;
        } else {
            break;
        }
        i = end + 1;
        if i > b.len() {
            return Err(err(b.len(), "a bar needs beats after its marks".into()));
        }
    }
    let (steps, group) = match st.shape {
        Some((m, steps, group)) if m == meter => (steps, group),
        _ => {
            let steps = meter.steps(o.grid).map_err(|e| err(i, e.to_string()))?;
            let group = meter.group_steps(o.grid).map_err(|e| err(i, e.to_string()))?;
            st.shape = Some((meter, steps, group));
            (steps, group)
        }
    };
    let slots = Slots { options: o, spell: &st.spell, tpq: st.groove.ticks_per_quarter, n, line };
    let mut step = 0u32;
    // Steps since the last group boundary (a counter, not a division per step).
    let mut in_group = 0u32;
    loop {
        slots.slot(&mut i, step, hits)?;
        step += 1;
        in_group += 1;
        if in_group == group {
            in_group = 0;
        }
        let sep = b.get(i).copied();
        let want = if step == steps {
            None
        } else if in_group == 0 {
            Some(b' ')
        } else {
            Some(b'.')
        };
        if sep != want {
            let what = match want {
                None => "the end of the bar".to_string(),
                Some(b' ') => "a space between beats".to_string(),
                Some(_) => "a dot between steps".to_string(),
            };
            // The character there, whole (`é`, not the first of its bytes).
            let found = match line.get(i..).and_then(|rest| rest.chars().next()) {
                None => "the end of the line".to_string(),
                Some(c) => format!("{c:?}"),
            };
            let expected = if mode == Mode::Lenient && sep.is_none() {
                format!("bar cut short after {step} of {steps} steps")
            } else {
                format!("expected {what}, found {found}")
            };
            return Err(err(i, expected));
        }
        if want.is_none() {
            return Ok((Bar { meter, tempos: Vec::new(), hits: hits.to_vec() }, tempo));
        }
        i += 1;
    }
}

/// What reading one slot (the hits of a step and their offset) needs, borrowed from a decode.
struct Slots<'a> {
    options: &'a BeatOptions,
    spell: &'a Spelling,
    tpq: u16,
    /// The line's number, for errors.
    n: usize,
    line: &'a str,
}

impl Slots<'_> {
    /// Reads the slot at byte `*i` of the line (hits, then an optional offset) as hits at
    /// `step`, appended to `hits` in voice order; leaves `*i` after it.
    #[inline(always)]
    fn slot(&self, i: &mut usize, step: u32, hits: &mut Vec<Hit>) -> Result<()> {
        let (o, spell, line) = (self.options, self.spell, self.line);
        let b = line.as_bytes();
        let err = |at: usize, msg: String| Error::syntax(self.n, column(line, at), msg);
        let levels = o.levels.count();
        let first = hits.len();
        let mut seen = 0u16;
        while let Some(&c) = b.get(*i) {
            let lower = c.to_ascii_lowercase();
            let voice = spell.voice[usize::from(lower)];
            if voice == u8::MAX {
                break;
            }
            let voice = Voice::new(voice);
            let at = *i;
            *i += 1;
            let level = if c.is_ascii_uppercase() {
                match levels {
                    2 | 3 => levels,
                    _ => {
                        return Err(err(
                            at,
                            format!("capital letters are not used with {levels} velocity levels"),
                        ));
                    }
                }
            } else {
                match levels {
                    1 => 1,
                    2 => 1,
                    3 if b.get(*i) == Some(&c) => {
                        *i += 1;
                        1
                    }
                    3 => 2,
                    _ => {
                        let start = *i;
                        while b.get(*i).is_some_and(u8::is_ascii_digit) {
                            *i += 1;
                        }
                        let level: u8 = line[start..*i].parse().unwrap_or(0);
                        if level == 0 || level > levels {
                            return Err(err(
                                start,
                                format!(
                                    "expected a velocity level 1 to {levels} after {:?}",
                                    char::from(c)
                                ),
                            ));
                        }
                        level
                    }
                }
            };
            let bit = 1u16 << voice.index();
            if seen & bit != 0 {
                return Err(err(at, format!("voice {:?} twice in one step", char::from(lower))));
            }
            seen |= bit;
            hits.push(Hit {
                step,
                offset: 0,
                voice,
                velocity: spell.velocity[usize::from(level)],
                length: spell.length,
            });
        }
        if let Some(&sign @ (b'+' | b'-')) = b.get(*i) {
            let at = *i;
            let Some(r) = o.microtiming else {
                return Err(err(at, "a timing offset, but microtiming is off".into()));
            };
            *i += 1;
            let start = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            let units: i64 = line[start..*i]
                .parse()
                .map_err(|_| err(start, "expected digits after the sign".into()))?;
            if units > i64::from(r / 2) {
                return Err(err(
                    at,
                    format!("offset {units} is beyond half a step ({} divisions)", r / 2),
                ));
            }
            if hits.len() == first {
                return Err(err(at, "a timing offset on an empty step".into()));
            }
            let units = if sign == b'-' { -units } else { units };
            let offset = offset_of_units(units, r, o.grid, self.tpq);
            for h in &mut hits[first..] {
                h.offset = offset;
            }
        }
        if !hits[first..].is_sorted_by_key(|h| h.voice) {
            hits[first..].sort_unstable_by_key(|h| h.voice);
        }
        Ok(())
    }
}

/// The shape of a bar line: `groups` words (beats) of `per` steps each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Layout {
    /// Words (beat groups) in the bar.
    pub groups: u16,
    /// Steps in each word.
    pub per: u16,
}

impl Layout {
    /// The layout the beat format gives a bar of `meter` on `grid`.
    pub fn of(meter: Meter, grid: Grid) -> Result<Layout> {
        let steps = meter.steps(grid)?;
        let per = meter.group_steps(grid)?;
        let too_many = || Error::invalid("meter", format!("{meter} has too many {grid} steps"));
        Ok(Layout {
            groups: u16::try_from(steps / per).map_err(|_| too_many())?,
            per: u16::try_from(per).map_err(|_| too_many())?,
        })
    }

    /// Steps in the bar.
    pub fn steps(self) -> usize {
        usize::from(self.groups) * usize::from(self.per)
    }

    /// Writes step symbols as a bar line (without a newline): a `.` between the steps of a
    /// word, a space between words. `steps` should hold [`steps`](Layout::steps) symbols.
    pub fn write(self, steps: &[&str], out: &mut String) {
        for (i, s) in steps.iter().enumerate() {
            if i > 0 {
                out.push(if i % usize::from(self.per.max(1)) == 0 { ' ' } else { '.' });
            }
            out.push_str(s);
        }
    }
}

/// A bar line cut into its marks and step symbols, without reading the symbols.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BarSteps<'a> {
    /// The meter mark (`3/4`) the line starts with, if any, unparsed.
    pub meter: Option<&'a str>,
    /// The tempo mark's BPM (`q=96` gives `96`), if any, unparsed.
    pub tempo: Option<&'a str>,
    /// The line's shape: its words and steps per word.
    pub layout: Layout,
    /// The slot of every step, in order: `Kh`, `ss`, `` (a rest), `h+2`.
    pub steps: Vec<&'a str>,
}

/// Cuts a bar line into its step symbols: the splitting half of a decode, for models that
/// work step by step. Marks (`N/D`, `q=BPM`) before the first word are set aside. Returns
/// `None` when the words do not all hold the same number of steps, so the line has no
/// layout; whether each symbol is a step is for [`BeatOptions::parse_step`] to say.
///
/// ```
/// use fine_drums_codec::beat::{Layout, split_bar};
///
/// let bar = split_bar("3/4 Kh..h. Sh..h. h.Kh.h.ss").expect("a bar");
/// assert_eq!(bar.meter, Some("3/4"));
/// assert_eq!(bar.layout, Layout { groups: 3, per: 4 });
/// assert_eq!(bar.steps[..4], ["Kh", "", "h", ""]);
/// let mut line = String::new();
/// bar.layout.write(&bar.steps, &mut line);
/// assert_eq!(line, "Kh..h. Sh..h. h.Kh.h.ss");
/// ```
pub fn split_bar(line: &str) -> Option<BarSteps<'_>> {
    let words: Vec<&str> = line.split(' ').collect();
    let (mut meter, mut tempo) = (None, None);
    // Marks lead a bar, and a bar is never marks alone.
    let mut first = 0;
    while first + 1 < words.len() {
        let w = words[first];
        if let Some(bpm) = w.strip_prefix("q=") {
            tempo = Some(bpm);
        } else if w.contains('/') {
            meter = Some(w);
        } else {
            break;
        }
        first += 1;
    }
    let words = &words[first..];
    let per = words.first()?.split('.').count();
    let mut steps = Vec::with_capacity(per * words.len());
    for w in words {
        let before = steps.len();
        steps.extend(w.split('.'));
        if steps.len() - before != per {
            return None;
        }
    }
    let layout = Layout { groups: u16::try_from(words.len()).ok()?, per: u16::try_from(per).ok()? };
    Some(BarSteps { meter, tempo, layout, steps })
}

/// One step of the beat format read as hits: what one slot of a bar line says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Step {
    /// The voices struck, in voice order, each with its velocity level (1 to the format's
    /// levels).
    pub hits: Vec<(Voice, u8)>,
    /// The microtiming offset in divisions of a step (0 without microtiming).
    pub offset: i8,
}

impl BeatOptions {
    /// Reads one step symbol (`Kh`, `ss`, `` for a rest, `h+2`) under these settings.
    /// Any symbol that [`write_step`](BeatOptions::write_step) writes reads back, including
    /// combinations never seen in any data.
    ///
    /// ```
    /// use fine_drums_codec::beat::{BeatOptions, Step};
    /// use fine_drums_codec::{Voice, VoiceMap};
    ///
    /// let beat = BeatOptions::default();
    /// let step = beat.parse_step("Kssh")?; // accented kick, ghost snare, hi-hat
    /// let kick = VoiceMap::Gmd9.voice_of_letter(b'k').expect("a kick");
    /// assert_eq!(step.hits[0], (kick, 3)); // an accent
    /// let mut text = String::new();
    /// beat.write_step(&step, &mut text);
    /// assert_eq!(text, "Kssh");
    /// assert!(beat.parse_step("K+1").is_err()); // microtiming is off
    /// # Ok::<(), fine_drums_codec::Error>(())
    /// ```
    pub fn parse_step(&self, symbol: &str) -> Result<Step> {
        self.check()?;
        let spell = Spelling::new(self, 480);
        let slots = Slots { options: self, spell: &spell, tpq: 480, n: 1, line: symbol };
        let mut hits = Vec::new();
        let mut i = 0;
        slots.slot(&mut i, 0, &mut hits)?;
        if i != symbol.len() {
            return Err(Error::syntax(
                1,
                column(symbol, i),
                format!("{:?} is not part of a step", &symbol[i..]),
            ));
        }
        let units = match (self.microtiming, hits.first()) {
            (Some(r), Some(h)) => units_of_offset(h.offset, r, self.grid, 480),
            _ => 0,
        };
        Ok(Step {
            hits: hits.iter().map(|h| (h.voice, self.levels.level(h.velocity))).collect(),
            offset: units as i8,
        })
    }

    /// Writes one step as the beat format spells it, after what `out` holds. Hits are
    /// written in the order given; voices without a letter are written as `?`.
    pub fn write_step(&self, step: &Step, out: &mut String) {
        let letters = Letters::new(self);
        let mut bytes = Vec::with_capacity(4 * step.hits.len() + 4);
        for &(voice, level) in &step.hits {
            let hit =
                Hit { step: 0, offset: 0, voice, velocity: self.levels.velocity(level), length: 0 };
            letters.push(&mut bytes, &hit);
        }
        if self.microtiming.is_some() && step.offset != 0 {
            let _ = write!(bytes, "{:+}", step.offset);
        }
        out.extend(bytes.iter().map(|&b| char::from(b)));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{BeatOptions, encode_with};
    use crate::groove::{Bar, Groove, Hit, hit_key};
    use crate::primitive::Velocity;
    use crate::units::{Grid, Levels, Meter};
    use crate::voice::{Voice, VoiceMap};

    /// Bars of hits in bar order, some past the bar's last step and some on voices the map
    /// does not have.
    fn arb_groove() -> impl Strategy<Value = Groove> {
        let hit = (0u32..20, -50i32..50, 0u8..18, 1u8..128).prop_map(|(step, offset, v, vel)| {
            Hit { step, offset, voice: Voice::new(v), velocity: Velocity::new(vel), length: 60 }
        });
        let bar =
            (prop::sample::select(vec![(4, 4), (3, 4), (6, 8)]), prop::collection::vec(hit, 0..30))
                .prop_map(|((n, d), mut hits)| {
                    hits.sort_by_key(hit_key);
                    Bar { meter: Meter::new(n, d).unwrap(), tempos: Vec::new(), hits }
                });
        prop::collection::vec(bar, 1..5).prop_map(|bars| {
            let mut g = Groove::new(480, Grid::SIXTEENTH, VoiceMap::Gmd9);
            g.bars = bars;
            g
        })
    }

    proptest! {
        /// The one-pass encoder writes what quantising and spelling hit by hit writes.
        #[test]
        fn one_pass_encode_is_the_general_encode(
            g in arb_groove(),
            levels in 1u8..=3,
            paper6 in any::<bool>(),
            header in any::<bool>(),
        ) {
            let options = BeatOptions {
                levels: Levels::new(levels).unwrap(),
                voices: if paper6 { VoiceMap::Paper6 } else { VoiceMap::Gmd9 },
                header,
                ..BeatOptions::default()
            };
            let g = if paper6 { g.with_voices(VoiceMap::Paper6).unwrap() } else { g };
            prop_assert_eq!(encode_with(&g, &options, true).unwrap(), encode_with(&g, &options, false).unwrap());
        }
    }
}
