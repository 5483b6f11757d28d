//! The events of a track chunk, read and written in one pass over bytes.
//!
//! midly frames a file (its header, RIFF wrapping and chunks, see [`crate::midi`]); inside a
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
    /// A system exclusive message or an escape (status 0xF0 or 0xF7).
    SysEx,
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

/// Reads the events of one track chunk's data.
pub(crate) struct Events<'a> {
    raw: &'a [u8],
    pos: usize,
    /// The running status, or 0 when there is none.
    running: u8,
}

impl<'a> Events<'a> {
    /// Events of a track chunk's data (the bytes after its 8-byte chunk header).
    pub fn new(raw: &'a [u8]) -> Events<'a> {
        Events { raw, pos: 0, running: 0 }
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

    /// The next event and its delta time, `None` at the end of the data.
    #[inline]
    pub fn next_event(&mut self) -> Option<Result<(u32, Event<'a>), ScanError>> {
        if self.pos >= self.raw.len() {
            return None;
        }
        Some(self.read_event())
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
            return self.fail("a data byte where a status was due, and no running status");
        };
        let event = match status {
            0x80..=0xEF => {
                self.running = status;
                let a = self.data_byte()?;
                // Program change (0xC_) and channel pressure (0xD_) carry one data byte.
                let b = if status & 0xE0 == 0xC0 { 0 } else { self.data_byte()? };
                Event::Channel { status, data: [a, b] }
            }
            0xFF => {
                self.running = 0;
                let kind = self.byte("the track ends inside a meta event")?;
                let len = self.varlen()?;
                Event::Meta { kind, data: self.bytes(len)? }
            }
            0xF0 | 0xF7 => {
                self.running = 0;
                let len = self.varlen()?;
                self.bytes(len)?;
                Event::SysEx
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
