//! Builds MIDI files byte by byte and through midly, for the tests.

use midly::num::{u4, u7, u15, u24, u28};
use midly::{Format, Header, MetaMessage, MidiMessage, Timing, TrackEvent, TrackEventKind};

/// A note for [`smf`]: (tick, channel 0-15, pitch, velocity, length).
pub type N = (u32, u8, u8, u8, u32);

/// Writes a Standard MIDI File with notes spread over `tracks` tracks, plus tempo and meter
/// events (tick, micros) and (tick, numerator, log2 denominator) on track 0.
pub fn smf(
    tpq: u16,
    tracks: usize,
    notes: &[N],
    tempos: &[(u32, u32)],
    meters: &[(u32, u8, u8)],
) -> Vec<u8> {
    let tracks = tracks.max(1);
    let mut timed: Vec<Vec<(u32, u8, TrackEventKind<'static>)>> = vec![Vec::new(); tracks];
    for &(t, m) in tempos {
        timed[0].push((t, 0, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(m)))));
    }
    for &(t, n, d) in meters {
        timed[0].push((t, 0, TrackEventKind::Meta(MetaMessage::TimeSignature(n, d, 24, 8))));
    }
    for (i, &(t, ch, p, v, len)) in notes.iter().enumerate() {
        let channel = u4::new(ch);
        let key = u7::new(p);
        let tr = &mut timed[i % tracks];
        tr.push((
            t,
            2,
            TrackEventKind::Midi { channel, message: MidiMessage::NoteOn { key, vel: u7::new(v) } },
        ));
        // Every other release is a note-on with velocity 0.
        let off = if i % 2 == 0 {
            MidiMessage::NoteOff { key, vel: u7::new(64) }
        } else {
            MidiMessage::NoteOn { key, vel: u7::new(0) }
        };
        tr.push((t + len, 1, TrackEventKind::Midi { channel, message: off }));
    }
    let tracks: Vec<Vec<TrackEvent<'static>>> = timed
        .into_iter()
        .map(|mut tr| {
            tr.sort_by_key(|&(t, o, _)| (t, o));
            let mut last = 0;
            let mut out: Vec<TrackEvent<'static>> = tr
                .into_iter()
                .map(|(t, _, kind)| {
                    let e = TrackEvent { delta: u28::new(t - last), kind };
                    last = t;
                    e
                })
                .collect();
            out.push(TrackEvent {
                delta: u28::new(0),
                kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
            });
            out
        })
        .collect();
    let format = if tracks.len() == 1 { Format::SingleTrack } else { Format::Parallel };
    let header = Header::new(format, Timing::Metrical(u15::new(tpq)));
    let mut out = Vec::new();
    midly::write(&header, tracks.iter(), &mut out).expect("writing to a Vec cannot fail");
    out
}

/// An SMF header chunk followed by one raw track chunk with `body`.
pub fn raw_track(tpq: u16, body: &[u8]) -> Vec<u8> {
    let mut v = b"MThd\0\0\0\x06\0\0\0\x01".to_vec();
    v.extend_from_slice(&tpq.to_be_bytes());
    v.extend_from_slice(b"MTrk");
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}
