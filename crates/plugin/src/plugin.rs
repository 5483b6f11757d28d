//! The plugin as nice-plug sees it: the audio thread's work and the background task.

use std::sync::Arc;

use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;

use crate::capture::Heard;
use crate::grid::{Clock, Signature};
use crate::params::DrumParams;
use crate::phrase::{Player, Sent, Timed};
use crate::session::Shared;

/// Messages the audio thread can send before the background thread takes them in: a second
/// of 16th-note hits on every drum of a kit, many times over.
const HEARD_CAPACITY: usize = 1 << 14;
/// Note events of the longest phrase (16 bars of a busy drummer, note-ons and note-offs).
const PHRASE_CAPACITY: usize = 1 << 14;
/// The MIDI channel of the notes played: 10, as drums are (0-based: 9).
const DRUM_CHANNEL: u8 = 9;

/// The plugin's background work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Generate the phrase the last trigger asked for.
    Generate,
}

/// The fine_drums plugin: it listens to the drum track and plays the drum GPT's next bars.
pub struct FineDrums {
    params: Arc<DrumParams>,
    shared: Arc<Shared>,
    heard: rtrb::Producer<Heard>,
    sent: rtrb::Consumer<Sent>,
    player: Player,
    /// The last bar the audio thread entered while the transport played.
    bar: Option<i64>,
    /// The trigger buttons as they were at the last block: a press is a rising edge.
    pressed: [bool; 3],
    /// Bars entered since the last trigger (for auto).
    since_trigger: u32,
}

impl Default for FineDrums {
    fn default() -> FineDrums {
        let (heard_tx, heard_rx) = rtrb::RingBuffer::new(HEARD_CAPACITY);
        let (sent_tx, sent_rx) = rtrb::RingBuffer::new(PHRASE_CAPACITY + 2);
        let shared = Arc::new(Shared::new(heard_rx, sent_tx));
        FineDrums {
            params: Arc::new(DrumParams::new(shared.clone())),
            shared,
            heard: heard_tx,
            sent: sent_rx,
            player: Player::new(PHRASE_CAPACITY),
            bar: None,
            pressed: [false; 3],
            since_trigger: 0,
        }
    }
}

impl FineDrums {
    /// Tells the rest of the plugin; a full ring drops the message (the background thread
    /// is far behind), never waits.
    fn tell(&mut self, heard: Heard) {
        let _ = self.heard.push(heard);
    }

    /// Asks for a phrase that follows on from bar `bar`.
    fn trigger(&mut self, bar: i64, fill: bool, context: &mut impl ProcessContext<Self>) {
        self.tell(Heard::Trigger { bar, fill });
        self.shared.set_busy();
        self.since_trigger = 0;
        context.execute_background(Task::Generate);
    }

    /// Enters bar `bar` in `signature` (a bar line crossed, or the transport started).
    fn enter(&mut self, bar: i64, signature: Signature, context: &mut impl ProcessContext<Self>) {
        if self.bar == Some(bar) {
            return;
        }
        self.bar = Some(bar);
        self.tell(Heard::Bar { bar, signature });
        self.since_trigger = self.since_trigger.saturating_add(1);
        if self.params.auto.value()
            && !self.player.is_busy()
            && !self.shared.is_busy()
            && self.since_trigger > self.params.prompt_bars.value().max(1) as u32
        {
            self.trigger(bar, false, context);
        }
    }

    /// The presses of Continue, Fill next bar and New seed since the last block.
    fn presses(&mut self) -> [bool; 3] {
        let now = [
            self.params.continue_.value(),
            self.params.fill_next.value(),
            self.params.new_seed.value(),
        ];
        let pressed = std::array::from_fn(|i| now[i] && !self.pressed[i]);
        self.pressed = now;
        pressed
    }
}

/// A note of the phrase as a note event.
fn event(t: Timed) -> PluginNoteEvent<FineDrums> {
    let (timing, voice_id) = (t.timing, VoiceID::Wildcard);
    let (key, channel) = (Key::Number(t.note.pitch), Channel::Number(DRUM_CHANNEL));
    if t.note.on {
        let velocity = f32::from(t.note.velocity) / 127.0;
        NoteEvent::NoteOn { timing, voice_id, channel, key, velocity }
    } else {
        NoteEvent::NoteOff { timing, voice_id, channel, key, velocity: 0.0 }
    }
}

impl Plugin for FineDrums {
    const NAME: &'static str = "fine_drums";
    const VENDOR: &'static str = "fine_drums";
    const URL: &'static str = "https://github.com/fine-drums/fine_drums";
    const EMAIL: &'static str = "";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    // Notes in, notes out, before the drum sampler. A silent stereo output first, for the
    // hosts that load only plugins with one (and that give a block its length by it); none
    // for the hosts that take note effects.
    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout {
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout::const_default(),
    ];
    const MIDI_INPUT: MidiConfig = MidiConfig::Basic;
    const MIDI_OUTPUT: MidiConfig = MidiConfig::Basic;
    const SAMPLE_ACCURATE_AUTOMATION: bool = true;
    type Editor = ();
    type SysExMessage = ();
    type BackgroundTask = Task;

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn task_executor(&mut self) -> TaskExecutor<Self> {
        let (shared, params) = (self.shared.clone(), self.params.clone());
        Box::new(move |task| match task {
            Task::Generate => {
                if let Err(e) = shared.generate(|fill, presses| params.ask(fill, presses)) {
                    nice_error!("fine_drums: {e}");
                }
            }
        })
    }

    fn reset(&mut self) {
        self.player.stop();
        self.bar = None;
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let samples = buffer.samples() as u32;
        for channel in buffer.as_slice() {
            channel.fill(0.0);
        }
        while let Ok(sent) = self.sent.pop() {
            self.player.receive(sent);
        }
        let [cont, fill, reseed] = self.presses();
        if reseed {
            self.tell(Heard::Reseed);
        }
        let pass = self.params.pass_through.value();
        let t = context.transport();
        let (playing, sample_rate) = (t.playing, f64::from(t.sample_rate));
        let signature = Signature::of_host(t.time_sig_numerator, t.time_sig_denominator, t.tempo);
        let host_bar = t.bar_start_pos_beats().zip(t.bar_number());
        let pos = t.pos_beats();
        let clock = match (playing, pos) {
            (true, Some(pos)) if sample_rate > 0.0 => {
                Some(Clock::new(sample_rate, signature, pos, host_bar))
            }
            _ => None,
        };
        let Some(clock) = clock else {
            // Stopped: nothing is captured or played; notes still sounding are ended.
            self.bar = None;
            self.player.stop();
            let mut ended = |t: Timed| {
                let _ = context.try_send_event(event(t));
            };
            self.player.silence(&mut ended);
            while let Some(e) = context.next_event() {
                if pass {
                    let _ = context.try_send_event(e);
                }
            }
            return ProcessStatus::KeepAlive;
        };

        self.enter(clock.bar, signature, context);
        let (line, line_bar) = clock.next_bar_line();
        let line_sample = clock.sample_of(line);
        while let Some(e) = context.next_event() {
            if let NoteEvent::NoteOn { timing, key: Key::Number(note), velocity, .. } = e {
                if line_sample > 0 && i64::from(timing) >= line_sample {
                    self.enter(line_bar, signature, context);
                }
                let (bar, at) = clock.bar_of(clock.at_sample(timing));
                let velocity = (velocity * 127.0).round().clamp(1.0, 127.0) as u8;
                self.tell(Heard::Hit { bar, at, pitch: note, velocity });
            }
            if pass {
                let _ = context.try_send_event(e);
            }
        }
        if cont || fill {
            self.trigger(clock.bar, fill, context);
        }
        if line_sample > 0 && line_sample < i64::from(samples) {
            self.enter(line_bar, signature, context);
        }
        self.player.play(&clock, samples, |t| {
            let _ = context.try_send_event(event(t));
        });
        ProcessStatus::KeepAlive
    }
}

impl ClapPlugin for FineDrums {
    const CLAP_ID: &'static str = "io.github.fine-drums.fine-drums";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("Listens to the drum track and plays a drum language model's next bars in time");
    const CLAP_MANUAL_URL: Option<&'static str> = Some(Self::URL);
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] =
        &[ClapFeature::NoteEffect, ClapFeature::Drum, ClapFeature::Utility];
}

impl Vst3Plugin for FineDrums {
    const VST3_CLASS_ID: [u8; 16] = *b"FineDrumsGptMidi";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] =
        &[Vst3SubCategory::Instrument, Vst3SubCategory::Drum, Vst3SubCategory::Tools];
}

/// The plugin formats' entry points (C functions, written by nice-plug's macros).
#[allow(unsafe_code)]
mod export {
    use nice_plug::prelude::*;

    use super::FineDrums;

    nice_export_clap!(FineDrums);
    nice_export_vst3!(FineDrums);
}
