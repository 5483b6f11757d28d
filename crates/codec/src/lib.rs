//! Drum MIDI as text for language models, and model text back as MIDI.
//!
//! Data flows one way: MIDI bytes → [`Groove`] → text → (a model) → text → [`Groove`] → MIDI
//! bytes. The crate does no I/O: it takes bytes and strings and returns values.
//!
//! # Example: a MIDI file as text and back
//!
//! ```
//! use fine_drums_codec::{beat::BeatOptions, midi, Format};
//!
//! // A two-bar rock beat, made with the crate's own pattern helper.
//! let bytes = fine_drums_codec::pattern::rock_beat(2, 100.0)?;
//! let groove = midi::read(&bytes, &midi::ReadOptions::default())?;
//! let format = Format::Beat(BeatOptions::default());
//! let text = format.encode(&groove)?;
//! // Beat 1: accented kick, hi-hat and crash, then hi-hat on the "&"; beat 2: snare …
//! assert_eq!(text.lines().next(), Some("KhC..h. Sh..h. Kh..Kh. Sh..h."));
//!
//! // A model's answer, with one broken bar: the lenient decoder keeps the good ones.
//! let answer = "Kh..h. Sh..h. Kh..Kh. Sh..h.\nKh..h. Sh??\n";
//! let decoded = format.decode_lenient(answer, &groove.context_after())?;
//! assert_eq!(decoded.groove.bars.len(), 1);
//! assert_eq!(decoded.dropped.len(), 1);
//! let midi_out = midi::write(&decoded.groove, &midi::WriteOptions::default())?;
//! assert!(midi_out.starts_with(b"MThd"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Example: lossless
//!
//! ```
//! use fine_drums_codec::{midi, Format};
//!
//! let bytes = fine_drums_codec::pattern::rock_beat(4, 96.0)?;
//! let groove = midi::read(&bytes, &midi::ReadOptions::lossless())?;
//! let text = Format::EXACT.encode(&groove)?;
//! let back = Format::EXACT.decode(&text, &groove.context())?;
//! assert_eq!(back, groove);
//! assert_eq!(midi::write(&back, &midi::WriteOptions::default())?, bytes);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Example: the seams for models
//!
//! Every format implements [`TextFormat`]; [`Format`] switches over them and is stored as
//! text. The beat format's bars come apart into steps, and a step into hits, for models that
//! work step by step.
//!
//! ```
//! use fine_drums_codec::beat::{BeatOptions, split_bar};
//! use fine_drums_codec::{Format, Mode, TextFormat, pattern::rock_groove};
//!
//! let format: Format = "beat:levels=4".parse()?;
//! assert_eq!(format.to_string(), "beat:levels=4");
//! let Format::Beat(beat) = format else { unreachable!() };
//! let text = beat.encode(&rock_groove(1, 100.0)?)?;
//! let bar = split_bar(text.lines().next().expect("a bar")).expect("a bar line");
//! assert_eq!(bar.layout.steps(), 16);
//! let step = beat.parse_step(bar.steps[0])?; // kick, hi-hat and crash on the one
//! assert_eq!(step.hits.len(), 3);
//! let mut again = String::new();
//! beat.write_step(&step, &mut again);
//! assert_eq!(again, bar.steps[0]);
//! // Strict or lenient, by mode.
//! let lenient = beat.decode_with("junk\n", &Default::default(), Mode::Lenient)?;
//! assert_eq!(lenient.dropped.len(), 1);
//! # Ok::<(), fine_drums_codec::Error>(())
//! ```
//!
//! # The model of a groove
//!
//! A [`Groove`] is a list of [`Bar`]s, each with its [`Meter`], its tempo changes and its
//! [`Hit`]s. A hit has a grid `step`, a microtiming `offset` in ticks from that step, a
//! [`Voice`] of a [`VoiceMap`], a [`Velocity`] and a length. Positions are exact, so a groove
//! read with the `full` map writes back the same notes; text formats that keep less apply
//! [`Groove::quantised`] first, and `decode(encode(g)) == quantise(g)`.
//!
//! # The beat format (default)
//!
//! One line per bar; one space-separated word per beat (per quarter note in 4/4, per eighth
//! in 6/8); one `.`-separated slot per grid step; in each slot, a letter per drum hit:
//!
//! ```text
//! kh..h. Sh..h.s h.s.Kh. Sh..h.k
//! ```
//!
//! | letter (gmd9) | k | s | h | o | l | m | t | c | r |
//! |---|---|---|---|---|---|---|---|---|---|
//! | drum | kick | snare | closed hi-hat | open hi-hat | low tom | mid tom | high tom | crash | ride |
//!
//! With three velocity levels (default), a doubled letter is a ghost note (`ss`), a small
//! letter a normal hit (`s`) and a capital an accent (`S`), as drummers mark them. With one
//! level every hit is small; with two, small and capital; with four or more, a small letter
//! and the level (`s7`). With microtiming on, a slot may end in `+n` or `-n`: its hits land
//! `n` divisions of a step late or early.
//!
//! Grammar (EBNF; `groups` and `steps` follow from the meter and grid):
//!
//! ```text
//! text    = [ header "\n" ] { bar "\n" } ;
//! header  = "#beat" { " " key "=" value } ;     (* grid levels micro map tpq meter q *)
//! bar     = [ meter " " ] [ tempo " " ] group { " " group } ;   (* exactly `groups` groups *)
//! meter   = digits "/" digits ;     (* where the meter changes; on the first bar if not 4/4 *)
//! tempo   = "q=" number ;                         (* BPM, only where the tempo changes *)
//! group   = slot { "." slot } ;                   (* exactly `steps / groups` slots *)
//! slot    = { hit } [ ( "+" | "-" ) digits ] ;    (* offset only with microtiming *)
//! hit     = lower lower | lower | upper | lower digits ;   (* per the velocity levels *)
//! ```
//!
//! Why this one won, measured in cl100k_base tokens per 4/4 bar on the GMD test split (2,213
//! bars, gmd9, 16ths, 3 levels; `codec_report` prints the current figures): per-voice drum-tab
//! rows cost 30 to 36 whatever the alphabet, because every change between a rest and a hit
//! starts a new token; step events with step numbers cost 37; hexadecimal masks cost 20 to 23
//! with dynamics but no drummer reads them. Writing the bar step by step, with a rest as a
//! bare `.` and the hits of a step as one short word, costs a median 20, and with
//! microtiming 38. It reads as a drummer counts ("1 e & a"), and it is self-synchronising:
//! each bar is one line whose shape (beats and slots) is known in advance, so a bar cut off
//! or garbled is detected and dropped on its own.
//!
//! # The drumroll and the exact formats
//!
//! [`drumroll`] reads and writes the format of Zhang & Callison-Burch 2023, for comparison
//! with their results. [`exact`] is lossless: it keeps every note's tick, pitch, velocity
//! and length, and every tempo and meter.
//!
//! # Strict and lenient decoding
//!
//! A strict decode returns the first [`Error::Syntax`] with its line and column. A lenient
//! decode keeps every well-formed bar, drops the others, and says why in
//! [`Lenient::dropped`]. Neither panics on any input (property-tested), and both bound what
//! they build by [`Limits`].
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `serde` | off | [`Format`] as its text and [`Channel`] as its number in serde formats |
//!
//! Without features its only dependencies are midly and thiserror.
//!
//! # Speed
//!
//! Over the whole Groove MIDI Dataset in memory (5.27 MB, 1,150 files, 22,724 bars), one
//! core of a 2-core AMD EPYC virtual machine runs the beat-format round trip (read, encode,
//! decode, write) in 30.9 ms: 170 MB/s of MIDI, 734,000 bars per second
//! (`cargo bench --bench codec`). The stages take 14.4 ms (read), 3.7 ms (encode), 6.8 ms
//! (decode) and 5.4 ms (write). The target is 18 ms (300 MB/s); reading alone nearly fills it.
//! For scale, on the same machine symusic 0.6.0 (C++, called from Python) parses the same
//! files in 32.4 ms (163 MB/s), and parses and writes them in 66 ms
//! (`benches/symusic_reference.py`).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

// Modules from the bottom up: each uses only those above it in this list (rustfmt.toml keeps
// the order).
mod error;
mod primitive;
mod units;
mod voice;
mod groove;
mod placement;
mod quantise;
mod text;
pub mod beat;
pub mod drumroll;
pub mod exact;
mod format;
mod chunk;
mod smf;
pub mod midi;
pub mod pattern;

pub use error::{Error, Position, Result, Standard};
pub use format::Format;
pub use groove::{Bar, Context, Groove, Hit, Limits};
pub use primitive::{Channel, Pitch, Velocity};
pub use quantise::Quantise;
pub use text::{Lenient, Mode, TextFormat};
pub use units::{Grid, Levels, Meter, Tempo, TempoChange};
pub use voice::{Voice, VoiceMap};
