//! The events of a track chunk, read and written in one pass over bytes.
//!
//! midly frames a file (its header, RIFF wrapping and chunks; see the `midi` module); inside a
//! track chunk, this module walks the events itself. midly's own event iterator builds a full
//! typed event for every message, which on the Groove MIDI Dataset (1.4 million events, more
//! than a third of them hi-hat pedal controllers the codec ignores) cost more than the whole
//! round-trip budget. The scanner here reads the same grammar (Standard MIDI File 1.0,
//! running status included) and returns only what the codec looks at. The tests check it
//! against midly's iterator, and check [`Writer`]'s bytes against midly's parser.

use std::fmt;

/// One event of a track, without its delta time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    /// A channel message: the status byte (0x80 to 0xEF) and its data bytes (the second is 0
    /// for program change and channel pressure, which have one).
    Channel { status: u8, data: [u8; 2] },
    /// A meta event (status 0xFF): its type and data.
    Meta { kind: u8, data: &'a [u8] },
    /// A system exclusive message or an escape (status 0xF0 or 0xF7), and its data (after
    /// the status and length).
    SysEx { data: &'a [u8] },
}

/// Why a track's bytes are not a valid event stream, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScanError {
    /// Byte offset of the fault from the start of the track's data.
    pub offset: usize,
    /// What is wrong.
    pub what: &'static str,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (byte {} of the track data)", self.what, self.offset)
    }
}

impl std::error::Error for ScanError {}

/// The status bytes of channel messages with two data bytes: all but program change (0xC_)
/// and channel pressure (0xD_).
const TWO_DATA_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut s = 0x80;
    while s < 0xF0 {
        t[s] = s & 0xE0 != 0xC0;
        s += 1;
    }
    t
};

/// Reads the events of one track chunk's data.
pub(crate) struct Events<'a> {
    raw: &'a [u8],
    pos: usize,
    /// The running status, or 0 when there is none.
    running: u8,
    /// Whether running status continues after a meta or system exclusive event, as players
    /// allow (the standard cancels it there).
    keep_running: bool,
    /// Whether a meta or system exclusive event cancelled a running status.
    cancelled: bool,
}

impl<'a> Events<'a> {
    /// Events of a track chunk's data (the bytes after its 8-byte chunk header); running
    /// status continues after meta and system exclusive events if `keep_running`.
    pub fn new(raw: &'a [u8], keep_running: bool) -> Events<'a> {
        Events { raw, pos: 0, running: 0, keep_running, cancelled: false }
    }

    fn fail<T>(&self, what: &'static str) -> Result<T, ScanError> {
        Err(ScanError { offset: self.pos, what })
    }

    #[inline]
    fn byte(&mut self, what: &'static str) -> Result<u8, ScanError> {
        match self.raw.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.fail(what),
        }
    }

    /// A variable-length quantity: 1 to 4 bytes, 7 bits each, high bit set on all but the last.
    #[inline]
    fn varlen(&mut self) -> Result<u32, ScanError> {
        let mut value = 0u32;
        for _ in 0..4 {
            let b = self.byte("the track ends inside a variable-length number")?;
            value = (value << 7) | u32::from(b & 0x7F);
            if b < 0x80 {
                return Ok(value);
            }
        }
        self.fail("a variable-length number longer than 4 bytes")
    }

    #[inline]
    fn data_byte(&mut self) -> Result<u8, ScanError> {
        let b = self.byte("the track ends inside a channel message")?;
        if b >= 0x80 {
            self.pos -= 1;
            return self.fail("a channel message's data byte has its top bit set");
        }
        Ok(b)
    }

    fn bytes(&mut self, len: u32) -> Result<&'a [u8], ScanError> {
        let end = self.pos.saturating_add(len as usize);
        let Some(data) = self.raw.get(self.pos..end) else {
            return self.fail("the track ends inside a meta or system exclusive event");
        };
        self.pos = end;
        Ok(data)
    }

    /// The next event if it is the usual one of a drum track, a channel message with two data
    /// bytes and a one-byte delta time, as `(delta, status, data, data)`. `None` leaves the
    /// position where it was, for the general reader to read whatever comes (or fail).
    ///
    /// Whether the status byte is present or running changes from one event to the next, so
    /// this reads the four bytes it may need at once and selects among them without branching.
    #[inline(always)]
    fn next_short(&mut self) -> Option<(u8, u8, u8, u8)> {
        let &[delta, s, x, y] = self.raw.get(self.pos..self.pos + 4)? else {
            return None;
        };
        let present = s >= 0x80;
        // `select_unpredictable`: left to itself, the compiler branches on `present`.
        let status = std::hint::select_unpredictable(present, s, self.running);
        let (a, b) = std::hint::select_unpredictable(present, (x, y), (s, x));
        if ((delta | a | b) >= 0x80) | !TWO_DATA_BYTES[usize::from(status)] {
            return None;
        }
        self.pos += 3 + usize::from(present);
        self.running = status;
        Some((delta, status, a, b))
    }

    /// The next event and its delta time, `None` at the end of the data.
    #[inline(always)]
    pub fn next_event(&mut self) -> Option<Result<(u32, Event<'a>), ScanError>> {
        if let Some((delta, status, a, b)) = self.next_short() {
            return Some(Ok((u32::from(delta), Event::Channel { status, data: [a, b] })));
        }
        if self.pos >= self.raw.len() {
            return None;
        }
        Some(self.read_event())
    }

    /// A meta or system exclusive event: the standard cancels running status there.
    fn cancel_running(&mut self) {
        if !self.keep_running {
            self.cancelled |= self.running != 0;
            self.running = 0;
        }
    }

    #[inline]
    fn read_event(&mut self) -> Result<(u32, Event<'a>), ScanError> {
        let delta = self.varlen()?;
        let first = self.byte("the track ends before an event's status")?;
        let status = if first >= 0x80 {
            first
        } else if self.running != 0 {
            self.pos -= 1;
            self.running
        } else {
            self.pos -= 1;
            return self.fail(if self.cancelled {
                "a data byte where a status was due: a meta or system exclusive event ended the running status (players continue it; reading leniently does the same: --lenient on encode and continue, ReadOptions::lenient)"
            } else {
                "a data byte where a status was due, and no running status"
            });
        };
        let event = match status {
            0x80..=0xEF => {
                self.running = status;
                let a = self.data_byte()?;
                // Program change (0xC_) and channel pressure (0xD_) carry one data byte: the
                // rule of `TWO_DATA_BYTES`, tested here without the table, which measured slower.
                let b = if status & 0xE0 == 0xC0 { 0 } else { self.data_byte()? };
                Event::Channel { status, data: [a, b] }
            }
            0xFF => {
                self.cancel_running();
                let kind = self.byte("the track ends inside a meta event")?;
                let len = self.varlen()?;
                Event::Meta { kind, data: self.bytes(len)? }
            }
            0xF0 | 0xF7 => {
                self.cancel_running();
                let len = self.varlen()?;
                Event::SysEx { data: self.bytes(len)? }
            }
            _ => {
                self.pos -= 1;
                return self.fail("a system common or real-time status, which files cannot hold");
            }
        };
        Ok((delta, event))
    }
}

/// Writes one track of a format 0 file, with running status, then the file around it.
pub(crate) struct Writer {
    out: Vec<u8>,
    running: u8,
}

impl Writer {
    /// A file with one track at `ticks_per_quarter` (1 to 32,767); `events` sizes the buffer.
    pub fn new(ticks_per_quarter: u16, events: usize) -> Writer {
        let mut out = Vec::with_capacity(22 + 4 * events + 16);
        out.extend_from_slice(b"MThd\0\0\0\x06\0\0\0\x01");
        out.extend_from_slice(&ticks_per_quarter.to_be_bytes());
        out.extend_from_slice(b"MTrk\0\0\0\0");
        Writer { out, running: 0 }
    }

    /// A delta time of at most 0x0FFF_FFFF ticks (checked by the caller).
    #[inline]
    pub fn delta(&mut self, ticks: u32) {
        debug_assert!(ticks < 1 << 28);
        if ticks < 0x80 {
            self.out.push(ticks as u8);
            return;
        }
        let mut shift = 21;
        while ticks >> shift == 0 {
            shift -= 7;
        }
        while shift > 0 {
            self.out.push(0x80 | (ticks >> shift) as u8);
            shift -= 7;
        }
        self.out.push((ticks & 0x7F) as u8);
    }

    /// A channel message with two data bytes (7 bits each).
    #[inline]
    pub fn channel(&mut self, status: u8, a: u8, b: u8) {
        if status != self.running {
            self.running = status;
            self.out.push(status);
        }
        self.out.extend_from_slice(&[a, b]);
    }

    /// A delta time (at most 0x0FFF_FFFF ticks, checked by the caller) and a channel message
    /// with two data bytes: [`Writer::delta`] then [`Writer::channel`], with one capacity
    /// check in the common case of a one-byte delta.
    #[inline(always)]
    pub fn message(&mut self, ticks: u32, status: u8, a: u8, b: u8) {
        if ticks >= 0x80 {
            self.delta(ticks);
            self.channel(status, a, b);
        } else if status == self.running {
            self.out.extend_from_slice(&[ticks as u8, a, b]);
        } else {
            self.running = status;
            self.out.extend_from_slice(&[ticks as u8, status, a, b]);
        }
    }

    /// A meta event with fewer than 128 bytes of data.
    pub fn meta(&mut self, kind: u8, data: &[u8]) {
        debug_assert!(data.len() < 0x80);
        self.running = 0;
        self.out.extend_from_slice(&[0xFF, kind, data.len() as u8]);
        self.out.extend_from_slice(data);
    }

    /// Ends the track and returns the file; `None` if the track outgrew a chunk's 4 GB.
    pub fn finish(mut self) -> Option<Vec<u8>> {
        let len = u32::try_from(self.out.len() - 22).ok()?;
        self.out[18..22].copy_from_slice(&len.to_be_bytes());
        Some(self.out)
    }
}

#[cfg(test)]
mod tests {
    //! The scanner and the writer against midly, the reference they replace in the hot path.

    use midly::num::{u4, u7, u15, u24, u28};
    use midly::{Format, Header, MetaMessage, MidiMessage, Timing, TrackEvent, TrackEventKind};
    use proptest::prelude::*;

    use super::{Event, Events, Writer};

    fn arb_kind() -> impl Strategy<Value = TrackEventKind<'static>> {
        let channel = (0u8..16).prop_map(u4::new);
        let u7 = || (0u8..128).prop_map(u7::new);
        let message = prop_oneof![
            (u7(), u7()).prop_map(|(key, vel)| MidiMessage::NoteOn { key, vel }),
            (u7(), u7()).prop_map(|(key, vel)| MidiMessage::NoteOff { key, vel }),
            (u7(), u7()).prop_map(|(key, vel)| MidiMessage::Aftertouch { key, vel }),
            (u7(), u7())
                .prop_map(|(controller, value)| MidiMessage::Controller { controller, value }),
            u7().prop_map(|program| MidiMessage::ProgramChange { program }),
            u7().prop_map(|vel| MidiMessage::ChannelAftertouch { vel }),
            (0u16..0x4000).prop_map(|b| MidiMessage::PitchBend {
                bend: midly::PitchBend(midly::num::u14::new(b))
            }),
        ];
        prop_oneof![
            8 => (channel, message).prop_map(|(channel, message)| TrackEventKind::Midi {
                channel,
                message
            }),
            1 => (1u32..0xFF_FFFF).prop_map(|t| TrackEventKind::Meta(MetaMessage::Tempo(u24::new(t)))),
            1 => (1u8..16, 0u8..6).prop_map(|(n, d)| {
                TrackEventKind::Meta(MetaMessage::TimeSignature(n, d, 24, 8))
            }),
            1 => Just(TrackEventKind::Meta(MetaMessage::TrackName(b"drums, a long name for a track"))),
            1 => Just(TrackEventKind::SysEx(&[0x7E, 0x7F, 0x09, 0x01, 0xF7])),
        ]
    }

    fn arb_track() -> impl Strategy<Value = Vec<TrackEvent<'static>>> {
        let delta = prop_oneof![0u32..0x80, 0u32..0x4000, 0u32..0x0FFF_FFFF].prop_map(u28::new);
        proptest::collection::vec((delta, arb_kind()), 0..60).prop_map(|events| {
            events.into_iter().map(|(delta, kind)| TrackEvent { delta, kind }).collect()
        })
    }

    /// An event with its data owned, to compare the scanner's with midly's.
    #[derive(Debug, PartialEq)]
    enum Owned {
        Channel { status: u8, data: [u8; 2] },
        Meta { kind: u8, data: Vec<u8> },
        SysEx,
    }

    impl From<Event<'_>> for Owned {
        fn from(e: Event<'_>) -> Owned {
            match e {
                Event::Channel { status, data } => Owned::Channel { status, data },
                Event::Meta { kind, data } => Owned::Meta { kind, data: data.to_vec() },
                Event::SysEx { .. } => Owned::SysEx,
            }
        }
    }

    /// midly's event as the scanner reports it.
    fn expected(kind: &TrackEventKind<'_>) -> Owned {
        match *kind {
            TrackEventKind::Midi { channel, message } => {
                let c = channel.as_int();
                let (status, data) = match message {
                    MidiMessage::NoteOff { key, vel } => (0x80, [key.as_int(), vel.as_int()]),
                    MidiMessage::NoteOn { key, vel } => (0x90, [key.as_int(), vel.as_int()]),
                    MidiMessage::Aftertouch { key, vel } => (0xA0, [key.as_int(), vel.as_int()]),
                    MidiMessage::Controller { controller, value } => {
                        (0xB0, [controller.as_int(), value.as_int()])
                    }
                    MidiMessage::ProgramChange { program } => (0xC0, [program.as_int(), 0]),
                    MidiMessage::ChannelAftertouch { vel } => (0xD0, [vel.as_int(), 0]),
                    MidiMessage::PitchBend { bend } => {
                        let b = bend.0.as_int();
                        (0xE0, [(b & 0x7F) as u8, (b >> 7) as u8])
                    }
                };
                Owned::Channel { status: status | c, data }
            }
            TrackEventKind::Meta(MetaMessage::Tempo(t)) => {
                Owned::Meta { kind: 0x51, data: t.as_int().to_be_bytes()[1..].to_vec() }
            }
            TrackEventKind::Meta(MetaMessage::TimeSignature(n, d, c, b)) => {
                Owned::Meta { kind: 0x58, data: vec![n, d, c, b] }
            }
            TrackEventKind::Meta(MetaMessage::TrackName(name)) => {
                Owned::Meta { kind: 0x03, data: name.to_vec() }
            }
            TrackEventKind::Meta(MetaMessage::EndOfTrack) => {
                Owned::Meta { kind: 0x2F, data: Vec::new() }
            }
            _ => Owned::SysEx,
        }
    }

    /// The data of the only track of a file midly writes (running status included).
    fn track_data(events: &[TrackEvent<'_>]) -> Vec<u8> {
        let header = Header::new(Format::SingleTrack, Timing::Metrical(u15::new(480)));
        let mut out = Vec::new();
        midly::write(&header, std::iter::once(events), &mut out).expect("writes to a Vec");
        out[22..].to_vec()
    }

    proptest! {
        #[test]
        fn scanner_reads_what_midly_reads(track in arb_track()) {
            let data = track_data(&track);
            let mut events = Events::new(&data, false);
            let mut scanned = Vec::new();
            while let Some(event) = events.next_event() {
                let (delta, event) = event.expect("midly's own output scans");
                scanned.push((delta, Owned::from(event)));
            }
            let want: Vec<_> = midly::EventIter::new(&data)
                .map(|e| e.expect("midly reads its own output"))
                .map(|e| (e.delta.as_int(), expected(&e.kind)))
                .collect();
            prop_assert_eq!(scanned, want);
        }

        #[test]
        fn cut_tracks_fail_with_an_offset_inside_them(track in arb_track(), cut in any::<prop::sample::Index>()) {
            let data = track_data(&track);
            let data = &data[..cut.index(data.len() + 1)];
            let mut events = Events::new(data, false);
            while let Some(event) = events.next_event() {
                if let Err(e) = event {
                    prop_assert!(e.offset <= data.len(), "{e}");
                    break;
                }
            }
        }

        #[test]
        fn midly_reads_what_the_writer_writes(
            tpq in 1u16..0x8000,
            notes in proptest::collection::vec((0u32..0x0FFF_FFFF, 0u8..16, 0u8..128, 0u8..128), 0..50),
        ) {
            let mut w = Writer::new(tpq, notes.len());
            w.delta(0);
            w.meta(0x51, &[0x07, 0xA1, 0x20]);
            for &(delta, channel, key, vel) in &notes {
                w.delta(delta);
                w.channel(0x90 | channel, key, vel);
            }
            w.delta(0);
            w.meta(0x2F, &[]);
            let bytes = w.finish().expect("small track");
            let smf = midly::Smf::parse(&bytes).expect("midly parses the writer's file");
            prop_assert_eq!(smf.header.timing, Timing::Metrical(u15::new(tpq)));
            prop_assert_eq!(smf.tracks.len(), 1);
            let track = &smf.tracks[0];
            prop_assert_eq!(track.len(), notes.len() + 2);
            prop_assert_eq!(track[0].kind, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(500_000))));
            for (e, &(delta, channel, key, vel)) in track[1..].iter().zip(&notes) {
                prop_assert_eq!(e.delta.as_int(), delta);
                prop_assert_eq!(
                    e.kind,
                    TrackEventKind::Midi {
                        channel: u4::new(channel),
                        message: MidiMessage::NoteOn { key: u7::new(key), vel: u7::new(vel) },
                    }
                );
            }
            prop_assert_eq!(track[notes.len() + 1].kind, TrackEventKind::Meta(MetaMessage::EndOfTrack));
        }
    }

    #[test]
    fn faults_are_named() {
        let cases: [(&[u8], &str); 5] = [
            (&[0x00, 0x40, 0x10], "no running status"),
            (&[0x00, 0x99, 0x24], "ends inside a channel message"),
            (&[0x00, 0x99, 0x24, 0x90], "top bit set"),
            (&[0x80, 0x80, 0x80, 0x80, 0x00], "longer than 4 bytes"),
            (&[0x00, 0xF2, 0x00, 0x00], "system common"),
        ];
        for (data, what) in cases {
            let err = Events::new(data, false).next_event().expect("an event").expect_err(what);
            assert!(err.to_string().contains(what), "{err}");
        }
        let meta = [0x00, 0xFF, 0x03, 0x10, b'a'];
        let err = Events::new(&meta, false).next_event().expect("an event").expect_err("cut meta");
        assert_eq!(err.offset, 4, "{err}");
    }
}
