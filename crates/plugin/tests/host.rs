//! A CLAP host written with clack-host loads the plugin, built as a `.clap` file, from disk
//! and drives it as a DAW does: a transport, drum notes in, parameters, Continue, and the
//! state saved and loaded into a new instance.
//!
//! It drives the debug build, where nice-plug aborts the process on any allocation in
//! `process` (the crate's default feature `assert_process_allocs`): every block of every run
//! here checks that.
// Loading a plugin library runs its code: clack-host marks that unsafe.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use clack_extensions::params::{ParamInfoBuffer, PluginParams};
use clack_host::events::Match;
use clack_host::events::event_types::{NoteOffEvent, NoteOnEvent, ParamValueEvent};
use clack_host::prelude::*;
use fine_drums_plugin::bundle::{self, Bundles};

use crate::clap_host::{self, BLOCK, Blocks, Host, SAMPLE_RATE};
use fine_drums_plugin::{LAST_PHRASE, PHRASES_ENV, Saved};

/// The plugin's bundles on disk, as the `bundle` example lays them out, from the debug build's
/// library, in a folder of this test process's, with the phrases folder beside them.
fn bundle() -> &'static (Bundles, PathBuf) {
    static BUNDLE: OnceLock<(Bundles, PathBuf)> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's path");
        // The library this test was built with, beside it: target/debug/deps (cargo copies it
        // up to target/debug only for `cargo build`).
        let lib = exe.parent().expect("the build folder").join(bundle::library_name());
        let dir = std::env::temp_dir().join(format!("fine-drums-host-{}", std::process::id()));
        let bundles = bundle::write_bundles(&lib, &dir).expect("the bundles are written");
        let phrases = dir.join("phrases");
        // Set before the plugin is loaded, and never again: no other thread reads it yet.
        unsafe { std::env::set_var(PHRASES_ENV, &phrases) };
        (bundles, phrases)
    })
}

/// One plugin library, loaded once; the runs take turns (the phrases folder is shared).
fn entry() -> std::sync::MutexGuard<'static, PluginEntry> {
    static ENTRY: OnceLock<Mutex<PluginEntry>> = OnceLock::new();
    ENTRY
        .get_or_init(|| {
            let (bundles, _) = bundle();
            let entry =
                unsafe { PluginEntry::load(&bundles.clap) }.expect("the .clap bundle loads");
            Mutex::new(entry)
        })
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// A transport for the test: tempo, meter, and the drum notes (quarter notes from the
/// song's start, pitch, velocity) played into the plugin.
struct Song {
    bpm: f64,
    meter: (u16, u16),
    notes: Vec<(f64, u8, u8)>,
    quirks: Quirks,
}

/// What a host may do that the plugin must take calmly.
#[derive(Clone, Default)]
struct Quirks {
    /// It sends no transport at all.
    no_transport: bool,
    /// The tempo it reports (its timeline runs at the song's).
    reported_tempo: Option<f64>,
    /// From this bar on, the meter is this one.
    meter_change: Option<(u32, (u16, u16))>,
    /// The channel the notes come in on (0-based; default 9, the drums' 10).
    channel: Option<u16>,
    /// A note-off of a note never played beside every note.
    stray_note_offs: bool,
    /// A loop over bars `from..to`: the transport jumps back at `to`'s bar line.
    loop_bars: Option<(u32, u32)>,
}

impl Song {
    fn new(bpm: f64, meter: (u16, u16), notes: Vec<(f64, u8, u8)>) -> Song {
        Song { bpm, meter, notes, quirks: Quirks::default() }
    }
    fn meter_of(&self, bar: u32) -> (u16, u16) {
        match self.quirks.meter_change {
            Some((from, meter)) if bar >= from => meter,
            _ => self.meter,
        }
    }
    fn quarters_of(meter: (u16, u16)) -> f64 {
        f64::from(meter.0) * 4.0 / f64::from(meter.1)
    }
    /// Quarter notes in the first bar's meter.
    fn bar_quarters(&self) -> f64 {
        Song::quarters_of(self.meter)
    }
    fn samples_per_quarter(&self) -> f64 {
        SAMPLE_RATE * 60.0 / self.bpm
    }
    /// Where bar `bar` starts, in quarter notes.
    fn bar_start(&self, bar: u32) -> f64 {
        (0..bar).map(|b| Song::quarters_of(self.meter_of(b))).sum()
    }
    /// The bar that holds position `q` (quarter notes), and where it starts.
    fn bar_at(&self, q: f64) -> (u32, f64) {
        let mut bar = 0;
        while self.bar_start(bar + 1) <= q + 1e-9 {
            bar += 1;
        }
        (bar, self.bar_start(bar))
    }
    /// Where the transport is after `q` quarter notes of playing (a loop folds it back).
    fn position(&self, q: f64) -> f64 {
        match self.quirks.loop_bars {
            Some((from, to)) => {
                let (a, b) = (self.bar_start(from), self.bar_start(to));
                if q < b { q } else { a + (q - a).rem_euclid(b - a) }
            }
            None => q,
        }
    }
    /// The absolute sample of bar line `bar`.
    fn bar_line(&self, bar: u32) -> u64 {
        (self.bar_start(bar) * self.samples_per_quarter()).round() as u64
    }
}

/// What a run heard from the plugin.
#[derive(Debug, PartialEq)]
struct Heard {
    /// Note events out: absolute sample, note-on, key, velocity.
    events: Vec<(u64, bool, u16, u32)>,
}

struct Outcome {
    heard: Heard,
    /// The sample of the block Continue was pressed in.
    pressed_at: u64,
    state: Vec<u8>,
    values: BTreeMap<String, f64>,
}

fn params_of(instance: &mut PluginInstance<Host>) -> (PluginParams, BTreeMap<String, ClapId>) {
    let params = instance
        .access_shared_handler(|h| *h.params.get().expect("initialised"))
        .expect("the plugin has parameters");
    let mut ids = BTreeMap::new();
    let handle = instance.plugin_handle();
    let mut buffer = ParamInfoBuffer::new();
    for i in 0..params.count(&handle) {
        let info = params.get_info(&handle, i, &mut buffer).expect("parameter info");
        ids.insert(String::from_utf8_lossy(info.name).into_owned(), info.id);
    }
    (params, ids)
}

/// Plays `song` into a new instance (with `state` loaded first, if given), sets `settings`
/// (parameter name, value as text), presses Continue in bar `press_bar`, waits for the
/// phrase, and plays on until `until_bar`.
fn run(
    song: &Song,
    settings: &[(&str, &str)],
    state: Option<&[u8]>,
    press_bar: u32,
    until_bar: u32,
) -> Outcome {
    run_pressing("Continue", song, settings, state, press_bar, until_bar)
}

/// [`run`], pressing the button `button`.
fn run_pressing(
    button: &str,
    song: &Song,
    settings: &[(&str, &str)],
    state: Option<&[u8]>,
    press_bar: u32,
    until_bar: u32,
) -> Outcome {
    let entry = entry();
    let (_, phrases) = bundle();
    let mut instance = clap_host::instantiate(&entry);
    let (params, ids) = params_of(&mut instance);
    if let Some(bytes) = state {
        let ext = instance.access_shared_handler(|h| *h.state.get().expect("initialised"));
        let ext = ext.expect("the plugin saves state");
        ext.load(&instance.plugin_handle(), &mut Cursor::new(bytes)).expect("state loads");
    }
    let mut changes = Vec::new();
    for (name, text) in settings {
        let id = ids[*name];
        let text = CString::new(*text).expect("text");
        let value = params.text_to_value(&instance.plugin_handle(), id, &text).expect(name);
        changes.push(ParamValueEvent::new(0, id, Pckn::match_all(), value));
    }
    // No such button (""): nothing is pressed, but the host still waits for a phrase there.
    let press = |on: bool| {
        let value = if on { 1.0 } else { 0.0 };
        ids.get(button).map(|&id| ParamValueEvent::new(0, id, Pckn::match_all(), value))
    };

    let mut processor = clap_host::start(&mut instance);
    let _ = std::fs::remove_file(phrases.join(LAST_PHRASE));

    let spq = song.samples_per_quarter();
    let mut blocks = Blocks::new();
    let mut events = Vec::new();
    let mut pressed_at = None;
    let mut block = 0u64;
    while (block * u64::from(BLOCK)) < song.bar_line(until_bar) {
        let start = block * u64::from(BLOCK);
        // The loops of the tests end on block boundaries: a block never straddles the jump.
        let q0 = song.position(start as f64 / spq);
        let q1 = q0 + f64::from(BLOCK) / spq;
        let (bar, bar_start) = song.bar_at(q0);
        let meter = song.meter_of(bar);
        let tempo = song.quirks.reported_tempo.unwrap_or(song.bpm);
        let transport =
            clap_host::transport(start, SAMPLE_RATE, q0, (bar, bar_start), tempo, meter);
        let mut input = EventBuffer::new();
        if block == 0 {
            for c in &changes {
                input.push(c);
            }
        }
        let pressing = pressed_at.is_none() && bar >= press_bar;
        if pressing {
            press(true).inspect(|e| input.push(e));
            pressed_at = Some(start);
        } else if pressed_at.is_some_and(|p| p + u64::from(BLOCK) == start) {
            press(false).inspect(|e| input.push(e));
        }
        let mut notes: Vec<(u32, bool, u8, u8)> = Vec::new();
        for &(q, pitch, velocity) in &song.notes {
            for (at, on) in [(q, true), (q + 0.125, false)] {
                if at >= q0 && at < q1 {
                    let time = (((at - q0) * spq).round() as u32).min(BLOCK - 1);
                    notes.push((time, on, pitch, velocity));
                    if on && song.quirks.stray_note_offs {
                        notes.push((time, false, 99, 0));
                    }
                }
            }
        }
        notes.sort();
        for (time, on, pitch, velocity) in notes {
            let channel = song.quirks.channel.unwrap_or(9);
            let pckn = Pckn::new(0u16, channel, u16::from(pitch), Match::All);
            if on {
                input.push(&NoteOnEvent::new(time, pckn, f64::from(velocity) / 127.0));
            } else {
                input.push(&NoteOffEvent::new(time, pckn, 0.0));
            }
        }
        let transport = (!song.quirks.no_transport).then_some(&transport);
        let out_events = blocks.process(&mut processor, &input, start, transport);
        for e in out_events.iter() {
            if let Some(on) = e.as_event::<NoteOnEvent>() {
                let key = on.key().into_specific().expect("a key");
                let velocity = (on.velocity() * 127.0).round() as u32;
                events.push((start + u64::from(on.header().time()), true, key, velocity));
            } else if let Some(off) = e.as_event::<NoteOffEvent>() {
                let key = off.key().into_specific().expect("a key");
                events.push((start + u64::from(off.header().time()), false, key, 0));
            }
        }
        if pressing && !song.quirks.no_transport {
            // The phrase is written to the phrases folder once it was sent to the audio
            // thread: the next block has it, so it starts at the next bar line.
            let deadline = Instant::now() + Duration::from_secs(300);
            while !phrases.join(LAST_PHRASE).is_file() {
                assert!(Instant::now() < deadline, "no phrase after 300 s");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        block += 1;
    }
    let processor = processor.stop_processing();
    instance.deactivate(processor);

    let ext = instance.access_shared_handler(|h| *h.state.get().expect("initialised"));
    let mut saved = Vec::new();
    ext.expect("the plugin saves state")
        .save(&instance.plugin_handle(), &mut saved)
        .expect("state saves");
    let handle = instance.plugin_handle();
    let values =
        ids.iter().map(|(n, &id)| (n.clone(), params.get_value(&handle, id).expect(n))).collect();
    Outcome {
        heard: Heard { events },
        pressed_at: pressed_at.expect("Continue was pressed"),
        state: saved,
        values,
    }
}

/// The session a saved state holds (nice-plug writes a little-endian length, then JSON).
fn session_of(state: &[u8]) -> Saved {
    let (length, json) = state.split_at(8);
    let length = u64::from_le_bytes(length.try_into().expect("a length"));
    assert_eq!(length as usize, json.len());
    let json: serde_json::Value = serde_json::from_slice(json).expect("the state is JSON");
    let field = json["fields"]["session"].as_str().expect("the session is saved");
    serde_json::from_str(field).expect("the session reads")
}

/// `bars` bars of a rock beat: kick on 1 and 3, snare on 2 and 4, eighth hi-hats.
fn rock(bars: u32, bar_quarters: f64) -> Vec<(f64, u8, u8)> {
    let mut notes = Vec::new();
    for bar in 0..bars {
        let start = f64::from(bar) * bar_quarters;
        let mut q = 0.0;
        while q < bar_quarters - 1e-9 {
            notes.push((start + q, 42, 80));
            if q == 0.0 || q == 2.0 {
                notes.push((start + q, 36, 110));
            }
            if q == 1.0 || q == 3.0 {
                notes.push((start + q, 38, 105));
            }
            q += 0.5;
        }
    }
    notes
}

/// Every check of the issue on one song: the phrase plays on the host's grid from the bar
/// line after the bar Continue was pressed in, decodes to the bars asked for, nothing comes
/// out before the press, the same seed plays the same notes, and the state restores.
fn check_song(song: &Song) {
    let bars = 2u32;
    let settings = [
        ("Bars", "2"),
        ("Feel", "0"),
        ("Seed", "11"),
        ("Pass through", "Off"),
        ("Voices", "General MIDI"),
    ];
    let press_bar = 4;
    let until = press_bar + 1 + bars + 1;
    let a = run(song, &settings, None, press_bar, until);

    // Nothing before the press (pass-through is off).
    let first = a.heard.events.first().expect("the plugin played");
    assert!(first.0 > a.pressed_at, "an event at {} before the press at {}", first.0, a.pressed_at);
    // The first note at the next bar line, to the sample.
    let line = song.bar_line(press_bar + 1);
    assert!(first.1, "the first event is a note-on");
    assert_eq!(first.0, line, "the phrase starts on the bar line after the press");
    // Every note-on in the bars asked for, and each of them has some.
    let end = song.bar_line(press_bar + 1 + bars);
    let ons: Vec<_> = a.heard.events.iter().filter(|e| e.1).collect();
    assert!(ons.iter().all(|e| e.0 >= line && e.0 < end), "a note outside the phrase");
    for b in 0..bars {
        let (s, e) = (song.bar_line(press_bar + 1 + b), song.bar_line(press_bar + 2 + b));
        assert!(ons.iter().any(|n| n.0 >= s && n.0 < e), "bar {b} of the phrase is empty");
    }
    // On the grid (feel 0): every note-on falls on a 64th of the host's grid.
    let spq = song.samples_per_quarter();
    for n in &ons {
        let q = n.0 as f64 / spq;
        let step = (q * 16.0).round() / 16.0;
        assert!(
            ((step * spq).round() - n.0 as f64).abs() <= 1.0,
            "note at {} is off the grid",
            n.0
        );
    }
    // General MIDI pitches only.
    assert!(ons.iter().all(|n| [36, 38, 42, 46, 43, 47, 50, 49, 51].contains(&n.2)));
    // Every note-on is ended.
    assert_eq!(ons.len(), a.heard.events.iter().filter(|e| !e.1).count());

    // The events decode to the bars asked for: as a MIDI file in the host's meter and tempo.
    let decoded = decode(song, &a.heard, line, bars);
    assert_eq!(decoded, bars as usize);

    // The same seed, the same notes.
    let again = run(song, &settings, None, press_bar, until);
    assert_eq!(again.heard, a.heard);

    // The state: a new instance given it has the same parameters, captured bars and phrase.
    let saved = session_of(&a.state);
    // Every bar the transport played is captured (the last block may reach into one more).
    let numbers: Vec<i64> = saved.capture.bars.iter().map(|b| b.bar).collect();
    assert_eq!(numbers[..until as usize], (0..i64::from(until)).collect::<Vec<_>>()[..]);
    assert!(numbers.len() <= until as usize + 1);
    let played: usize = song.notes.iter().filter(|n| n.0 < song.bar_start(until)).count();
    assert_eq!(saved.capture.hits(), played);
    assert_eq!(saved.phrase.as_ref().map(|p| p.first_bar), Some(i64::from(press_bar + 1)));
    let restored = restore(&a.state);
    assert_eq!(restored.0, a.values, "the parameters restore");
    assert_eq!(session_of(&restored.1), saved, "the session restores");

    // Fill next bar: one bar, from the same bar line.
    let fill = run_pressing("Fill next bar", song, &settings, None, press_bar, until);
    let ons: Vec<_> = fill.heard.events.iter().filter(|e| e.1).collect();
    assert_eq!(ons.first().map(|e| e.0), Some(line), "the fill starts on the bar line");
    let bar_end = song.bar_line(press_bar + 2);
    assert!(ons.iter().all(|e| e.0 < bar_end), "the fill is one bar");
    let fill_phrase = session_of(&fill.state).phrase.expect("the fill is kept");
    assert_eq!(fill_phrase.bars, 1);
}

/// A new instance loaded with `state`: its parameter values and the state it saves.
fn restore(state: &[u8]) -> (BTreeMap<String, f64>, Vec<u8>) {
    let entry = entry();
    let mut instance = clap_host::instantiate(&entry);
    let (params, ids) = params_of(&mut instance);
    let ext = instance.access_shared_handler(|h| *h.state.get().expect("initialised"));
    let ext = ext.expect("the plugin saves state");
    ext.load(&instance.plugin_handle(), &mut Cursor::new(state)).expect("state loads");
    let handle = instance.plugin_handle();
    let values =
        ids.iter().map(|(n, &id)| (n.clone(), params.get_value(&handle, id).expect(n))).collect();
    let mut saved = Vec::new();
    ext.save(&instance.plugin_handle(), &mut saved).expect("state saves");
    (values, saved)
}

/// The bars that the note-ons of `heard` from sample `from` make when written as a MIDI file
/// in the song's meter and tempo and read by the codec.
fn decode(song: &Song, heard: &Heard, from: u64, bars: u32) -> usize {
    use fine_drums_codec::midi::{self, ReadOptions};
    let tpq = 480u16;
    let spq = song.samples_per_quarter();
    let mut track = Vec::new();
    let micros = (60_000_000.0 / song.bpm).round() as u32;
    track.push((0u32, midly::TrackEventKind::Meta(midly::MetaMessage::Tempo(micros.into()))));
    let den = song.meter.1.trailing_zeros() as u8;
    let sig = midly::MetaMessage::TimeSignature(song.meter.0 as u8, den, 24, 8);
    track.push((0, midly::TrackEventKind::Meta(sig)));
    let tick = |s: u64| (((s - from) as f64 / spq) * f64::from(tpq)).round() as u32;
    for e in heard.events.iter().filter(|e| e.0 >= from) {
        let message = if e.1 {
            midly::MidiMessage::NoteOn { key: (e.2 as u8).into(), vel: (e.3 as u8).into() }
        } else {
            midly::MidiMessage::NoteOff { key: (e.2 as u8).into(), vel: 0.into() }
        };
        track.push((tick(e.0), midly::TrackEventKind::Midi { channel: 9.into(), message }));
    }
    let end = (f64::from(bars) * song.bar_quarters() * f64::from(tpq)).round() as u32;
    track.push((end, midly::TrackEventKind::Meta(midly::MetaMessage::EndOfTrack)));
    track.sort_by_key(|e| e.0);
    let mut last = 0;
    let events: Vec<midly::TrackEvent> = track
        .into_iter()
        .map(|(t, kind)| {
            let delta = t - last;
            last = t;
            midly::TrackEvent { delta: delta.into(), kind }
        })
        .collect();
    let smf = midly::Smf {
        header: midly::Header::new(midly::Format::SingleTrack, midly::Timing::Metrical(tpq.into())),
        tracks: vec![events],
    };
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes).expect("the MIDI file is written");
    let groove = midi::read(&bytes, &ReadOptions::lossless()).expect("the phrase decodes");
    groove.bars.len()
}

#[test]
fn a_rock_beat_at_120_in_four_four() {
    let song = Song::new(120.0, (4, 4), rock(4, 4.0));
    check_song(&song);
}

#[test]
fn a_rock_beat_at_93_in_seven_eight() {
    let song = Song::new(93.0, (7, 8), rock(4, 3.5));
    check_song(&song);
}

/// The VST3 bundle holds the library, and it exports the VST3 entry points: a host loads it
/// and gets the plugin factory.
#[test]
fn the_vst3_bundle_exports_its_entry_points() {
    let (bundles, _) = bundle();
    assert!(bundles.vst3.is_dir(), "no VST3 bundle at {}", bundles.vst3.display());
    let lib = unsafe { libloading::Library::new(&bundles.vst3_library) }.expect("it loads");
    type Entry = unsafe extern "C" fn(*mut std::ffi::c_void) -> bool;
    type Factory = unsafe extern "C" fn() -> *mut std::ffi::c_void;
    let _guard = entry();
    unsafe {
        if cfg!(target_os = "linux") {
            let module_entry: libloading::Symbol<Entry> =
                lib.get(b"ModuleEntry").expect("ModuleEntry");
            assert!(module_entry(std::ptr::null_mut()));
        }
        let factory: libloading::Symbol<Factory> =
            lib.get(b"GetPluginFactory").expect("GetPluginFactory");
        assert!(!factory().is_null(), "no plugin factory");
        if cfg!(target_os = "linux") {
            let module_exit: libloading::Symbol<unsafe extern "C" fn() -> bool> =
                lib.get(b"ModuleExit").expect("ModuleExit");
            assert!(module_exit());
        }
    }
}

/// The first 4/4 and the first other-meter beat of the GMD's test split, each as notes
/// (quarter notes from the start, pitch, velocity) and its tempo.
fn gmd_groove(meter: &str) -> (Vec<(f64, u8, u8)>, f64) {
    #[path = "../../../tests/common/gmd.rs"]
    mod gmd_dir;
    let dir = gmd_dir::gmd();
    let info = std::fs::read_to_string(dir.join("info.csv")).expect("info.csv");
    let row = info
        .lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|c| c.len() == 11 && c[10] == "test" && c[5] == "beat" && c[6] == meter)
        .expect("a test-split beat");
    let bytes = std::fs::read(dir.join(row[7])).expect("the GMD file");
    let smf = midly::Smf::parse(&bytes).expect("a MIDI file");
    let midly::Timing::Metrical(tpq) = smf.header.timing else { panic!("metrical timing") };
    let mut notes = Vec::new();
    for track in &smf.tracks {
        let mut tick = 0u64;
        for e in track {
            tick += u64::from(e.delta.as_int());
            if let midly::TrackEventKind::Midi {
                message: midly::MidiMessage::NoteOn { key, vel },
                ..
            } = e.kind
                && vel > 0
            {
                notes.push((tick as f64 / f64::from(tpq.as_int()), key.as_int(), vel.as_int()));
            }
        }
    }
    notes.sort_by(|a, b| a.0.total_cmp(&b.0));
    (notes, row[4].parse().expect("a tempo"))
}

#[test]
#[ignore = "reads the GMD (FINE_DRUMS_GMD, default ../shared/datasets/groove): cargo test -- --ignored"]
fn a_gmd_test_groove_at_120_in_four_four_and_93_in_seven_eight() {
    let (notes, _) = gmd_groove("4-4");
    // Its first 4 bars' worth of notes, played into each transport: 16 quarter notes at 120
    // in 4/4, 14 at 93 in 7/8 (the groove re-barred as the host's bars).
    for (bpm, meter) in [(120.0, (4, 4)), (93.0, (7, 8))] {
        let four = 4.0 * Song::quarters_of(meter);
        let song = Song::new(bpm, meter, notes.iter().copied().filter(|n| n.0 < four).collect());
        check_song(&song);
    }
}

// A host that misbehaves, or does what hosts may: documented behaviour, never a crash.

/// The settings of the runs below: 2 bars on the grid, a fixed seed, only the plugin's notes
/// out.
const PLAIN: [(&str, &str); 4] =
    [("Bars", "2"), ("Feel", "0"), ("Seed", "5"), ("Pass through", "Off")];

/// The note-ons of `heard` as (sample, key).
fn note_ons(heard: &Heard) -> Vec<(u64, u16)> {
    heard.events.iter().filter(|e| e.1).map(|e| (e.0, e.2)).collect()
}

/// No transport: nothing is captured and no phrase is made (the plugin cannot place a note
/// on a grid it is not told of); the notes pass through, untouched.
#[test]
fn a_host_that_sends_no_transport_gets_its_notes_through_and_no_phrase() {
    let mut song = Song::new(120.0, (4, 4), rock(4, 4.0));
    song.quirks.no_transport = true;
    let a = run(&song, &[("Pass through", "On"), ("Seed", "5")], None, 4, 6);
    let ons = note_ons(&a.heard);
    assert_eq!(ons.len(), song.notes.len(), "every note passes through, and nothing else");
    let session = session_of(&a.state);
    assert!(session.capture.bars.is_empty() && session.phrase.is_none());
}

/// A tempo outside 1 to 1000 BPM (here 0) is read as 120: a host whose timeline runs at
/// 120 gets the phrase on its bar line.
#[test]
fn a_tempo_of_0_is_read_as_120() {
    let mut song = Song::new(120.0, (4, 4), rock(4, 4.0));
    song.quirks.reported_tempo = Some(0.0);
    let a = run(&song, &PLAIN, None, 4, 7);
    assert_eq!(note_ons(&a.heard).first().map(|n| n.0), Some(song.bar_line(5)));
}

/// 999 BPM is a tempo: everything holds there too.
#[test]
fn a_tempo_of_999_is_played_at() {
    check_song(&Song::new(999.0, (4, 4), rock(4, 4.0)));
}

/// A meter that changes while a phrase plays: the phrase keeps its notes' times in quarter
/// notes from its first bar line (its bars stop lining up with the host's), and ends.
#[test]
fn a_meter_change_mid_phrase_leaves_the_phrase_as_written() {
    let mut song = Song::new(120.0, (4, 4), rock(4, 4.0));
    song.quirks.meter_change = Some((6, (3, 4)));
    let a = run(&song, &PLAIN, None, 4, 9);
    let ons = note_ons(&a.heard);
    let spq = song.samples_per_quarter();
    let start = song.bar_line(5);
    assert_eq!(ons.first().map(|n| n.0), Some(start));
    let end = start + (8.0 * spq).round() as u64;
    assert!(ons.iter().all(|n| n.0 >= start && n.0 < end), "the phrase runs 8 quarter notes");
    assert!(ons.iter().any(|n| n.0 >= song.bar_line(6)), "it plays on after the change");
    let offs = a.heard.events.iter().filter(|e| !e.1).count();
    assert_eq!(offs, ons.len(), "every note is ended");
}

/// Note-offs of notes never played are passed on and otherwise ignored; notes on any
/// channel are the drums' (a drum track's channel is the host's business); what the plugin
/// plays is on channel 10.
#[test]
fn stray_note_offs_and_another_channel_are_taken_calmly() {
    let mut song = Song::new(120.0, (4, 4), rock(4, 4.0));
    song.quirks.stray_note_offs = true;
    song.quirks.channel = Some(0);
    let a = run(&song, &[("Pass through", "Off"), ("Bars", "2"), ("Seed", "5")], None, 4, 7);
    assert_eq!(note_ons(&a.heard).first().map(|n| n.0), Some(song.bar_line(5)));
    let session = session_of(&a.state);
    assert_eq!(session.capture.hits(), song.notes.len(), "every note-on captured, once");
}

/// A loop over bars 1-6 while a 4-bar phrase plays from bar 6: the transport jumps back to
/// bar 1 after the phrase's first bar, and the phrase goes on with it, note for note and
/// sample for sample as on a straight transport.
#[test]
fn a_loop_moves_the_phrase_with_the_transport() {
    let straight = Song::new(120.0, (4, 4), rock(4, 4.0));
    let settings = [("Bars", "4"), ("Feel", "0"), ("Seed", "9"), ("Pass through", "Off")];
    let a = run(&straight, &settings, None, 4, 10);
    let mut looped = Song::new(120.0, (4, 4), rock(4, 4.0));
    // 6 bars at 120 BPM are 1,125 blocks of 512: the jump falls between two blocks.
    looped.quirks.loop_bars = Some((0, 6));
    let b = run(&looped, &settings, None, 4, 10);
    assert!(!a.heard.events.is_empty());
    assert_eq!(b.heard, a.heard, "the phrase plays on through the jump");
    let phrase = session_of(&b.state).phrase.expect("a phrase");
    assert_eq!(phrase.bars, 4);
}

/// Auto continue: after 2 bars captured (the prompt bars), the plugin continues on its own,
/// with nothing pressed.
#[test]
fn auto_continue_answers_every_phrase() {
    let song = Song::new(120.0, (4, 4), rock(4, 4.0));
    let settings = [
        ("Auto continue", "On"),
        ("Prompt bars", "2"),
        ("Bars", "2"),
        ("Feel", "0"),
        ("Pass through", "Off"),
    ];
    // Entering bar 3 (from 1), two bars are captured: it asks then, and the phrase plays from
    // bar 4. The host waits for it in bar 3, as for a press.
    let a = run_pressing("", &song, &settings, None, 2, 6);
    let ons = note_ons(&a.heard);
    assert_eq!(ons.first().map(|n| n.0), Some(song.bar_line(3)));
    // Its 2 bars, and no second phrase yet: one plays while it does not overlap the first.
    assert!(ons.iter().all(|n| n.0 >= song.bar_line(3) && n.0 < song.bar_line(5)));
    let phrase = session_of(&a.state).phrase.expect("a phrase");
    assert_eq!((phrase.first_bar, phrase.bars), (3, 2));
}
