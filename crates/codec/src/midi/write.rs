//! Writing a groove as a Standard MIDI File.

use crate::error::{Error, Result};
use crate::groove::Groove;
use crate::placement::{Note, Placement};
use crate::primitive::Channel;
use crate::smf::Writer;
use crate::units::Meter;

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

    use super::{Out, WriteOptions};
    use crate::groove::{Bar, Groove, Hit, hit_key};
    use crate::midi::{ReadOptions, read};
    use crate::primitive::Velocity;
    use crate::units::{Grid, Meter, TempoChange};
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
