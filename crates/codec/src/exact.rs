//! The lossless format: every note's tick, pitch, velocity and length, every tempo and meter.
//!
//! ```text
//! #exact tpq=480 grid=16 map=full
//! m=4/4 t=0:500000 0:36:101:60 0:42:88:45 240:42:60:40
//! 0:38:112:52 -3:42:70:45
//! ```
//!
//! One line per bar. A hit is `TICK:PITCH:VELOCITY:LENGTH`, its tick counted from the bar's
//! start (negative when it was played just before the bar line). `m=N/D` marks the meter on
//! the first bar and where it changes; `t=TICK:MICROSECONDS` is a tempo change. An empty line
//! is an empty bar.
//!
//! What it does not keep: a groove is made of bars, each in one meter, so a time signature
//! that a MIDI file changes in the middle of a bar takes effect at the next bar line when the
//! file is read (and every format, this one included, writes it there). A note may last at
//! most [`MAX_LENGTH`] ticks, the longest gap a MIDI file can hold between two events. Every
//! other note, tempo and tick is kept, and so is the bar count (silent bars at the end included).

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::groove::{Context, Groove, Limits};
use crate::placement::Builder;
use crate::primitive::{Pitch, Velocity};
use crate::text::{
    Lenient, Mode, TextFormat, check_bars, column, header_fields, header_tpq, lines, sealed,
};
use crate::units::{Grid, Meter, Tempo};
use crate::voice::VoiceMap;

/// Settings of the exact format: only the bounds of a decode, since the format keeps
/// everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExactOptions {
    /// Bounds on what a decode accepts. Default: [`Limits::default`].
    pub limits: Limits,
}

impl ExactOptions {
    /// The default settings, as a constant.
    pub const DEFAULT: ExactOptions = ExactOptions { limits: Limits::DEFAULT };
}

impl Default for ExactOptions {
    fn default() -> ExactOptions {
        ExactOptions::DEFAULT
    }
}

impl sealed::Sealed for ExactOptions {}

impl TextFormat for ExactOptions {
    fn name(&self) -> &'static str {
        "exact"
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Encodes a groove without loss.
    fn encode(&self, groove: &Groove) -> Result<String> {
        encode(groove)
    }

    /// Decodes the exact format: strictly, or leniently dropping the lines that do not parse.
    fn decode_with(&self, text: &str, context: &Context, mode: Mode) -> Result<Lenient> {
        run(text, context, mode, self.limits)
    }

    /// The groove itself: the format keeps everything.
    fn quantise(&self, groove: &Groove) -> Result<Groove> {
        Ok(groove.clone())
    }
}

fn encode(groove: &Groove) -> Result<String> {
    let tpq = groove.ticks_per_quarter;
    let mut out = String::with_capacity(groove.hit_count() * 14 + groove.bars.len() + 48);
    let _ = writeln!(out, "#exact tpq={tpq} grid={} map={}", groove.grid, groove.voices);
    let mut meter = None;
    for (b, bar) in groove.bars.iter().enumerate() {
        let mut sep = "";
        if meter != Some(bar.meter) {
            meter = Some(bar.meter);
            let _ = write!(out, "m={}", bar.meter);
            sep = " ";
        }
        for t in &bar.tempos {
            let _ = write!(out, "{sep}t={}:{}", t.tick, t.tempo.micros());
            sep = " ";
        }
        for h in &bar.hits {
            if h.length > MAX_LENGTH {
                let why = format!(
                    "a note in bar {} lasts {} ticks, longer than the exact format holds ({MAX_LENGTH})",
                    b + 1,
                    h.length
                );
                return Err(Error::invalid("note length", why));
            }
            let tick = groove.grid.step_tick(h.step, tpq) + i64::from(h.offset);
            let pitch = groove.voices.pitch_of(h.voice).as_int();
            let _ = write!(out, "{sep}{tick}:{pitch}:{}:{}", h.velocity.as_int(), h.length);
            sep = " ";
        }
        out.push('\n');
    }
    Ok(out)
}

enum Item {
    Tempo(u64, Tempo),
    Note(u64, Pitch, Velocity, u32),
}

fn run(text: &str, context: &Context, mode: Mode, limits: Limits) -> Result<Lenient> {
    let mut tpq = context.ticks_per_quarter;
    let mut grid = Grid::SIXTEENTH;
    let mut voices = VoiceMap::Full;
    let mut meter = context.meter;
    let mut first_meter = None;
    let mut meters = Vec::new();
    let mut items = Vec::new();
    let mut dropped = Vec::new();
    let mut start = 0u64;
    let mut bars = 0usize;
    for (n, raw) in lines(text) {
        let line = if mode == Mode::Lenient { raw.trim() } else { raw };
        if n == 1 && line.starts_with('#') {
            // Read into copies, kept only if the whole line reads.
            let header = (|| -> Result<(u16, Grid, VoiceMap)> {
                let (mut tpq, mut grid, mut voices) = (tpq, grid, voices);
                for field in header_fields(n, line, "exact")? {
                    let (key, value, col) = field?;
                    let bad = |e: Error| Error::syntax(n, col, e);
                    match key {
                        "tpq" => {
                            tpq = header_tpq(n, col, value)?;
                        }
                        "grid" => grid = value.parse().map_err(bad)?,
                        "map" => voices = value.parse().map_err(bad)?,
                        _ => {
                            return Err(Error::syntax(
                                n,
                                col,
                                format!("unknown header field {key:?}"),
                            ));
                        }
                    }
                }
                Ok((tpq, grid, voices))
            })();
            match header {
                Ok(read) => {
                    (tpq, grid, voices) = read;
                    continue;
                }
                Err(e) if mode == Mode::Strict => return Err(e),
                Err(e) => {
                    dropped.push(e);
                    continue;
                }
            }
        }
        check_bars(bars, &limits)?;
        let mark = items.len();
        match parse_line(n, line, tpq, start, &mut meter, &mut items) {
            Ok(()) => {
                first_meter.get_or_insert(meter);
                meters.push((start, meter));
                start += u64::from(meter.bar_ticks(tpq).map_err(|e| Error::syntax(n, 1, e))?);
                bars += 1;
            }
            Err(e) if mode == Mode::Strict => return Err(e),
            Err(e) => {
                items.truncate(mark);
                dropped.push(e);
            }
        }
    }
    let mut b = Builder::new(tpq, grid, first_meter.unwrap_or(context.meter), meters, limits)?;
    for item in items {
        match item {
            Item::Tempo(tick, t) => b.tempo(tick, t)?,
            Item::Note(tick, p, v, len) => {
                if let Some(voice) = voices.voice_of(p) {
                    b.hit(tick, voice, v, len)?;
                }
            }
        }
    }
    if bars > 0 {
        b.ensure(bars - 1)?;
    }
    let mut groove = b.finish(voices);
    groove.bars.truncate(bars);
    Ok(Lenient { groove, dropped })
}

/// The longest note the exact format holds: the largest delta time of a MIDI file
/// (0x0FFFFFFF ticks), so that a note alone in its file can always be written.
pub const MAX_LENGTH: u32 = 0x0FFF_FFFF;

fn parse_line(
    n: usize,
    line: &str,
    tpq: u16,
    start: u64,
    meter: &mut Meter,
    items: &mut Vec<Item>,
) -> Result<()> {
    for word in line.split(' ').filter(|w| !w.is_empty()) {
        let at = word.as_ptr() as usize - line.as_ptr() as usize;
        let err = |msg: String| Error::syntax(n, column(line, at), msg);
        if let Some(m) = word.strip_prefix("m=") {
            *meter = m.parse().map_err(|e: Error| err(e.to_string()))?;
            meter.bar_ticks(tpq).map_err(|e| err(e.to_string()))?;
        } else if let Some(t) = word.strip_prefix("t=") {
            let (tick, micros) = t
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
                .ok_or_else(|| err(format!("expected t=TICK:MICROSECONDS, found {word:?}")))?;
            let tempo = Tempo::from_micros(micros).map_err(|e| err(e.to_string()))?;
            items.push(Item::Tempo(start + u64::from(tick), tempo));
        } else {
            let mut parts = word.split(':');
            let mut next = || parts.next().and_then(|p| p.parse::<i64>().ok());
            let parsed = (next(), next(), next(), next(), parts.next());
            let (Some(tick), Some(pitch), Some(vel), Some(len), None) = parsed else {
                return Err(err(format!("expected TICK:PITCH:VELOCITY:LENGTH, found {word:?}")));
            };
            // Each field checked on its own, so that the message names the one at fault.
            let abs = start as i64 + tick;
            if abs < 0 {
                return Err(err(format!("{word:?}: tick {tick} is before the start of the piece")));
            }
            if abs > i64::from(u32::MAX) {
                return Err(err(format!(
                    "{word:?}: tick {tick} is past the last tick a piece may have ({})",
                    u32::MAX
                )));
            }
            let p = u8::try_from(pitch).ok().and_then(|p| Pitch::try_from(p).ok()).ok_or_else(
                || err(format!("{word:?}: pitch {pitch} is not a MIDI note (0 to 127)")),
            )?;
            let v = u8::try_from(vel).ok().and_then(|v| Velocity::try_from(v).ok()).ok_or_else(
                || err(format!("{word:?}: velocity {vel} is not a note-on velocity (1 to 127)")),
            )?;
            let l = u32::try_from(len)
                .ok()
                .filter(|&l| l <= MAX_LENGTH)
                .ok_or_else(|| err(format!("{word:?}: length {len} is not 0 to {MAX_LENGTH}")))?;
            if abs + i64::from(l) > i64::from(u32::MAX) {
                return Err(err(format!(
                    "{word:?}: length {len} ends the note past the last tick a piece may have ({})",
                    u32::MAX
                )));
            }
            items.push(Item::Note(abs as u64, p, v, l));
        }
    }
    Ok(())
}
