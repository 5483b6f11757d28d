//! Standard MIDI Files in and out.
//!
//! [`read`] takes the bytes of any SMF (format 0, 1 or 2, any resolution, running status,
//! note-on with velocity 0 as note-off, tempo maps and meter changes) and returns the
//! [`Groove`] of one channel's drum notes. [`write()`] turns a groove back into a format 0 file.
//! Neither touches the file system.
//!
//! midly reads the file's header and frames its chunks (RIFF-wrapped files included). The
//! events inside a track chunk are read by the crate's own scanner, and files are written by
//! the crate's own writer: midly's typed event iterator and writer took 21 ms and 13 ms for
//! the Groove MIDI Dataset, beyond the codec's 18 ms budget for a whole round trip. Both are
//! tested against midly: the scanner must read exactly what midly reads from any track midly
//! writes, and midly must read back exactly what the writer writes.
//!
//! An event that breaks the SMF grammar (a cut message, a data byte with its top bit set, a
//! missing status) is an [`Error::Midi`] naming the track, the event and the byte; midly's
//! lenient reader would end the track there without a word.

use midly::{Format, Timing};

use crate::error::{Error, Result};
use crate::groove::{Builder, Grid, Groove, Limits, Meter, Note, Placement, Tempo};
use crate::primitive::{Channel, Pitch, Velocity};
use crate::smf::{Event, Events, Writer};
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
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            channel: Channel::DRUMS,
            grid: Grid::SIXTEENTH,
            voices: VoiceMap::Gmd9,
            meter: None,
            limits: Limits::default(),
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
pub fn read(bytes: &[u8], options: &ReadOptions) -> Result<Groove> {
    read_with_report(bytes, options).map(|(g, _)| g)
}

fn midi_err(at: String, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Midi { at, source: Box::new(e) }
}

fn at(track: usize, event: usize) -> String {
    format!("track {track}, event {event}")
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Message(String);

/// One chunk at the start of some bytes.
struct Chunk<'a> {
    id: &'a [u8],
    /// The length its header declares.
    declared: usize,
    /// Its data, cut short where the bytes end.
    data: &'a [u8],
    /// The bytes after it.
    rest: &'a [u8],
}

/// The chunk `raw` starts with (SMF chunks give their length big-endian, RIFF chunks
/// little-endian), or `None` if `raw` ends inside its 8-byte header.
fn chunk(raw: &[u8], little_endian: bool) -> Option<Chunk<'_>> {
    let len: [u8; 4] = raw.get(4..8)?.try_into().ok()?;
    let declared = if little_endian { u32::from_le_bytes(len) } else { u32::from_be_bytes(len) };
    let declared = declared as usize;
    let (data, rest) = raw[8..].split_at(declared.min(raw.len() - 8));
    Some(Chunk { id: &raw[..4], declared, data, rest })
}

/// Checks that every chunk's declared length fits in the file, which midly forgives.
fn check_chunks(bytes: &[u8]) -> Result<()> {
    let mut raw = bytes;
    let mut index = 0usize;
    while !raw.is_empty() {
        let what = if index == 0 { "header".to_string() } else { format!("track {}", index - 1) };
        let pos = bytes.len() - raw.len();
        let Some(c) = chunk(raw, false) else {
            return Err(midi_err(what, Message("file ends inside a chunk header".into())));
        };
        if c.data.len() < c.declared {
            return Err(midi_err(
                what,
                Message(format!(
                    "chunk at byte {pos} declares {} bytes but only {} remain: the file is truncated",
                    c.declared,
                    c.data.len()
                )),
            ));
        }
        raw = c.rest;
        index += 1;
    }
    Ok(())
}

/// The two timing bytes of a file's header, found where midly looks for them: the first
/// `MThd` chunk of the file or of a RIFF (RMID) file's `data` chunk, unknown chunks skipped.
fn header_timing(bytes: &[u8]) -> Option<[u8; 2]> {
    let mut raw = bytes;
    if bytes.starts_with(b"RIFF") {
        let mut rest = chunk(bytes, true)?.data.get(4..)?;
        raw = loop {
            let c = chunk(rest, true)?;
            if c.id == b"data" {
                break c.data;
            }
            // RIFF chunks of odd length carry a pad byte.
            rest = if c.data.len() % 2 == 1 { c.rest.get(1..).unwrap_or(c.rest) } else { c.rest };
        };
    }
    loop {
        let c = chunk(raw, false)?;
        match c.id {
            b"MThd" => return c.data.get(4..6)?.try_into().ok(),
            b"MTrk" => return None,
            _ => raw = c.rest,
        }
    }
}

/// Like [`read`], and also says which notes were kept and dropped.
pub fn read_with_report(bytes: &[u8], options: &ReadOptions) -> Result<(Groove, ReadReport)> {
    if bytes.is_empty() {
        return Err(midi_err("header".into(), Message("the file is empty".into())));
    }
    // SMPTE timing stores minus the frames per second in a signed byte; midly negates it,
    // which overflows for -128 (a panic where overflow is checked). No rate is -128 fps.
    if header_timing(bytes).is_some_and(|[fps, _]| fps == 0x80) {
        let why = "SMPTE timing at -128 frames per second, which is not a frame rate";
        return Err(midi_err("header".into(), Message(why.into())));
    }
    let (header, tracks) = midly::parse(bytes).map_err(|e| midi_err("header".into(), e))?;
    if bytes.starts_with(b"MThd") {
        check_chunks(bytes)?;
    }
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
    let mut open = Unreleased::with_capacity(expected);
    let sequential = header.format == Format::Sequential;
    let mut track_start = 0u64;
    let mut track_count = 0;
    for (t, track) in tracks.enumerate() {
        track_count += 1;
        let track = track.map_err(|e| midi_err(format!("track {t}"), e))?;
        let mut events = Events::new(track.unread());
        let mut tick = track_start;
        let mut e = 0;
        while let Some(event) = events.next_event() {
            let (delta, event) = event.map_err(|err| midi_err(at(t, e), err))?;
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
                    }
                }
                Event::Meta { kind: 0x51, data: &[a, b, c, ..] } => {
                    let micros = u32::from_be_bytes([0, a, b, c]);
                    let tempo =
                        Tempo::from_micros(micros).map_err(|err| midi_err(at(t, e), err))?;
                    tempos.push((tick, tempo));
                }
                Event::Meta { kind: 0x58, data: &[n, d, _, _, ..] } => {
                    let den = 1u32.checked_shl(u32::from(d)).unwrap_or(0);
                    let meter = Meter::new(n, u8::try_from(den).unwrap_or(0))
                        .map_err(|err| midi_err(at(t, e), err))?;
                    meters.push((tick, meter));
                }
                _ => {}
            }
            e += 1;
        }
        for i in open.drain() {
            notes[i].length = (tick - notes[i].tick) as u32;
        }
        if sequential {
            track_start = tick;
        }
    }
    if notes.is_empty() {
        return Err(Error::NoDrums { channel: options.channel.as_int() });
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
    builder.reserve(notes.last().map_or(0, |n| n.tick), notes.len());
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
    Ok((builder.finish(options.voices), report))
}

/// How [`write()`] lays out a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// The channel the drums are written on. Default: 10.
    pub channel: Channel,
}

impl Default for WriteOptions {
    fn default() -> WriteOptions {
        WriteOptions { channel: Channel::DRUMS }
    }
}

/// Writes a groove as a format 0 Standard MIDI File: its resolution, a time signature at
/// the first bar and wherever the meter changes, its tempo changes, and every hit as a
/// note-on and a note-off. The track ends at the end of the last bar.
pub fn write(groove: &Groove, options: &WriteOptions) -> Result<Vec<u8>> {
    let tpq = groove.ticks_per_quarter;
    if tpq == 0 || tpq > 0x7FFF {
        return Err(Error::invalid("resolution", format!("{tpq} ticks per quarter")));
    }
    let out = Out::new(groove, options)?;
    match out.write_in_order(groove)? {
        Some(bytes) => Ok(bytes),
        None => out.write_sorted(groove),
    }
}

/// Events go out by (tick, order): metas first (meter 0, tempo 1), then releases (2), then
/// hits (3), then zero-length releases (4). Each kind is a stream of keys `tick << 3 | order`
/// already in that order, ending in a sentinel that sorts last, and the streams are merged.
#[inline]
fn key(tick: u64, order: u64) -> u64 {
    tick << 3 | order
}

/// The key of the release of a note starting at `tick`: order 2, or 4 for a zero length.
#[inline]
fn release_key(tick: u64, length: u32) -> u64 {
    key(tick + u64::from(length), if length == 0 { 4 } else { 2 })
}

/// What both ways of writing a groove share: the channel, the meta events and the end.
struct Out {
    on: u8,
    off: u8,
    /// Meter and tempo events by key, then a sentinel.
    metas: Vec<(u64, [u8; 4])>,
    /// The tick after the last bar.
    end_of_bars: u64,
}

impl Out {
    fn new(groove: &Groove, options: &WriteOptions) -> Result<Out> {
        let tpq = groove.ticks_per_quarter;
        let mut metas: Vec<(u64, [u8; 4])> = Vec::new();
        let mut start = 0u64;
        let mut meter = None;
        for bar in &groove.bars {
            if meter != Some(bar.meter) {
                meter = Some(bar.meter);
                let d = bar.meter.denominator().trailing_zeros() as u8;
                metas.push((key(start, 0), [bar.meter.numerator(), d, 24, 8]));
            }
            start += u64::from(bar.meter.bar_ticks(tpq)?);
        }
        for (tick, tempo) in groove.tempo_map()? {
            let [_, a, b, c] = tempo.micros().to_be_bytes();
            metas.push((key(tick, 1), [a, b, c, 0]));
        }
        if !metas.is_sorted_by_key(|m| m.0) {
            metas.sort_by_key(|m| m.0);
        }
        metas.push((u64::MAX, [0; 4]));
        let drums = options.channel.index();
        Ok(Out { on: 0x90 | drums, off: 0x80 | drums, metas, end_of_bars: start })
    }

    #[inline]
    fn meta(&self, w: &mut Writer, m: usize) {
        let (k, data) = &self.metas[m];
        if k & 7 == 0 {
            w.meta(0x58, data);
        } else {
            w.meta(0x51, &data[..3]);
        }
    }

    /// Writes the hits as they come, bar by bar, holding only the releases still due. Gives
    /// `None` (and nothing is lost: the caller sorts instead) if the hits are not in time
    /// order, or if two notes of one pitch start on one tick longer first: readers pair a
    /// release with the earliest unreleased note of its pitch, so the shorter must start first.
    fn write_in_order(&self, groove: &Groove) -> Result<Option<Vec<u8>>> {
        let tpq = groove.ticks_per_quarter;
        let place = Placement::new(groove);
        let mut w = Writer::new(tpq, self.metas.len() + 2 * groove.hit_count());
        let mut due = Due::default();
        // The next meta event and the tick of the last event written.
        let (mut m, mut written) = (0, 0u64);
        // Per pitch, the tick and length of the last note that started.
        let mut last_start = [u64::MAX; 256];
        let mut last_length = [0u32; 256];
        let mut start = 0i64;
        let mut bar_ticks = (Meter::FOUR_FOUR, Meter::FOUR_FOUR.bar_ticks(tpq)?);
        for bar in &groove.bars {
            for h in &bar.hits {
                let (tick, p) = place.of(start, h);
                let pi = usize::from(p);
                if tick < written || (last_start[pi] == tick && h.length < last_length[pi]) {
                    return Ok(None);
                }
                (last_start[pi], last_length[pi]) = (tick, h.length);
                self.flush(&mut w, &mut due, &mut m, &mut written, key(tick, 3))?;
                w.message(delta(tick - written)?, self.on, p, h.velocity.as_int());
                written = tick;
                due.push(release_key(tick, h.length), p);
            }
            if bar.meter != bar_ticks.0 {
                bar_ticks = (bar.meter, bar.meter.bar_ticks(tpq)?);
            }
            start += i64::from(bar_ticks.1);
        }
        let end = due.last().map_or(self.end_of_bars, |k| (k >> 3).max(self.end_of_bars));
        self.flush(&mut w, &mut due, &mut m, &mut written, u64::MAX)?;
        w.delta(delta(end - written)?);
        w.meta(0x2F, &[]);
        w.finish().map(Some).ok_or_else(too_large)
    }

    /// Writes the metas (from `m`) and releases whose keys come before `until`; `written` is
    /// the tick of the last event written.
    #[inline(always)]
    fn flush(
        &self,
        w: &mut Writer,
        due: &mut Due,
        m: &mut usize,
        written: &mut u64,
        until: u64,
    ) -> Result<()> {
        loop {
            let (release, meta) = (due.next(), self.metas[*m].0);
            let next = release.min(meta);
            if next >= until {
                return Ok(());
            }
            let tick = next >> 3;
            let ticks = delta(tick - *written)?;
            *written = tick;
            if release < meta {
                w.message(ticks, self.off, due.pop(), 0);
            } else {
                w.delta(ticks);
                self.meta(w, *m);
                *m += 1;
            }
        }
    }

    /// Writes hits in any order: every note is placed and sorted first.
    fn write_sorted(&self, groove: &Groove) -> Result<Vec<u8>> {
        let mut notes = groove.notes()?;
        let (notes_sorted, mut offs, offs_sorted) = releases(&notes);
        if !notes_sorted {
            notes.sort_by_key(|n| (n.tick, n.pitch, n.length));
            (_, offs, _) = releases(&notes);
        }
        if !offs_sorted || !notes_sorted {
            offs.sort_by_key(|o| o.0);
        }
        let end = offs.last().map_or(self.end_of_bars, |&(k, _)| (k >> 3).max(self.end_of_bars));
        offs.push((u64::MAX, 0));
        let mut w = Writer::new(groove.ticks_per_quarter, self.metas.len() + 2 * notes.len());
        let (mut m, mut f, mut h) = (0, 0, 0);
        let mut last = 0u64;
        loop {
            let hit = notes.get(h).map_or(u64::MAX, |n| key(n.tick, 3));
            let next = self.metas[m].0.min(offs[f].0).min(hit);
            if next == u64::MAX {
                break;
            }
            let tick = next >> 3;
            let ticks = delta(tick - last)?;
            last = tick;
            if next == hit {
                let n = &notes[h];
                w.message(ticks, self.on, n.pitch.as_int(), n.velocity.as_int());
                h += 1;
            } else if next == offs[f].0 {
                w.message(ticks, self.off, offs[f].1, 0);
                f += 1;
            } else {
                w.delta(ticks);
                self.meta(&mut w, m);
                m += 1;
            }
        }
        w.delta(delta(end - last)?);
        w.meta(0x2F, &[]);
        w.finish().ok_or_else(too_large)
    }
}

/// Releases not yet written, as (key, pitch) in key order from `first`. Each new one nearly
/// always goes last, and the list empties whenever every note so far has ended.
#[derive(Default)]
struct Due {
    list: Vec<(u64, u8)>,
    first: usize,
}

impl Due {
    /// The key of the next release, or `u64::MAX` when none is due.
    #[inline(always)]
    fn next(&self) -> u64 {
        self.list.get(self.first).map_or(u64::MAX, |r| r.0)
    }

    /// The key of the last release, if any is due.
    fn last(&self) -> Option<u64> {
        self.list[self.first..].last().map(|r| r.0)
    }

    /// Takes the next release (there is one) and gives its pitch.
    #[inline(always)]
    fn pop(&mut self) -> u8 {
        let pitch = self.list[self.first].1;
        self.first += 1;
        if self.first == self.list.len() {
            self.list.clear();
            self.first = 0;
        }
        pitch
    }

    /// Adds a release, keeping the list in key order (after releases of an equal key).
    #[inline(always)]
    fn push(&mut self, release: u64, pitch: u8) {
        if self.list.last().is_none_or(|r| r.0 <= release) {
            self.list.push((release, pitch));
        } else {
            let at = self.first + self.list[self.first..].partition_point(|r| r.0 <= release);
            self.list.insert(at, (release, pitch));
        }
    }
}

fn too_large() -> Error {
    Error::invalid("MIDI output", "the track is larger than 4 GB")
}

/// The release of each note as ([`release_key`], pitch), and whether the notes are in
/// (tick, pitch, length) order and the releases in key order.
fn releases(notes: &[Note]) -> (bool, Vec<(u64, u8)>, bool) {
    let mut offs = Vec::with_capacity(notes.len() + 1);
    let (mut notes_sorted, mut offs_sorted) = (true, true);
    let (mut last_note, mut last_length, mut last_off) = (0u64, 0u32, 0u64);
    for n in notes {
        // Ticks stay below 2^40, so a tick and a pitch pack into one key.
        let note = n.tick << 8 | u64::from(n.pitch.as_int());
        notes_sorted &= last_note < note || (last_note == note && last_length <= n.length);
        (last_note, last_length) = (note, n.length);
        let off = release_key(n.tick, n.length);
        offs_sorted &= last_off <= off;
        last_off = off;
        offs.push((off, n.pitch.as_int()));
    }
    (notes_sorted, offs, offs_sorted)
}

fn delta(ticks: u64) -> Result<u32> {
    u32::try_from(ticks).ok().filter(|&t| t < 1 << 28).ok_or_else(|| {
        Error::invalid("MIDI output", format!("a gap of {ticks} ticks does not fit a delta time"))
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Out, ReadOptions, WriteOptions, read};
    use crate::groove::{Bar, Grid, Groove, Hit, Meter, TempoChange, hit_key};
    use crate::primitive::Velocity;
    use crate::voice::{Voice, VoiceMap};

    /// Grooves of 1 to 4 bars whose hits may be in any order, overlap, or share a tick and
    /// a pitch. When `sorted`, each bar's hits are in [`Bar`] order, with offsets of less
    /// than half a step as reading MIDI gives.
    fn arb_groove() -> impl Strategy<Value = (Groove, bool)> {
        let hit = (0u32..16, -60i32..60, 0u8..9, 1u8..128, 0u32..1000);
        let bar = (prop::collection::vec(hit, 0..24), any::<bool>());
        (prop::collection::vec(bar, 1..5), any::<bool>()).prop_map(|(bars, sorted)| {
            let mut g = Groove::new(480, Grid::SIXTEENTH, VoiceMap::Gmd9);
            for (i, (hits, four)) in bars.into_iter().enumerate() {
                let meter = if four { Meter::FOUR_FOUR } else { Meter::new(3, 4).unwrap() };
                let mut bar = Bar::new(meter);
                if i == 1 {
                    let tempo = crate::Tempo::from_bpm(90.0).unwrap();
                    bar.tempos.push(TempoChange { tick: 240, tempo });
                }
                let steps = meter.steps(Grid::SIXTEENTH).unwrap();
                bar.hits = hits
                    .into_iter()
                    .map(|(step, offset, voice, velocity, length)| Hit {
                        step: if sorted { step % steps } else { step },
                        offset,
                        voice: Voice::new(voice),
                        velocity: Velocity::new(velocity),
                        length,
                    })
                    .collect();
                if sorted {
                    bar.hits.sort_by_key(hit_key);
                }
                g.bars.push(bar);
            }
            (g, sorted)
        })
    }

    proptest! {
        /// Writing hits as they come gives the same notes as sorting them all first, and
        /// hits in bar order are written as they come unless two of one pitch start on one
        /// tick longer first.
        #[test]
        fn writing_in_order_is_writing_sorted((g, sorted) in arb_groove()) {
            let out = Out::new(&g, &WriteOptions::default()).unwrap();
            let general = out.write_sorted(&g).unwrap();
            let lossless = ReadOptions::lossless();
            match out.write_in_order(&g).unwrap() {
                Some(bytes) => {
                    prop_assert_eq!(read(&bytes, &lossless).ok(), read(&general, &lossless).ok());
                }
                None => {
                    let notes = g.notes().unwrap();
                    let conflict = notes.iter().enumerate().any(|(i, a)| {
                        notes[i + 1..].iter().any(|b| {
                            a.tick == b.tick && a.pitch == b.pitch && a.length > b.length
                        })
                    });
                    prop_assert!(!sorted || conflict, "bar-ordered hits were sorted again");
                }
            }
        }
    }
}
