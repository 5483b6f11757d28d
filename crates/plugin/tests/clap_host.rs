//! The CLAP host of the tests and the bench (clack-host): the host's side of the plugin's
//! callbacks, and a new instance of the plugin from a loaded bundle.
// Included by `#[path]` from the bench, which uses only part of it.
#![allow(dead_code)]

use std::ffi::CString;
use std::sync::OnceLock;

use clack_extensions::params::PluginParams;
use clack_extensions::state::PluginState;
use clack_host::events::event_types::{TransportEvent, TransportFlags};
use clack_host::events::{EventFlags, EventHeader};
use clack_host::prelude::*;
use clack_host::utils::FixedPoint;

/// The plugin's CLAP id.
pub const PLUGIN_ID: &str = "io.github.fine-drums.fine-drums";
/// The host's sample rate.
pub const SAMPLE_RATE: f64 = 48_000.0;
/// The host's block, in samples.
pub const BLOCK: u32 = 512;

/// The host.
pub struct Host;

/// An input port buffer of no channels: the plugin has no audio input.
type NoInput = AudioPortBuffer<[InputChannel<'static, f32>; 0], [InputChannel<'static, f64>; 0]>;

/// What the host keeps of each instance: its parameter and state extensions.
#[derive(Default)]
pub struct Shared {
    pub params: OnceLock<Option<PluginParams>>,
    pub state: OnceLock<Option<PluginState>>,
}

impl<'a> SharedHandler<'a> for Shared {
    fn initializing(&self, instance: InitializingPluginHandle<'a>) {
        let _ = self.params.set(instance.get_extension());
        let _ = self.state.set(instance.get_extension());
    }
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {}
}

impl HostHandlers for Host {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();
}

/// A new instance of the plugin in `entry`.
pub fn instantiate(entry: &PluginEntry) -> PluginInstance<Host> {
    let host = HostInfo::new("fine_drums test host", "fine_drums", "", "0").expect("host info");
    let id = CString::new(PLUGIN_ID).expect("an id");
    PluginInstance::<Host>::new(|_| Shared::default(), |_| (), entry, &id, &host)
        .expect("the plugin instantiates")
}

/// The plugin activated for blocks of [`BLOCK`] at [`SAMPLE_RATE`], started.
pub fn start(instance: &mut PluginInstance<Host>) -> StartedPluginAudioProcessor<Host> {
    let config = PluginAudioConfiguration {
        sample_rate: SAMPLE_RATE,
        min_frames_count: BLOCK,
        max_frames_count: BLOCK,
    };
    let processor = instance.activate(|_, _| (), config).expect("activates");
    processor.start_processing().expect("starts")
}

/// The host's buffers for playing the plugin block by block: no audio in, two channels out,
/// and the events the plugin sends.
pub struct Blocks {
    out: [[f32; BLOCK as usize]; 2],
    inputs: AudioPorts,
    outputs: AudioPorts,
    events: EventBuffer,
}

impl Blocks {
    pub fn new() -> Blocks {
        Blocks {
            out: [[0f32; BLOCK as usize]; 2],
            inputs: AudioPorts::with_capacity(0, 0),
            outputs: AudioPorts::with_capacity(2, 1),
            events: EventBuffer::new(),
        }
    }

    /// Processes the block that starts at sample `start`, with the events `input` and the
    /// transport, if any: the events the plugin sent.
    pub fn process(
        &mut self,
        processor: &mut StartedPluginAudioProcessor<Host>,
        input: &EventBuffer,
        start: u64,
        transport: Option<&TransportEvent>,
    ) -> &EventBuffer {
        let no_inputs: [NoInput; 0] = [];
        let input_audio = self.inputs.with_input_buffers(no_inputs);
        let [left, right] = &mut self.out;
        let mut output_audio = self.outputs.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(
                [left.as_mut_slice(), right.as_mut_slice()].into_iter(),
            ),
        }]);
        self.events.clear();
        processor
            .process(
                &input_audio,
                &mut output_audio,
                &InputEvents::from_buffer(input),
                &mut OutputEvents::from_buffer(&mut self.events),
                Some(start),
                transport,
            )
            .expect("processes");
        &self.events
    }
}

/// A playing transport at `q0` quarter notes, in bar `bar` (from 0) that starts at
/// `bar_start`, at `tempo` BPM in `meter`, the block starting at sample `start` of 48 kHz.
pub fn transport(
    start: u64,
    sample_rate: f64,
    q0: f64,
    (bar, bar_start): (u32, f64),
    tempo: f64,
    meter: (u16, u16),
) -> TransportEvent {
    TransportEvent {
        header: EventHeader::new_core(0, EventFlags::empty()),
        flags: TransportFlags::HAS_TEMPO
            | TransportFlags::HAS_BEATS_TIMELINE
            | TransportFlags::HAS_SECONDS_TIMELINE
            | TransportFlags::HAS_TIME_SIGNATURE
            | TransportFlags::IS_PLAYING,
        song_pos_beats: FixedPoint::from_float(q0),
        song_pos_seconds: FixedPoint::from_float(start as f64 / sample_rate),
        tempo,
        tempo_inc: 0.0,
        loop_start_beats: FixedPoint::from_int(0),
        loop_end_beats: FixedPoint::from_int(0),
        loop_start_seconds: FixedPoint::from_int(0),
        loop_end_seconds: FixedPoint::from_int(0),
        bar_start: FixedPoint::from_float(bar_start),
        bar_number: bar as i32,
        time_signature_numerator: meter.0,
        time_signature_denominator: meter.1,
    }
}
