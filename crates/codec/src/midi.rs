//! Standard MIDI Files in and out, through midly.
//!
//! [`read`] takes the bytes of any SMF (format 0, 1 or 2, any resolution, running status,
//! note-on with velocity 0 as note-off, tempo maps and meter changes) and returns the
//! [`Groove`] of one channel's drum notes. [`write()`] turns a groove back into a format 0 file.
//! Neither touches the file system.

use std::collections::VecDeque;

use midly::num::{u4, u7, u15, u24, u28};
use midly::{Format, Header, MetaMessage, MidiMessage, Timing, TrackEvent, TrackEventKind};

use crate::error::{Error, Result};
use crate::groove::{Builder, Grid, Groove, Limits, Meter, Note, Tempo};
use crate::primitive::{Channel, Pitch, Velocity};
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

/// Checks that every chunk's declared length fits in the file, which midly forgives.
fn check_chunks(bytes: &[u8]) -> Result<()> {
    let mut pos = 0usize;
    let mut index = 0usize;
    while pos < bytes.len() {
        let what = if index == 0 { "header".to_string() } else { format!("track {}", index - 1) };
        let Some(head) = bytes.get(pos..pos + 8) else {
            return Err(midi_err(what, Message("file ends inside a chunk header".into())));
        };
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let end = pos.saturating_add(8).saturating_add(len);
        if end > bytes.len() {
            return Err(midi_err(
                what,
                Message(format!(
                    "chunk at byte {pos} declares {len} bytes but only {} remain: the file is truncated",
                    bytes.len() - pos - 8
                )),
            ));
        }
        pos = end;
        index += 1;
    }
    Ok(())
}

/// Like [`read`], and also says which notes were kept and dropped.
pub fn read_with_report(bytes: &[u8], options: &ReadOptions) -> Result<(Groove, ReadReport)> {
    if bytes.is_empty() {
        return Err(midi_err("header".into(), Message("the file is empty".into())));
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
    let channel = u4::new(options.channel.index());
    let mut report =
        ReadReport { kept: [0; 128], dropped: [0; 128], other_channels: 0, controllers: 0 };
    let mut notes: Vec<Note> = Vec::new();
    let mut tempos: Vec<(u64, Tempo)> = Vec::new();
    let mut meters: Vec<(u64, Meter)> = Vec::new();
    let mut open: Vec<VecDeque<usize>> = vec![VecDeque::new(); 128];
    let sequential = header.format == Format::Sequential;
    let mut track_start = 0u64;
    let mut track_count = 0;
    for (t, track) in tracks.enumerate() {
        track_count += 1;
        let events = track.map_err(|e| midi_err(format!("track {t}"), e))?;
        let mut tick = track_start;
        for (e, event) in events.enumerate() {
            let event = event.map_err(|err| midi_err(at(t, e), err))?;
            tick += u64::from(event.delta.as_int());
            if tick > MAX_TICK {
                return Err(Error::TickOverflow { track: t, event: e, tick });
            }
            match event.kind {
                TrackEventKind::Midi { channel: c, message } if c == channel => match message {
                    MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                        let pitch = Pitch::new(key.as_int());
                        if options.voices.voice_of(pitch).is_none() {
                            report.dropped[pitch.as_int() as usize] += 1;
                            continue;
                        }
                        if notes.len() >= options.limits.max_hits {
                            return Err(Error::Limit {
                                what: "hits",
                                limit: options.limits.max_hits as u64,
                            });
                        }
                        report.kept[pitch.as_int() as usize] += 1;
                        open[pitch.as_int() as usize].push_back(notes.len());
                        notes.push(Note {
                            tick,
                            pitch,
                            velocity: Velocity::new(vel.as_int()),
                            length: u32::MAX,
                        });
                    }
                    MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                        if let Some(i) = open[key.as_int() as usize].pop_front() {
                            notes[i].length = (tick - notes[i].tick) as u32;
                        }
                    }
                    MidiMessage::Controller { .. } => report.controllers += 1,
                    _ => {}
                },
                TrackEventKind::Midi { message: MidiMessage::NoteOn { .. }, .. } => {
                    report.other_channels += 1;
                }
                TrackEventKind::Meta(MetaMessage::Tempo(micros)) => {
                    let tempo = Tempo::from_micros(micros.as_int())
                        .map_err(|err| midi_err(at(t, e), err))?;
                    tempos.push((tick, tempo));
                }
                TrackEventKind::Meta(MetaMessage::TimeSignature(n, d, _, _)) => {
                    let den = 1u32.checked_shl(u32::from(d)).unwrap_or(0);
                    let meter = Meter::new(n, u8::try_from(den).unwrap_or(0))
                        .map_err(|err| midi_err(at(t, e), err))?;
                    meters.push((tick, meter));
                }
                _ => {}
            }
        }
        for queue in &mut open {
            for i in queue.drain(..) {
                notes[i].length = (tick - notes[i].tick) as u32;
            }
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
    let tpq =
        u15::try_from(groove.ticks_per_quarter).filter(|t| t.as_int() > 0).ok_or_else(|| {
            Error::invalid("resolution", format!("{} ticks per quarter", groove.ticks_per_quarter))
        })?;
    let channel = u4::new(options.channel.index());
    // Events go out by (tick, order): metas first (meter 0, tempo 1), then releases (2),
    // then hits (3), then zero-length releases (4). Three streams, each already in that
    // order, are merged rather than sorted together: sorting every event was most of the
    // cost of writing.
    let mut metas: Vec<(u64, u8, TrackEventKind<'static>)> = Vec::new();
    let mut start = 0u64;
    let mut meter = None;
    for bar in &groove.bars {
        if meter != Some(bar.meter) {
            meter = Some(bar.meter);
            let d = bar.meter.denominator().trailing_zeros() as u8;
            metas.push((
                start,
                0,
                TrackEventKind::Meta(MetaMessage::TimeSignature(bar.meter.numerator(), d, 24, 8)),
            ));
        }
        start += u64::from(bar.meter.bar_ticks(groove.ticks_per_quarter)?);
    }
    let end_of_bars = start;
    for (tick, tempo) in groove.tempo_map()? {
        metas.push((tick, 1, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(tempo.micros())))));
    }
    metas.sort_by_key(|&(tick, order, _)| (tick, order));
    // Readers pair a release with the earliest unreleased note of its pitch, so of two notes
    // on one tick and pitch the shorter must start first.
    let mut notes = groove.notes()?;
    let key = |n: &Note| (n.tick, n.pitch, n.length);
    if !notes.is_sorted_by_key(key) {
        notes.sort_by_key(key);
    }
    let mut offs: Vec<(u64, u8, u7)> = notes
        .iter()
        .map(|n| {
            (
                n.tick + u64::from(n.length),
                if n.length == 0 { 4 } else { 2 },
                u7::new(n.pitch.as_int()),
            )
        })
        .collect();
    if !offs.is_sorted_by_key(|&(t, o, _)| (t, o)) {
        offs.sort_by_key(|&(t, o, _)| (t, o));
    }
    let end = offs.last().map_or(end_of_bars, |&(t, _, _)| t.max(end_of_bars));
    let mut events: Vec<TrackEvent<'static>> =
        Vec::with_capacity(metas.len() + 2 * notes.len() + 1);
    let (mut m, mut f, mut h) =
        (metas.iter().peekable(), offs.iter().peekable(), notes.iter().peekable());
    let mut last = 0u64;
    loop {
        let next_meta = m.peek().map(|&&(t, o, _)| (t, o));
        let next_off = f.peek().map(|&&(t, o, _)| (t, o));
        let next_hit = h.peek().map(|n| (n.tick, 3));
        let Some(first) = [next_meta, next_off, next_hit].into_iter().flatten().min() else {
            break;
        };
        let kind = if next_meta == Some(first) {
            m.next().map(|&(_, _, k)| k)
        } else if next_off == Some(first) {
            f.next().map(|&(_, _, key)| TrackEventKind::Midi {
                channel,
                message: MidiMessage::NoteOff { key, vel: u7::new(0) },
            })
        } else {
            h.next().map(|n| TrackEventKind::Midi {
                channel,
                message: MidiMessage::NoteOn {
                    key: u7::new(n.pitch.as_int()),
                    vel: u7::new(n.velocity.as_int()),
                },
            })
        };
        let Some(kind) = kind else { break };
        events.push(TrackEvent { delta: delta(first.0 - last)?, kind });
        last = first.0;
    }
    events.push(TrackEvent {
        delta: delta(end - last)?,
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    let header = Header::new(Format::SingleTrack, Timing::Metrical(tpq));
    let mut out = Vec::with_capacity(events.len() * 4 + 32);
    midly::write(&header, std::iter::once(&events), &mut out)
        .map_err(|e| Error::invalid("MIDI output", e))?;
    Ok(out)
}

fn delta(ticks: u64) -> Result<u28> {
    u32::try_from(ticks).ok().filter(|&t| t <= u28::max_value().as_int()).map(u28::new).ok_or_else(
        || {
            Error::invalid(
                "MIDI output",
                format!("a gap of {ticks} ticks does not fit a delta time"),
            )
        },
    )
}
