//! Reading a Standard MIDI File into a groove.

use midly::{Format, Timing};

use crate::chunk::{check_chunks, header_timing};
use crate::error::{Error, Position, Result, Standard};
use crate::groove::{Groove, Limits};
use crate::placement::{Builder, Note};
use crate::primitive::{Channel, Pitch, Velocity};
use crate::smf::{Event, Events};
use crate::units::{Grid, Meter, Tempo};
use crate::voice::VoiceMap;

/// The last tick a file may reach: about 2.5 years of 4/4 at 120 BPM and 480 ticks per quarter.
const MAX_TICK: u64 = u32::MAX as u64;

/// Pairs the notes of each pitch as one merged track would: the n-th note to start gets the
/// n-th release. A note nested inside another of its pitch (possible only across the tracks of
/// a format 1 file) cannot be written into one track any other way. `notes` is in tick order.
fn pair_first_in_first_out(notes: &mut [Note]) {
    let mut by_pitch: Vec<Vec<usize>> = vec![Vec::new(); 128];
    for (i, n) in notes.iter().enumerate() {
        by_pitch[n.pitch.as_int() as usize].push(i);
    }
    for idx in by_pitch.iter().filter(|v| v.len() > 1) {
        let mut ends: Vec<u64> =
            idx.iter().map(|&i| notes[i].tick + u64::from(notes[i].length)).collect();
        ends.sort_unstable();
        for (&i, end) in idx.iter().zip(ends) {
            notes[i].length = (end - notes[i].tick) as u32;
        }
    }
}

/// Notes waiting for their release, first in first out per pitch, as links through the
/// indices of the notes read so far (no allocation per pitch).
struct Unreleased {
    head: [u32; 128],
    tail: [u32; 128],
    next: Vec<u32>,
}

/// No note: the end of a pitch's links.
const NONE: u32 = u32::MAX;

impl Unreleased {
    fn with_capacity(notes: usize) -> Unreleased {
        Unreleased { head: [NONE; 128], tail: [NONE; 128], next: Vec::with_capacity(notes) }
    }

    /// Note `i` of `pitch` started; `i` is one past every index pushed before.
    #[inline]
    fn push(&mut self, pitch: u8, i: usize) {
        let p = usize::from(pitch);
        debug_assert_eq!(self.next.len(), i);
        self.next.push(NONE);
        match self.tail[p] {
            NONE => self.head[p] = i as u32,
            t => self.next[t as usize] = i as u32,
        }
        self.tail[p] = i as u32;
    }

    /// The earliest unreleased note of `pitch`, now released.
    #[inline]
    fn pop(&mut self, pitch: u8) -> Option<usize> {
        let p = usize::from(pitch);
        let i = self.head[p];
        if i == NONE {
            return None;
        }
        self.head[p] = self.next[i as usize];
        if self.head[p] == NONE {
            self.tail[p] = NONE;
        }
        Some(i as usize)
    }

    /// Releases every note still open.
    fn drain(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        for p in 0..128u8 {
            while let Some(i) = self.pop(p) {
                out.push(i);
            }
        }
        out
    }
}

/// How [`read`] interprets a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// The channel whose notes are the drums. Default: 10.
    pub channel: Channel,
    /// The step grid hits are placed on. Default: 16ths.
    pub grid: Grid,
    /// Which pitches are kept and how they are grouped. Default: `gmd9`.
    pub voices: VoiceMap,
    /// A meter to use instead of the file's time signatures. Default: `None` (the file's; 4/4
    /// when it names none).
    pub meter: Option<Meter>,
    /// Bounds on bars and hits. Default: [`Limits::default`].
    pub limits: Limits,
    /// Whether to read two departures from the standard that players accept: bytes after the
    /// last track that are not a chunk (ignored), and running status continued after a meta or
    /// system exclusive event (which the standard says cancels it). A strict read refuses
    /// both, naming the byte. Default: `false`.
    pub lenient: bool,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            channel: Channel::DRUMS,
            grid: Grid::SIXTEENTH,
            voices: VoiceMap::Gmd9,
            meter: None,
            limits: Limits::default(),
            lenient: false,
        }
    }
}

impl ReadOptions {
    /// The options that keep every note exactly: the `full` voice map.
    pub fn lossless() -> ReadOptions {
        ReadOptions { voices: VoiceMap::Full, ..ReadOptions::default() }
    }
}

/// What [`read_with_report`] saw besides the groove.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadReport {
    /// Notes on the drum channel, per pitch, that the voice map kept.
    pub kept: [u32; 128],
    /// Notes on the drum channel, per pitch, that the voice map dropped.
    pub dropped: [u32; 128],
    /// Notes on other channels (ignored).
    pub other_channels: usize,
    /// Controller messages on the drum channel, such as the hi-hat pedal's CC4 (ignored).
    pub controllers: usize,
}

impl ReadReport {
    /// Notes kept in all.
    pub fn kept_total(&self) -> u64 {
        self.kept.iter().map(|&n| u64::from(n)).sum()
    }

    /// Notes dropped in all.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|&n| u64::from(n)).sum()
    }
}

/// Reads the drum groove of a Standard MIDI File.
///
/// Time signatures that fall inside a bar take effect at the next bar line; several tempo
/// events on one tick keep the last. A note that is never released ends where its track does.
/// The groove runs to the file's end: the silent bars between the last note and the latest
/// end of track are kept, up to the last bar line the end reaches.
pub fn read(bytes: &[u8], options: &ReadOptions) -> Result<Groove> {
    read_with_report(bytes, options).map(|(g, _)| g)
}

/// Why channel `wanted` gives no drums: a GS or XG message made it a melodic part, or it has
/// no notes (and `others`, bit c for channel c + 1, have). Out of the read loop's function, so
/// that the hot path stays small enough to keep its callees inlined.
#[cold]
#[inline(never)]
fn no_drums(wanted: u8, parts: &[Option<(bool, Standard, u64)>; 16], others: u16) -> Error {
    if let Some((false, standard, tick)) = parts[usize::from(wanted - 1)] {
        let drums = (0..16u8).filter(|&c| matches!(parts[usize::from(c)], Some((true, ..))));
        return Error::DrumPart {
            channel: wanted,
            standard,
            tick,
            drums: drums.map(|c| c + 1).collect(),
        };
    }
    let others = (0..16u8).filter(|c| others & (1 << c) != 0).map(|c| c + 1).collect();
    Error::NoDrums { channel: wanted, others }
}

/// A time signature whose denominator (stored as a power of two) is past 2^6 = 64, the
/// largest a meter takes (2^8 would not fit a byte). Out of the read loop: it is never hot.
#[cold]
#[inline(never)]
fn huge_denominator(at: Position, n: u8, d: u8) -> Error {
    let message = format!(
        "a time signature of {n}/2^{d}: its denominator is stored as a power of two, and 2^6 = 64 is the largest a meter takes (--meter N/D reads the file in another)"
    );
    midi_err(at, Message(message))
}

/// Keeps what a system exclusive message at `tick` says of a part's drum mode (out of the
/// read loop, which it would otherwise make slower for the files without any).
#[inline(never)]
fn note_drum_part(data: &[u8], tick: u64, parts: &mut [Option<(bool, Standard, u64)>; 16]) {
    if let Some((channel, drums, standard)) = drum_part(data) {
        parts[usize::from(channel)] = Some((drums, standard, tick));
    }
}

/// What a GS or XG system exclusive message says of a part's drum mode: `(channel from 0,
/// whether it is a drum part, the standard)`. GS: `41 dev 42 12 40 1x 15 mode`, where block
/// `x` is part 10 for 0, parts 1 to 9 for 1 to 9 and parts 11 to 16 for A to F, and mode 0 is
/// a melodic part; XG: `43 1n 4C 08 part 07 mode`, mode 0 melodic.
fn drum_part(data: &[u8]) -> Option<(u8, bool, Standard)> {
    match data {
        [0x41, _, 0x42, 0x12, 0x40, block, 0x15, mode, ..] if block & 0xF0 == 0x10 => {
            let channel = match block & 0x0F {
                0 => 9,
                x @ 1..=9 => x - 1,
                x => x,
            };
            Some((channel, *mode != 0, Standard::Gs))
        }
        [0x43, device, 0x4C, 0x08, part, 0x07, mode, ..] if device & 0xF0 == 0x10 && *part < 16 => {
            Some((*part, *mode != 0, Standard::Xg))
        }
        _ => None,
    }
}

fn midi_err(at: Position, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Midi { at, source: Box::new(e) }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Message(String);

/// Like [`read`], and also says which notes were kept and dropped.
pub fn read_with_report(bytes: &[u8], options: &ReadOptions) -> Result<(Groove, ReadReport)> {
    if bytes.is_empty() {
        return Err(midi_err(Position::HEADER, Message("the file is empty".into())));
    }
    // SMPTE timing stores minus the frames per second in a signed byte; midly negates it,
    // which overflows for -128 (a panic where overflow is checked). No rate is -128 fps.
    // A header chunk after the first is checked as the chunks are framed (below), or here
    // for a RIFF file.
    if header_timing(bytes).is_some_and(|[fps, _]| fps == 0x80)
        || (bytes.starts_with(b"RIFF") && crate::chunk::riff_has_minus_128_header(bytes))
    {
        return Err(midi_err(Position::HEADER, Message(crate::chunk::MINUS_128.into())));
    }
    let mut bytes = bytes;
    if bytes.starts_with(b"MThd") {
        let framing = check_chunks(bytes).map_err(|e| {
            let at = if e.index == 0 { Position::HEADER } else { Position::track(e.index - 1) };
            midi_err(at.at_byte(e.byte), e)
        })?;
        if let Some(at) = framing.trailing {
            if !options.lenient {
                let count = (bytes.len() - at) as u64;
                return Err(Error::TrailingBytes { byte: at as u64, count });
            }
            bytes = &bytes[..at];
        }
    }
    let (header, tracks) = midly::parse(bytes).map_err(|e| midi_err(Position::HEADER, e))?;
    let tpq = match header.timing {
        Timing::Metrical(t) => t.as_int(),
        Timing::Timecode(fps, subframes) => {
            return Err(Error::Smpte { fps: fps.as_int(), subframes });
        }
    };
    let drums = options.channel.index();
    let (note_on, note_off, controller) = (0x90 | drums, 0x80 | drums, 0xB0 | drums);
    let mut voice_of = [false; 128];
    for (p, kept) in voice_of.iter_mut().enumerate() {
        *kept = options.voices.voice_of(Pitch::new(p as u8)).is_some();
    }
    let mut report =
        ReadReport { kept: [0; 128], dropped: [0; 128], other_channels: 0, controllers: 0 };
    // A drum note takes 6 bytes or more (a note-on and a note-off with running status); the
    // Groove MIDI Dataset has one per 12 bytes. Room for one per 8 bytes covers it without
    // reserving far beyond it; denser files grow the lists as before.
    let expected = (bytes.len() / 8).min(options.limits.max_hits);
    let mut notes: Vec<Note> = Vec::with_capacity(expected);
    let mut tempos: Vec<(u64, Tempo)> = Vec::new();
    let mut meters: Vec<(u64, Meter)> = Vec::new();
    // Channels with note-ons other than the drums' (bit c for channel c + 1), and what GS or
    // XG messages said of each channel's drum mode: `(drums, standard, tick)`.
    let mut others = 0u16;
    let mut parts: [Option<(bool, Standard, u64)>; 16] = [None; 16];
    let mut open = Unreleased::with_capacity(expected);
    let sequential = header.format == Format::Sequential;
    let mut track_start = 0u64;
    // The last track's end (its last event, the end-of-track event in a well-formed file).
    let mut end = 0u64;
    let mut track_count = 0;
    for (t, track) in tracks.enumerate() {
        track_count += 1;
        let track = track.map_err(|e| midi_err(Position::track(t), e))?;
        let data = track.unread();
        // Where the track's data starts in the file (midly's slices point into `bytes`).
        let base = (data.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
        let mut events = Events::new(data, options.lenient);
        let mut tick = track_start;
        let mut e = 0;
        while let Some(event) = events.next_event() {
            let (delta, event) = event.map_err(|err| {
                let at = Position::event(t, e);
                let at = if base < bytes.len() { at.at_byte(base + err.offset) } else { at };
                midi_err(at, err)
            })?;
            tick += u64::from(delta);
            if tick > MAX_TICK {
                return Err(Error::TickOverflow { track: t, event: e, tick });
            }
            match event {
                Event::Channel { status, data: [key, vel] } => {
                    if status == note_on && vel > 0 {
                        if !voice_of[usize::from(key)] {
                            report.dropped[usize::from(key)] += 1;
                        } else {
                            if notes.len() >= options.limits.max_hits {
                                return Err(Error::Limit {
                                    what: "hits",
                                    limit: options.limits.max_hits as u64,
                                });
                            }
                            report.kept[usize::from(key)] += 1;
                            open.push(key, notes.len());
                            notes.push(Note {
                                tick,
                                pitch: Pitch::new(key),
                                velocity: Velocity::new(vel),
                                length: u32::MAX,
                            });
                        }
                    } else if status == note_on || status == note_off {
                        if let Some(i) = open.pop(key) {
                            notes[i].length = (tick - notes[i].tick) as u32;
                        }
                    } else if status == controller {
                        report.controllers += 1;
                    } else if status & 0xF0 == 0x90 {
                        report.other_channels += 1;
                        others |= 1 << (status & 0x0F);
                    }
                }
                Event::Meta { kind: 0x51, data: &[a, b, c, ..] } => {
                    let micros = u32::from_be_bytes([0, a, b, c]);
                    let tempo = Tempo::from_micros(micros)
                        .map_err(|err| midi_err(Position::event(t, e), err))?;
                    tempos.push((tick, tempo));
                }
                Event::Meta { kind: 0x58, data: &[n, d, _, _, ..] } => {
                    if d > 6 {
                        return Err(huge_denominator(Position::event(t, e), n, d));
                    }
                    let meter = Meter::new(n, 1u8 << d)
                        .map_err(|err| midi_err(Position::event(t, e), err))?;
                    meters.push((tick, meter));
                }
                Event::SysEx { data } => note_drum_part(data, tick, &mut parts),
                _ => {}
            }
            e += 1;
        }
        for i in open.drain() {
            notes[i].length = (tick - notes[i].tick) as u32;
        }
        end = end.max(tick);
        if sequential {
            track_start = tick;
        }
    }
    let wanted = options.channel.as_int();
    if notes.is_empty() || matches!(parts[usize::from(wanted - 1)], Some((false, ..))) {
        return Err(no_drums(wanted, &parts, others));
    }
    // Tracks of a format 1 file interleave: put everything in time order (stable, so that
    // of two tempo events on one tick the later one wins).
    if !notes.is_sorted_by_key(|n| n.tick) {
        notes.sort_by_key(|n| n.tick);
    }
    if track_count > 1 {
        pair_first_in_first_out(&mut notes);
    }
    tempos.sort_by_key(|&(tick, _)| tick);
    meters.sort_by_key(|&(tick, _)| tick);
    if let Some(m) = options.meter {
        meters = vec![(0, m)];
    }
    let first =
        meters.first().filter(|&&(tick, _)| tick == 0).map_or(Meter::FOUR_FOUR, |&(_, m)| m);
    let mut builder = Builder::new(tpq, options.grid, first, meters, options.limits)?;
    builder.reserve(end, notes.len());
    if tempos.first().is_none_or(|&(tick, _)| tick > 0) {
        builder.tempo(0, Tempo::DEFAULT)?;
    }
    for (tick, tempo) in tempos {
        builder.tempo(tick, tempo)?;
    }
    for n in &notes {
        if let Some(v) = options.voices.voice_of(n.pitch) {
            builder.hit(n.tick, v, n.velocity, n.length)?;
        }
    }
    builder.extend_to_end(end)?;
    Ok((builder.finish(options.voices), report))
}
