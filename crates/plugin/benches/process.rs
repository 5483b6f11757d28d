//! What the plugin costs the host: `process` for a 512-sample block while the transport
//! plays and no phrase is being made (the release build, driven through CLAP by the test
//! host), and the time from a press to a 4-bar phrase ready with the built-in model (the
//! work the background thread does; run under `taskset -c 0` for one core).
//!
//! `cargo bench -p fine-drums-plugin --bench process`
// Loading a plugin library runs its code: clack-host marks that unsafe.
#![allow(unsafe_code)]

#[path = "../tests/clap_host.rs"]
mod clap_host;

use clack_host::events::Match;
use clack_host::events::event_types::NoteOnEvent;
use clack_host::prelude::*;
use criterion::{Criterion, criterion_group, criterion_main};
use fine_drums_plugin::bundle;
use fine_drums_plugin::{Ask, Capture, Generator, Heard, Signature};

use crate::clap_host::NoInput;

const SAMPLE_RATE: f64 = 48_000.0;
const BLOCK: u32 = 512;

/// Two bars of a rock beat, as a host would deliver them.
fn rock_capture(bars: i64) -> Capture {
    let mut capture = Capture::default();
    for bar in 0..bars {
        capture.take(Heard::Bar { bar, signature: Signature::DEFAULT });
        for eighth in 0..8 {
            let at = f64::from(eighth) / 2.0;
            capture.take(Heard::Hit { bar, at, pitch: 42, velocity: 80 });
            let drum = match eighth {
                0 | 4 => Some(36),
                2 | 6 => Some(38),
                _ => None,
            };
            if let Some(pitch) = drum {
                capture.take(Heard::Hit { bar, at, pitch, velocity: 100 });
            }
        }
    }
    capture
}

fn process(c: &mut Criterion) {
    // The library cargo built with this bench, beside it in target/release/deps.
    let exe = std::env::current_exe().expect("the bench's path");
    let lib = exe.parent().expect("its folder").join(bundle::library_name());
    let dir = std::env::temp_dir().join(format!("fine-drums-bench-{}", std::process::id()));
    let bundles = bundle::write_bundles(&lib, &dir).expect("the bundles are written");
    let entry = unsafe { PluginEntry::load(&bundles.clap) }.expect("the .clap bundle loads");
    let mut instance = clap_host::instantiate(&entry);
    let config = PluginAudioConfiguration {
        sample_rate: SAMPLE_RATE,
        min_frames_count: BLOCK,
        max_frames_count: BLOCK,
    };
    let processor = instance.activate(|_, _| (), config).expect("activates");
    let mut processor = processor.start_processing().expect("starts");
    let mut out = [[0f32; BLOCK as usize]; 2];
    let mut inputs = AudioPorts::with_capacity(0, 0);
    let mut outputs = AudioPorts::with_capacity(2, 1);
    let mut input = EventBuffer::new();
    let mut out_events = EventBuffer::new();
    let spq = SAMPLE_RATE * 60.0 / 120.0;
    let mut block = 0u64;
    c.bench_function("process: a 512-sample block at 120 BPM, eighth-note hi-hats in", |b| {
        b.iter(|| {
            let start = block * u64::from(BLOCK);
            let q0 = start as f64 / spq;
            let bar = (q0 / 4.0).floor();
            let transport = clap_host::transport(
                start,
                SAMPLE_RATE,
                q0,
                (bar as u32, bar * 4.0),
                120.0,
                (4, 4),
            );
            // A hi-hat on every eighth note that falls in the block.
            input.clear();
            let first = (q0 * 2.0).ceil() as u64;
            let mut eighth = first;
            while (eighth as f64 / 2.0) < q0 + f64::from(BLOCK) / spq {
                let time = ((eighth as f64 / 2.0 - q0) * spq).round() as u32;
                let pckn = Pckn::new(0u16, 9u16, 42u16, Match::All);
                input.push(&NoteOnEvent::new(time.min(BLOCK - 1), pckn, 0.6));
                eighth += 1;
            }
            let no_inputs: [NoInput; 0] = [];
            let input_audio = inputs.with_input_buffers(no_inputs);
            let [left, right] = &mut out;
            let mut output_audio = outputs.with_output_buffers([AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_output_only(
                    [left.as_mut_slice(), right.as_mut_slice()].into_iter(),
                ),
            }]);
            out_events.clear();
            processor
                .process(
                    &input_audio,
                    &mut output_audio,
                    &InputEvents::from_buffer(&input),
                    &mut OutputEvents::from_buffer(&mut out_events),
                    Some(start),
                    Some(&transport),
                )
                .expect("processes");
            block += 1;
        })
    });
    let processor = processor.stop_processing();
    instance.deactivate(processor);
}

fn generate(c: &mut Criterion) {
    let capture = rock_capture(4);
    let generator = Generator::load(None).expect("the built-in model");
    let mut ask = Ask::default();
    (ask.bars, ask.seed) = (4, 3);
    let mut group = c.benchmark_group("generate");
    group.sample_size(10);
    group.bench_function("a 4-bar phrase after 4 captured bars, built-in model", |b| {
        b.iter(|| generator.generate(&capture, 4, &ask).expect("a phrase"))
    });
    group.finish();
}

criterion_group!(benches, process, generate);
criterion_main!(benches);
